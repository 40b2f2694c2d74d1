"""multiple_choice on hand-written free-form answers: which option each one chose, and the verdict."""
from __future__ import annotations

import pytest

from benchwatch.datasets import Task
from benchwatch.evaluators import EvaluatorError, get_evaluator
from benchwatch.evaluators.multiple_choice import read_choice

CITIES = ["Paris", "London", "Berlin", "Madrid"]  # the question: the capital of Germany? (C)

# (answer, the option it chose or None when none or several)
ANSWERS = [
    # bare letters in every form
    ("C", "C"), ("c", "C"), ("C.", "C"), ("(C)", "C"), ("C)", "C"), ("**C**", "C"), ("[C]", "C"), (" C ", "C"),
    ("*C*", "C"), ("__C__", "C"), ("C:", "C"), ("(c)", "C"), ("c)", "C"), ("**(C)**", "C"), ("`C`", "C"),
    ("A", "A"), ("B.", "B"), ("(D)", "D"), ("**A**", "A"), ("d", "D"),
    # explicit statements
    ("The answer is C.", "C"), ("the answer is C", "C"), ("The answer is (C).", "C"), ("Answer: C", "C"),
    ("Answer: (C) Berlin", "C"), ("ANSWER: C", "C"), ("The correct answer is C.", "C"),
    ("The correct answer is **C**.", "C"), ("The final answer is C", "C"), ("Final answer: C", "C"),
    ("The best answer is C) Berlin.", "C"), ("I choose C.", "C"), ("I would choose option C.", "C"),
    ("I'd go with... no: I pick C", "C"), ("The correct option is C.", "C"), ("The answer would be C.", "C"),
    ("The answer is c.", "C"), ("answer: c", "C"), ("The correct choice is C - Berlin.", "C"),
    ("Answer:\nC", "C"), ("The answer is: C", "C"), ("The most likely answer is C.", "C"),
    ("Answer - C", "C"), ("The answer is option C.", "C"), ("Answer = C", "C"),
    # explicit statements win over other mentions
    ("A is Paris, B is London, but the answer is C.", "C"),
    ("Not (A), not (B), not (D). The answer is C.", "C"),
    ("Option A is France's capital. Option D is Spain's. The answer is C.", "C"),
    ("Paris and London are wrong. Answer: C", "C"),
    ("(A) Paris\n(B) London\n(C) Berlin\n(D) Madrid\nAnswer: C", "C"),
    ("A. Paris\nB. London\nC. Berlin\nD. Madrid\n\nThe correct answer is C.", "C"),
    ("Let me think. Berlin is in Germany, Madrid in Spain. The answer is C.", "C"),
    ("The answer is C, not A.", "C"),
    ("I considered B) London, but the answer is C.", "C"),
    ("**Answer: C**\n\nExplanation: Paris is in France (A).", "C"),
    ("The answer is A.", "A"), ("The answer is D, Madrid.", "D"), ("Answer: B", "B"),
    # explicit statements by the option's text
    ("The answer is Berlin.", "C"), ("The correct answer is Berlin", "C"), ("Answer: Berlin", "C"),
    ("The answer is Madrid, the capital of Spain.", "D"), ("Answer: berlin", "C"),
    # several explicit statements that disagree: ambiguous
    ("The answer is A. Wait, the answer is C.", None), ("Answer: A\nAnswer: C", None),
    ("The answer is B or the answer is C.", None),
    # the answer is one option's text
    ("Berlin", "C"), ("berlin", "C"), ("Berlin.", "C"), ("  BERLIN!  ", "C"), ("London", "B"), ("Madrid", "D"),
    ("**Berlin**", "C"),
    # leading letter forms followed by more
    ("C. Berlin", "C"), ("C) Berlin is the capital of Germany.", "C"), ("(C) because Berlin is in Germany", "C"),
    ("**C** Berlin", "C"), ("C: Berlin", "C"), ("[C] Berlin", "C"), ("A. Paris", "A"),
    ("B) London, as far as I know.", "B"), ("**C**. Berlin has been the capital since 1990.", "C"),
    ("C. The capital of Germany is Berlin, not Paris.", "C"),
    # one option mentioned somewhere
    ("I think it's (C).", "C"), ("It must be option C.", "C"), ("Probably choice C", "C"),
    ("Germany's capital is Berlin.", "C"), ("The capital of Germany is Berlin, since 1990.", "C"),
    ("Hmm, I'd say **C** here.", "C"), ("My pick: C) Berlin", "C"), ("That's letter C", "C"),
    ("Among these, Berlin.", "C"), ("It is Berlin, of course", "C"), ("I believe it is Madrid.", "D"),
    ("Going with (B) this time.", "B"), ("Definitely C.\nBerlin.", "C"),
    ("The city is Berlin; Berlin is large.", "C"), ("Probably [C]", "C"),
    # several options mentioned, nothing explicit: ambiguous
    ("Either A or C.", None), ("(A) or (C)", None), ("Paris or Berlin", None), ("Berlin, or maybe London", None),
    ("A. Paris\nB. London\nC. Berlin\nD. Madrid", None), ("It is between option B and option C.", None),
    ("Not Paris. Berlin.", None), ("**A** **C**", None),
    # nothing recognisable
    ("", None), ("I don't know.", None), ("The capital of Germany.", None), ("Bonn", None), ("42", None),
    ("E", None), ("(E)", None), ("The answer is E.", None), ("a city", None), ("I think so.", None),
    ("A city in Europe, I believe.", None), ("It's a trick question.", None),
    # letters that are words, not choices
    ("I am not sure, a guess would be wrong", None), ("It is a capital city", None),
]


