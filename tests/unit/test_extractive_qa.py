"""SQuAD v1.1 scoring: normalisation, exact match, token F1 (a multiset), several golds, empty answers."""
from __future__ import annotations

import pytest

from benchwatch.datasets import Task
from benchwatch.evaluators import EvaluatorError, get_evaluator
from benchwatch.evaluators.extractive_qa import best_scores, exact_match, f1, normalize


@pytest.mark.parametrize("text, expected", [
    ("The Cat", "cat"),
    ("  a  dog,  an apple and THE end. ", "dog apple and end"),
    ("Ada Morrow!", "ada morrow"),
    ("theatre anthem", "theatre anthem"),  # articles only as whole words
    ("rock-'n'-roll", "rocknroll"),  # punctuation removed, not replaced by a space (as the official script)
    ("tabs\tand\nnewlines", "tabs and newlines"),
    ("", ""),
    ("the a an", ""),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize("pred, gold, em, score", [
    ("Ada Morrow", "Ada Morrow", 1.0, 1.0),
    ("the basil", "basil", 1.0, 1.0),  # articles do not count
    ("Tenzin", "the guide, Tenzin", 0.0, 2 * 1.0 * 0.5 / 1.5),  # precision 1, recall 1/2
    ("the larger river", "river Tarn", 0.0, 2 * 0.5 * 0.5 / 1.0),  # 1 common of 2 and 2 tokens
    ("red red red", "red", 0.0, 2 * (1 / 3) * 1.0 / (1 / 3 + 1.0)),  # multiset: one 'red' matches, not three
    ("red red", "red red blue", 0.0, 2 * 1.0 * (2 / 3) / (1.0 + 2 / 3)),  # both reds count
    ("Paris", "London", 0.0, 0.0),
    ("", "Paris", 0.0, 0.0),  # empty prediction
    ("Paris", "", 0.0, 0.0),
    ("", "", 1.0, 0.0),  # both empty after normalisation: v1.1 gives F1 0 (2.0 would give 1)
    ("The.", "a", 1.0, 0.0),  # both normalise to nothing: EM 1, F1 0 (v1.1)
])
def test_exact_match_and_f1(pred, gold, em, score):
    assert exact_match(pred, gold) == em
    assert f1(pred, gold) == pytest.approx(score)


def test_best_over_several_golds():
    em, score, gold = best_scores("river Tarn", ["the larger river Tarn", "river Tarn", "Tarn"])
    assert (em, score, gold) == (1.0, 1.0, "river Tarn")
    em, score, gold = best_scores("near the Tarn river", ["the larger river Tarn", "Tarn"])
    assert em == 0.0 and gold == "the larger river Tarn" and score == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))


def _task(expected, **options):
    return Task(id="q1", prompt="Question?", expected=expected, options=options)


@pytest.mark.parametrize("answer, threshold, verdict", [
    ("Ada Morrow", 0.5, "PASS"),
    ("Ada", 0.5, "PASS"),  # F1 2/3
    ("Ada", 0.8, "FAIL"),
    ("a keeper named Ada Morrow who tended it", 0.5, "FAIL"),  # F1 2/7*... below 0.5
    ("", 0.5, "FAIL"),
    ("Ada Morrow\nShe tended the lamp for thirty years.", 0.9, "PASS"),  # only the first line is scored
])
def test_evaluator_verdict_and_detail(answer, threshold, verdict):
    ev = get_evaluator("extractive_qa", {"threshold": threshold})
    v = ev.evaluate(_task(["Ada Morrow", "Morrow"]), answer)
    assert v.verdict == verdict
    assert set(v.detail) >= {"em", "f1", "best_gold", "threshold", "expected", "actual"}
    assert v.detail["threshold"] == threshold


def test_per_task_threshold_and_single_gold():
    ev = get_evaluator("extractive_qa", {"threshold": 0.9})
    v = ev.evaluate(_task("Ada Morrow", threshold=0.5), "Ada")
    assert v.verdict == "PASS" and v.detail["threshold"] == 0.5 and v.detail["best_gold"] == "Ada Morrow"


