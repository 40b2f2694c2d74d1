"""numeric with `extract` (the gsm8k preset's options) on hand-written GSM8K-style answers: which number each
one gives, by the "####" line or the documented fallback (the last number)."""
from __future__ import annotations

import pytest

from benchwatch.datasets import Task
from benchwatch.datasets.presets import PRESETS
from benchwatch.evaluators import EvaluatorError, get_evaluator

GSM8K_OPTIONS = PRESETS["gsm8k"]["options"]

# (answer, the number read, how: "extract" or "fallback")
ANSWERS = [
    # the "####" line
    ("#### 31", 31, "extract"), ("####31", 31, "extract"), ("#### 31.", 31, "extract"),
    ("3 * 12 = 36\n36 - 5 = 31\n#### 31", 31, "extract"), ("#### $31", 31, "extract"),
    ("#### 31 pencils", 31, "extract"), ("#### 31pencils", 31, "extract"), ("#### 5,000", 5000, "extract"),
    ("#### 5000", 5000, "extract"), ("#### $5,000.00", 5000, "extract"), ("#### 51.0", 51, "extract"),
    ("#### 8.50", 8.5, "extract"), ("#### -4", -4, "extract"), ("#### +4", 4, "extract"),
    ("#### 1,234,567", 1234567, "extract"), ("#### 0.5", 0.5, "extract"), ("#### .5", 0.5, "extract"),
    ("#### 18%", 18, "extract"), ("#### 12kg", 12, "extract"), ("#### 7 dollars", 7, "extract"),
    ("####    99", 99, "extract"), ("#### 31\n", 31, "extract"), ("Answer:\n#### 31", 31, "extract"),
    ("So 12 + 19 = 31.\n#### 31", 31, "extract"), ("#### 31 (thirty-one)", 31, "extract"),
    ("He had 36, gave 5 away.\n\n#### 31\n\nI hope this helps! 100% sure.", 31, "extract"),
    ("#### 30\nWait, I made a mistake.\n#### 31", 31, "extract"),  # the last #### line counts
    ("#### **31**", 31, "extract"), ("#### `31`", 31, "extract"),
    ("The total is 3 * 12 = 36 pencils; minus 5 is 31.\n#### 31", 31, "extract"),
    ("#### 1000", 1000, "extract"), ("#### 1,000", 1000, "extract"), ("#### 10,000.5", 10000.5, "extract"),
    ("#### 2.", 2, "extract"), ("#### 2.0.", 2, "extract"), ("#### $ 45", 45, "fallback"),
    ("#### €45", 45, "extract"), ("#### £1,200", 1200, "extract"), ("#### 3/4", 3, "extract"),
    ("#### 64 square feet", 64, "extract"), ("#### 15 minutes.", 15, "extract"), ("#### 6 hours", 6, "extract"),
    ("#### 0", 0, "extract"), ("#### 00", 0, "extract"), ("#### 007", 7, "extract"),
    ("#### 72\nThe answer is 72.", 72, "extract"), ("#### 72 apples and 3 pears", 72, "extract"),
    ("##### 72", 72, "fallback"), ("#### 72!", 72, "extract"), ("#### 72?", 72, "extract"),
    ("#### 2,5", 2, "extract"),  # not a thousands group: the first number of the group
    # no "####" line: the last number
    ("The answer is 31.", 31, "fallback"), ("31", 31, "fallback"), ("She has 31 pencils left.", 31, "fallback"),
    ("3 * 12 = 36, 36 - 5 = 31", 31, "fallback"), ("So the answer is $5,000.", 5000, "fallback"),
    ("Total: 5,000 apples", 5000, "fallback"), ("She earns $51.00 in total.", 51, "fallback"),
    ("The answer is **31**.", 31, "fallback"), ("\\boxed{31}", 31, "fallback"), ("Answer: 31", 31, "fallback"),
    ("The answer: 31 pencils", 31, "fallback"), ("31 pencils.", 31, "fallback"), ("It is 31!", 31, "fallback"),
    ("First 36, then 31", 31, "fallback"), ("= 31", 31, "fallback"), ("-7 degrees", -7, "fallback"),
    ("The change is -7.", -7, "fallback"), ("about 3.14", 3.14, "fallback"), ("18% of the class", 18, "fallback"),
    ("12kg of flour", 12, "fallback"), ("x = 31", 31, "fallback"), ("The final answer is 1,234,567.", 1234567, "fallback"),
    ("Step 1: 3 boxes. Step 2: 36 pencils. Result: 31", 31, "fallback"),
    ("He has thirty-one pencils (31).", 31, "fallback"), ("31.0", 31, "fallback"), ("31.50 dollars", 31.5, "fallback"),
    ("Answer = 42 cookies", 42, "fallback"), ("I think 40... no, 42.", 42, "fallback"),
    ("# 31", 31, "fallback"), ("### 31", 31, "fallback"),
    # numbers inside words are not numbers
    ("The answer is 31 (see step v2).", 31, "fallback"), ("Use H2O: 31", 31, "fallback"),
    ("COVID19 aside, 31", 31, "fallback"), ("version 3b has 31", 31, "fallback"),
    # wrong answers
    ("#### 30", 30, "extract"), ("#### 310", 310, "extract"), ("#### 3,1", 3, "extract"),
    ("The answer is 36.", 36, "fallback"), ("31 or 32", 32, "fallback"), ("#### 31.5", 31.5, "extract"),
    ("#### -31", -31, "extract"), ("3 * 12 = 36", 36, "fallback"), ("36 - 5", 5, "fallback"),
    # no number at all
    ("thirty-one", None, "fallback"), ("I don't know.", None, "fallback"), ("", None, "fallback"),
    ("#### thirty-one", None, "fallback"), ("####", None, "fallback"), ("#### ?", None, "fallback"),
    ("v2", None, "fallback"), ("The answer is x.", None, "fallback"),
]


