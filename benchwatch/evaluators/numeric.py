"""Numeric answers: the last number in the answer equals the expected one within a tolerance."""
from __future__ import annotations

import math
import re
from typing import Any

from ..datasets import Task
from . import EvaluatorError, Verdict, register

# Integers, decimals, thousands separators and a leading sign: "-1,234.5" -> -1234.5
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])|(?<![\w.])[-+]?\.\d+")


def last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


@register("numeric")
class Numeric:
    """Options: abs_tol (default 1e-6), rel_tol (default 0), pick: last | first (default last)."""

    def __init__(self, opts: dict[str, Any]):
        self.abs_tol = float(opts.pop("abs_tol", 1e-6))
        self.rel_tol = float(opts.pop("rel_tol", 0.0))
        self.pick = opts.pop("pick", "last")
        if self.pick not in ("last", "first"):
            raise TypeError("pick must be 'last' or 'first'")
        if opts:
            raise TypeError(f"unknown option(s) {sorted(opts)} for numeric")

    def evaluate(self, task: Task, response: str) -> Verdict:
        try:
            expected = float(task.expected)
        except (TypeError, ValueError):
            raise EvaluatorError(f"task {task.id}: 'expected' must be a number, got {task.expected!r}") from None
        if self.pick == "first":
            m = _NUMBER.search(response)
            actual = float(m.group(0).replace(",", "")) if m else None
        else:
            actual = last_number(response)
        ok = actual is not None and math.isclose(actual, expected, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        detail = {"expected": task.expected, "actual": actual, "answer": response.strip()[:500],
                  "tolerance": {"abs": self.abs_tol, "rel": self.rel_tol}}
        if actual is None:
            detail["reason"] = "no number in the answer"
        return Verdict("PASS" if ok else "FAIL", detail)
