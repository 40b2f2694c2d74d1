"""Numeric answers: the answer's number equals the expected one within a tolerance.

Which number: with `extract` (a regex), the last match's first group (or the whole match when the regex has
no group), e.g. `####\\s*(\\S+)` for GSM8K's "#### 72"; where it does not match, the fallback (default: the
last number in the answer; `fallback: none` makes it a FAIL). Without `extract`: the last number (or the first,
`pick: first`). Numbers are read with their sign, decimals and thousands separators ("1,234.5"), and a leading
currency sign or a trailing unit does not hide them ("$1,234", "18%", "5kg", "72 dollars").
"""
from __future__ import annotations

import math
import re
from typing import Any

from ..datasets import Task
from .base import Evaluator, EvaluatorError, Verdict, register

# Integers, decimals, thousands separators and a leading sign: "-1,234.5" -> -1234.5. Not inside a word on the
# left ("v2"), nor followed by more digits on the right; letters on the right are a unit ("5kg").
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d)|(?<![\w.])[-+]?\.\d+")


def _value(token: str) -> float | None:
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return None


def last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    return _value(found[-1]) if found else None


def first_number(text: str) -> float | None:
    m = _NUMBER.search(text)
    return _value(m.group(0)) if m else None


@register("numeric")
class Numeric(Evaluator):
    """Options: abs_tol (default 1e-6), rel_tol (default 0), pick: last | first (default last),
    extract (a regex; its first group, else its match, holds the number), fallback: last | none (default last:
    the last number when `extract` does not match)."""

    def __init__(self, opts: dict[str, Any]):
        self.abs_tol = float(opts.pop("abs_tol", 1e-6))
        self.rel_tol = float(opts.pop("rel_tol", 0.0))
        self.pick = opts.pop("pick", "last")
        if self.pick not in ("last", "first"):
            raise TypeError("pick must be 'last' or 'first'")
        extract = opts.pop("extract", None)
        try:
            self.extract = re.compile(extract) if extract else None
        except re.error as exc:
            raise TypeError(f"extract: not a valid regex {extract!r}: {exc}") from None
        self.fallback = opts.pop("fallback", "last")
        if self.fallback not in ("last", "none"):
            raise TypeError("fallback must be 'last' or 'none'")
        if opts:
            raise TypeError(f"unknown option(s) {sorted(opts)} for numeric")

    def read(self, response: str) -> tuple[float | None, str]:
        """(the number, how it was found)."""
        if self.extract is not None:
            for m in reversed(list(self.extract.finditer(response))):
                text = m.group(1) if self.extract.groups else m.group(0)
                value = first_number(text or "")
                if value is not None:
                    return value, f"extract /{self.extract.pattern}/: {m.group(0).strip()[:80]!r}"
            if self.fallback == "none":
                return None, f"extract /{self.extract.pattern}/ did not match (fallback: none)"
            value = last_number(response)
            return value, f"fallback: the last number (extract /{self.extract.pattern}/ did not match)"
        if self.pick == "first":
            return first_number(response), "the first number"
        return last_number(response), "the last number"

    def evaluate(self, task: Task, response: str) -> Verdict:
        try:
            expected = float(str(task.expected).replace(",", "")) if isinstance(task.expected, str) \
                else float(task.expected)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise EvaluatorError(f"task {task.id}: 'expected' must be a number, got {task.expected!r}") from None
        actual, how = self.read(response)
        ok = actual is not None and math.isclose(actual, expected, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        detail = {"expected": task.expected, "actual": actual, "answer": response.strip()[:500],
                  "tolerance": {"abs": self.abs_tol, "rel": self.rel_tol}}
        if self.extract is not None:
            detail["read_as"] = how
        if actual is None:
            detail["reason"] = "no number in the answer"
        return Verdict("PASS" if ok else "FAIL", detail)