def test_bad_options_and_tasks_are_clear_errors():
    with pytest.raises(EvaluatorError, match="threshold"):
        get_evaluator("extractive_qa", {"threshold": 2})
    with pytest.raises(EvaluatorError, match="unknown option"):
        get_evaluator("extractive_qa", {"treshold": 0.5})
    with pytest.raises(EvaluatorError, match="expected"):
        get_evaluator("extractive_qa", {}).evaluate(_task([]), "x")


def test_builtin_reading_golds_pass_their_own_evaluator():
    from pathlib import Path
    from benchwatch.config import DatasetConfig
    from benchwatch.datasets import load_dataset
    tasks = load_dataset(DatasetConfig(name="r", source="builtin:reading", evaluator="extractive_qa"), Path("."))
    ev = get_evaluator("extractive_qa", {"threshold": 0.5})
    for t in tasks:
        assert ev.evaluate(t, t.expected[0]).verdict == "PASS"
        assert ev.evaluate(t, "completely unrelated words").verdict == "FAIL"


# The official v1.1 script's rules where implementations differ (worked by hand from its definition: normalise,
# then EM is string equality and F1 is 0 unless a token is shared).
@pytest.mark.parametrize("pred, gold, em, score", [
    ("the", "an", 1.0, 0.0),  # both empty after normalisation
    ("...", "!!!", 1.0, 0.0),
    ("a a a", "", 1.0, 0.0),
    ("The Cat", "cat!", 1.0, 1.0),
    ("cat\u2028dog", "cat dog", 1.0, 1.0),  # any Unicode white space separates tokens
    ("Cats", "cat", 0.0, 0.0),  # no stemming
])
def test_v11_rules(pred, gold, em, score):
    assert exact_match(pred, gold) == em
    assert f1(pred, gold) == pytest.approx(score)


@pytest.mark.parametrize("reply, scored", [
    ("Answer:\nParis", "Paris"),
    ("Answer: Paris", "Paris"),
    ("**Answer:**\n\nParis\nIt is the capital.", "Paris"),
    ("Final answer: Paris", "Paris"),
    ("\n\nParis\nBecause...", "Paris"),
    ("Paris\u2028London", "Paris\u2028London"),  # lines are split on \n only
    ("Paris\vLondon\fRome", "Paris\vLondon\fRome"),
    ("Answerable: yes", "Answerable: yes"),  # not a label
])
def test_first_line_scores_the_answer_after_a_label(reply, scored):
    ev = get_evaluator("extractive_qa", {})
    assert ev.evaluate(_task(["Paris"]), reply).detail["actual"] == scored
    assert get_evaluator("extractive_qa", {"first_line": False}).evaluate(_task(["x"]), reply).detail[
        "scored"] == "whole reply"


def test_non_string_golds_are_compared_as_written_in_the_file():
    from benchwatch.datasets import parse_jsonl
    tasks = parse_jsonl('{"id": 1, "prompt": "p", "expected": 3.10}\n{"id": 2, "prompt": "p", "expected": '
                        '[true, 1e3, null, 7]}\n', "f.jsonl")
    exact = get_evaluator("exact_match", {})
    assert exact.evaluate(tasks[0], "3.10").verdict == "PASS"
    assert exact.evaluate(tasks[0], "3.1").verdict == "FAIL"  # str(3.10) would have been "3.1"
    assert exact.evaluate(tasks[1], "true").verdict == "PASS"
    assert exact.evaluate(tasks[1], "1e3").verdict == "PASS"
    assert exact.evaluate(tasks[1], "7").verdict == "PASS"
    assert get_evaluator("extractive_qa", {}).evaluate(tasks[0], "3.10").detail["em"] == 1.0
    assert get_evaluator("numeric", {}).evaluate(tasks[0], "3.1").verdict == "PASS"  # numbers still compare