def test_there_are_at_least_100_answers():
    assert len(ANSWERS) >= 100


@pytest.mark.parametrize("answer, chosen", ANSWERS)
def test_reads_the_chosen_option(answer, chosen):
    got, read_as, _ = read_choice(answer, CITIES)
    assert got == chosen, f"{answer!r}: read as {read_as}"
    v = get_evaluator("multiple_choice").evaluate(Task("t", "q", "C", meta={"choices": CITIES}), answer)
    assert v.verdict == ("PASS" if chosen == "C" else "FAIL")
    assert v.detail["chosen"] == chosen and v.detail["read_as"] == read_as and v.detail["expected"] == "C"


def test_detail_says_how_it_was_read():
    ev = get_evaluator("multiple_choice")
    v = ev.evaluate(Task("t", "q", "C", meta={"choices": CITIES}), "Paris is wrong. The answer is C.")
    assert v.detail == {"expected": "C", "expected_text": "Berlin", "chosen": "C", "chosen_text": "Berlin",
                        "read_as": "explicit statement: 'The answer is C'", "mentioned": ["C"],
                        "answer": "Paris is wrong. The answer is C."}
    v = ev.evaluate(Task("t", "q", "C", meta={"choices": CITIES}), "Either (A) or (C).")
    assert v.verdict == "FAIL" and v.detail["read_as"] == "ambiguous: the answer mentions options ['A', 'C']"
    v = ev.evaluate(Task("t", "q", "C", meta={"choices": CITIES}), "Bonn")
    assert v.detail["read_as"] == "no option recognised in the answer" and v.detail["chosen"] is None


def test_an_option_inside_a_longer_option_is_not_a_second_mention():
    choices = ["2", "12", "20", "22"]
    assert read_choice("The result is 12.", choices)[0] == "B"
    assert read_choice("2", choices)[0] == "A"
    options = ["red", "red and blue", "blue", "green"]
    assert read_choice("I would say red and blue", options)[0] == "B"
    assert read_choice("red, then blue", options)[0] is None


def test_expected_forms():
    ev = get_evaluator("multiple_choice")
    assert ev.evaluate(Task("t", "q", ["B", "C"], meta={"choices": CITIES}), "C").verdict == "PASS"
    assert ev.evaluate(Task("t", "q", 2, meta={"choices": CITIES}), "C").verdict == "PASS"  # an index
    assert ev.evaluate(Task("t", "q", "c", meta={"choices": CITIES}), "C").verdict == "PASS"
    with pytest.raises(EvaluatorError, match=r"'expected' must be a letter among \['A', 'B', 'C', 'D'\]"):
        ev.evaluate(Task("t", "q", "E", meta={"choices": CITIES}), "E")
    with pytest.raises(EvaluatorError, match=r"needs the option texts in meta.choices"):
        ev.evaluate(Task("t", "q", "A"), "A")
    with pytest.raises(EvaluatorError, match=r"unknown option"):
        get_evaluator("multiple_choice", {"letters": 5})
