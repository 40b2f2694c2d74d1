"""Extractive QA: SQuAD v1.1 scoring (exact match and token F1, the best over all gold answers).

Normalisation follows the official SQuAD v1.1 script: lower case, drop punctuation, drop the articles
a / an / the, collapse white space. F1 counts repeated tokens (a multiset), as the official script does.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from typing import Any

from ..datasets import Task
from . import Evaluator, EvaluatorError, Verdict, register

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
    if not pred or not ref:  # an empty side scores 1 only against another empty side
        return float(pred == ref)
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

    Options: threshold (0..1), first_line (score only the first non-empty line of the answer; default on,
    since chat models often add an explanation after the span).
    """

    def __init__(self, opts: dict[str, Any]):
        self.threshold = float(opts.pop("threshold", 0.5))
        if not 0.0 <= self.threshold <= 1.0:
            raise TypeError("threshold must be between 0 and 1")
        self.first_line = bool(opts.pop("first_line", True))
        if opts:
            raise TypeError(f"unknown option(s) {sorted(opts)} for extractive_qa")

    def evaluate(self, task: Task, response: str) -> Verdict:
        expected = task.expected
        if isinstance(expected, str):
            expected = [expected]
        if not isinstance(expected, list) or not expected:
            raise EvaluatorError(f"task {task.id}: 'expected' must be a gold answer or a non-empty list of them")
        golds = [str(g) for g in expected]
        threshold = float(task.options.get("threshold", self.threshold))
        answer = response.strip()
        if self.first_line:
            answer = next((ln.strip() for ln in answer.splitlines() if ln.strip()), "")
        em, best_f1, gold = best_scores(answer, golds)
        return Verdict("PASS" if best_f1 >= threshold else "FAIL",
                       {"expected": golds, "actual": answer[:500], "em": em, "f1": round(best_f1, 4),
                        "best_gold": gold, "threshold": threshold})