def test_there_are_at_least_100_answers():
    assert len(ANSWERS) >= 100


@pytest.mark.parametrize("answer, number, how", ANSWERS)
def test_reads_the_number(answer, number, how):
    ev = get_evaluator("numeric", dict(GSM8K_OPTIONS))
    got, read_as = ev.read(answer)
    assert got == number, read_as
    assert read_as.startswith("extract /" if how == "extract" else "fallback: the last number"), read_as
    v = ev.evaluate(Task("t", "q", 31), answer)
    assert v.verdict == ("PASS" if number == 31 else "FAIL")
    assert v.detail["actual"] == number and v.detail["read_as"] == read_as


def test_the_last_marks_with_a_number_count():
    ev = get_evaluator("numeric", dict(GSM8K_OPTIONS))
    assert ev.read("#### 30\n#### none") == (30, "extract /####\\s*(\\S+)/: '#### 30'")


def test_fallback_none_is_strict():
    ev = get_evaluator("numeric", {"extract": r"####\s*(\S+)", "fallback": "none"})
    v = ev.evaluate(Task("t", "q", 31), "The answer is 31.")
    assert v.verdict == "FAIL" and v.detail["actual"] is None
    assert v.detail["read_as"] == "extract /####\\s*(\\S+)/ did not match (fallback: none)"
    assert ev.evaluate(Task("t", "q", 31), "#### 31").verdict == "PASS"


def test_a_regex_without_a_group_uses_its_match():
    ev = get_evaluator("numeric", {"extract": r"answer is \S+"})
    assert ev.read("the answer is 12, not 13")[0] == 12


def test_expected_with_thousands_separators_and_bad_options():
    ev = get_evaluator("numeric", dict(GSM8K_OPTIONS))
    assert ev.evaluate(Task("t", "q", "5,000"), "#### 5000").verdict == "PASS"
    with pytest.raises(EvaluatorError, match=r"extract: not a valid regex '####\('"):
        get_evaluator("numeric", {"extract": "####("})
    with pytest.raises(EvaluatorError, match=r"fallback must be 'last' or 'none'"):
        get_evaluator("numeric", {"extract": "x", "fallback": "first"})
