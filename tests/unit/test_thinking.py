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


def _reference(text):
    """What any split of `text` must give: toggle at each complete tag, in one pass over the whole text."""
    out, inside, i = [], False, 0
    while True:
        tag = "</think>" if inside else "<think>"
        j = text.find(tag, i)
        if j < 0:
            out.append(("thinking" if inside else "visible", text[i:]))
            break
        out.append(("thinking" if inside else "visible", text[i:j]))
        i, inside = j + len(tag), not inside
    merged = []
    for kind, t in out:
        if not t:
            continue
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + t)
        else:
            merged.append((kind, t))
    return merged


def test_any_split_of_any_text_gives_the_same_pieces():
    """Fuzz: texts built of tags, parts of tags, a lone `<` and plain words, cut at random points (the common
    piece with no `<` takes a short way through the splitter)."""
    import random
    rng = random.Random(14)
    parts = ["<think>", "</think>", "<", "<th", "</thi", "nk>", "think>", "a", "b c ", "é", ">"]
    for _ in range(2000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 6))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        assert run(pieces) == _reference(text), (text, pieces)
