import pytest

from benchwatch.backends.thinking import ThinkSplitter


def run(pieces):
    s = ThinkSplitter()
    out = [p for piece in pieces for p in s.feed(piece)] + s.flush()
    merged: list[list[str]] = []
    for kind, text in out:
        if merged and merged[-1][0] == kind:
            merged[-1][1] += text
        else:
            merged.append([kind, text])
    return [tuple(m) for m in merged]


@pytest.mark.parametrize("pieces", [
    ["<think>plan</think>Answer"],
    ["<thi", "nk>pl", "an</th", "ink>Ans", "wer"],
    list("<think>plan</think>Answer"),
])
def test_split_across_chunks(pieces):
    assert run(pieces) == [("thinking", "plan"), ("visible", "Answer")]


def test_no_tags_is_all_visible():
    assert run(["a <b> c", " <th", "ing"]) == [("visible", "a <b> c <thing")]


def test_unclosed_think_stays_thinking():
    assert run(["<think>still going"]) == [("thinking", "still going")]
