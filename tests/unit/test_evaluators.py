import pytest

from benchwatch.datasets import Task
from benchwatch.evaluators import EvaluatorError, get_evaluator
from benchwatch.evaluators.numeric import last_number


@pytest.mark.parametrize("answer, expected, verdict", [
    ("Paris", "Paris", "PASS"),
    ("  paris. ", "Paris", "PASS"),
    ("PARIS!", ["Lyon", "Paris"], "PASS"),
    ("The capital is Paris", "Paris", "FAIL"),
    ("New   York", "new york", "PASS"),
])
def test_exact_match(answer, expected, verdict):
    v = get_evaluator("exact_match").evaluate(Task("t", "q", expected), answer)
    assert v.verdict == verdict
    assert "expected" in v.detail and "actual" in v.detail


def test_exact_match_options():
    strict = get_evaluator("exact_match", {"ignore_case": False})
    assert strict.evaluate(Task("t", "q", "Paris"), "paris").verdict == "FAIL"
    first = get_evaluator("exact_match", {"first_line": True})
    assert first.evaluate(Task("t", "q", "Paris"), "\nParis\nbecause...").verdict == "PASS"
    with pytest.raises(EvaluatorError, match="bad options"):
        get_evaluator("exact_match", {"nope": 1})


def test_contains_whole_words():
    ev = get_evaluator("contains", {"ignore_articles": True})
    assert ev.evaluate(Task("t", "q", ["the Sun"]), "It is the sun.").verdict == "PASS"
    assert ev.evaluate(Task("t", "q", "art"), "It is a party").verdict == "FAIL"


@pytest.mark.parametrize("text, num", [
    ("The answer is 42.", 42.0), ("-3", -3.0), ("1,234.5 apples", 1234.5), ("from 3 to 7", 7.0),
    ("no digits", None), ("v2 build", None), ("x = .5", 0.5),
])
def test_last_number(text, num):
    assert last_number(text) == num


def test_numeric_verdicts_and_detail():
    ev = get_evaluator("numeric")
    assert ev.evaluate(Task("t", "q", 24), "4 boxes x 6 = 24").verdict == "PASS"
    v = ev.evaluate(Task("t", "q", 24), "twenty-four")
    assert v.verdict == "FAIL" and v.detail["reason"] == "no number in the answer"
    assert get_evaluator("numeric", {"abs_tol": 0.1}).evaluate(Task("t", "q", 3.14), "3.1").verdict == "PASS"
    with pytest.raises(EvaluatorError):
        ev.evaluate(Task("t", "q", "abc"), "1")


def test_unknown_evaluator():
    with pytest.raises(EvaluatorError, match="unknown evaluator"):
        get_evaluator("telepathy")


def test_a_gold_that_is_an_article_is_not_normalised_away():
    """Found by the reference backend: facts' 'A' (the letter) vanished under ignore_articles."""
    from benchwatch.datasets import Task
    from benchwatch.evaluators import get_evaluator
    task = Task(id="f", prompt="First letter?", expected=["A"])
    for name in ("contains", "exact_match"):
        ev = get_evaluator(name, {"ignore_articles": True})
        assert ev.evaluate(task, "A").verdict == "PASS"
        assert ev.evaluate(task, "B").verdict == "FAIL"
    assert get_evaluator("contains", {"ignore_articles": True}).evaluate(task, "The letter A.").verdict == "PASS"
