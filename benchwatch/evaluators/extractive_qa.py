"""Extractive QA: SQuAD v1.1 scoring (exact match and token F1, the best over all gold answers).

Scoring is the official SQuAD v1.1 script's: normalisation lower-cases, drops punctuation, drops the articles
a / an / the and collapses white space; F1 counts repeated tokens (a multiset) and is 0 when no token is shared,
including when both sides normalise to empty (v1.1's rule; SQuAD 2.0 gives 1 there); EM is 1 when both
normalised strings are equal, empty included. The one departure, on by default and stated in the verdict's
detail: `first_line` scores the first line carrying an answer (see text.answer_line) instead of the whole reply,
since chat models add explanations after the span and labels before it. `first_line: false` scores the whole
reply exactly as the script would.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

from ..datasets import Task, as_written
from .base import Evaluator, EvaluatorError, Verdict, register
from .text import answer_line

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize(prediction) == normalize(gold))


def f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_scores(prediction: str, golds: list[str]) -> tuple[float, float, str]:
    """(EM, F1, the gold with the best F1 (EM breaks ties)) over all golds."""
    scored = [(f1(prediction, g), exact_match(prediction, g), g) for g in golds]
    best_f1, _, best_gold = max(scored, key=lambda s: (s[0], s[1]))
    return max(s[1] for s in scored), best_f1, best_gold


@register("extractive_qa")
class ExtractiveQA(Evaluator):
    """PASS when the best token F1 over the gold answers is at least `threshold` (default 0.5).

    Options: threshold (0..1), first_line (score only the first line carrying an answer, a label line such as
    "Answer:" skipped; default on, since chat models often add an explanation after the span).
    """

    def __init__(self, opts: dict[str, Any]):
        self.threshold = float(opts.pop("threshold", 0.5))
        if not 0.0 <= self.threshold <= 1.0:  # NaN fails this too
            raise TypeError("threshold must be between 0 and 1")
        self.first_line = bool(opts.pop("first_line", True))
        if opts:
            raise TypeError(f"unknown option(s) {sorted(opts)} for extractive_qa")

    def evaluate(self, task: Task, response: str) -> Verdict:
        expected = task.expected
        if expected is not None and not isinstance(expected, (list, dict)):
            expected = [expected]  # one gold answer (a number is compared as the file wrote it)
        if not isinstance(expected, list) or not expected:
            raise EvaluatorError(f"task {task.id}: 'expected' must be a gold answer or a non-empty list of them")
        golds = [as_written(g) for g in expected]
        threshold = float(task.options.get("threshold", self.threshold))
        answer = response.strip()
        if self.first_line:
            answer = answer_line(answer)
        em, best_f1, gold = best_scores(answer, golds)
        return Verdict("PASS" if best_f1 >= threshold else "FAIL",
                       {"expected": golds, "actual": answer[:500], "em": em, "f1": round(best_f1, 4),
                        "best_gold": gold, "threshold": threshold,
                        "scored": "first answer line" if self.first_line else "whole reply"})
