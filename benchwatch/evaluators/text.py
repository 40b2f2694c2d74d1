"""Text evaluators: exact match after normalisation, contains, and regex."""
from __future__ import annotations

import copy
import re
import string
from typing import Any

from ..datasets import Task, as_written
from .base import Evaluator, EvaluatorError, Verdict, register

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# A line that only labels what follows ("Answer:", "**Final answer:**", "A:"), and the same label before an
# answer on its own line ("Answer: Paris").
_LABEL = re.compile(r"^[\s*_#>]*(?:final\s+answer|answer|a)\s*[:\uff1a][\s*_]*", re.IGNORECASE)


def golds_of(task: Task) -> list[str]:
    """The gold answers as text, as the dataset wrote them (a JSON 3.10 stays "3.10", true stays "true")."""
    expected = task.expected
    if expected is None:
        raise EvaluatorError(f"task {task.id}: no 'expected' answer")
    return [as_written(e) for e in expected] if isinstance(expected, list) else [as_written(expected)]


def answer_line(text: str) -> str:
    """The first line that carries an answer: lines split on "\n" only; blank lines and label-only lines
    ("Answer:") skipped; a leading "Answer:" label dropped. "Answer:\nParis" and "Answer: Paris" give "Paris"."""
    for line in text.split("\n"):
        line = _LABEL.sub("", line, count=1).strip()
        if line.strip("*_ "):
            return line
    return ""


class _Normaliser:
    def __init__(self, opts: dict[str, Any]):
        self.case = bool(opts.pop("ignore_case", True))
        self.punct = bool(opts.pop("ignore_punctuation", True))
        self.space = bool(opts.pop("collapse_whitespace", True))
        self.articles = bool(opts.pop("ignore_articles", False))
        self.first_line = bool(opts.pop("first_line", False))

    def __call__(self, text: str) -> str:
        if self.first_line:
            text = answer_line(text)
        if self.case:
            text = text.lower()
        if self.punct:
            text = text.translate(_PUNCT)
        if self.articles:
            text = _ARTICLES.sub(" ", text)
        if self.space:
            text = " ".join(text.split())
        return text.strip()

    def for_gold(self, gold: str) -> "_Normaliser":
        """A gold answer that is itself an article (the letter 'A') keeps articles, else it would vanish."""
        if not self.articles or self(gold) or not gold.strip():
            return self
        kept = copy.copy(self)
        kept.articles = False
        return kept


def _no_more(opts: dict[str, Any], name: str) -> None:
    if opts:
        raise TypeError(f"unknown option(s) {sorted(opts)} for {name}")


@register("exact_match")
class ExactMatch(Evaluator):
    """PASS when the normalised answer equals any normalised gold answer.

    Options: ignore_case, ignore_punctuation, collapse_whitespace (default on), ignore_articles,
    first_line (compare only the first line carrying an answer, see `answer_line`; default off).
    """

    def __init__(self, opts: dict[str, Any]):
        self.norm = _Normaliser(opts)
        _no_more(opts, "exact_match")

    def evaluate(self, task: Task, response: str) -> Verdict:
        golds = golds_of(task)
        actual = self.norm(response)
        match = next((g for g in golds if (n := self.norm.for_gold(g))(g) == n(response)), None)
        return Verdict("PASS" if match is not None else "FAIL",
                       {"expected": golds if len(golds) > 1 else golds[0], "actual": response.strip()[:500],
                        "normalised": actual[:500], "matched": match})


@register("contains")
class Contains(Evaluator):
    """PASS when any normalised gold answer occurs in the normalised answer as whole words."""

    def __init__(self, opts: dict[str, Any]):
        self.norm = _Normaliser(opts)
        _no_more(opts, "contains")

    def evaluate(self, task: Task, response: str) -> Verdict:
        golds = golds_of(task)
        match = next((g for g in golds if (n := self.norm.for_gold(g))(g) and f" {n(g)} " in f" {n(response)} "),
                     None)
        return Verdict("PASS" if match is not None else "FAIL",
                       {"expected": golds if len(golds) > 1 else golds[0], "actual": response.strip()[:500],
                        "matched": match})


@register("regex")
class Regex(Evaluator):
    """PASS when the task's `expected` (or the option `pattern`) regex matches the answer."""

    def __init__(self, opts: dict[str, Any]):
        self.pattern = opts.pop("pattern", None)
        self.flags = re.IGNORECASE if opts.pop("ignore_case", True) else 0
        _no_more(opts, "regex")

    def evaluate(self, task: Task, response: str) -> Verdict:
        pattern = task.options.get("pattern") or self.pattern or golds_of(task)[0]
        try:
            m = re.search(pattern, response, self.flags)
        except re.error as exc:
            raise EvaluatorError(f"task {task.id}: bad regex {pattern!r}: {exc}") from None
        return Verdict("PASS" if m else "FAIL", {"expected": f"/{pattern}/", "actual": response.strip()[:500],
                                                 "matched": m.group(0) if m else None})
