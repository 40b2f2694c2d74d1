"""The counting and timing-statistics rules: the one home for them. `benchwatch results`, the report, the runs
list, the comparison and the live counters all count with this module.

The rule:
- One verdict per task: only final attempts count (`final = true`); an ERROR that was retried does not.
- pass rate = PASS / (PASS + FAIL + ERROR). An ERROR (the harness or backend failed) counts against the rate,
  because the task did not pass; errors are also shown on their own, so a flaky backend is not mistaken for a
  weak model. The live counters' OK / KO / other shares are PASS, FAIL and ERROR over the same total.
- Timings (TTFT, tokens/s, latency: medians and percentiles) use final attempts that produced an answer
  (PASS or FAIL); an ERROR attempt's times measure the failure, not the model.
- Intervals: Wilson score, 95 %. Percentiles: linear interpolation between closest ranks (NumPy's default);
  reported at p50 / p90 / p95 / p99 (`QUANTILES`), by the report, the comparison and the load figures
  (benchwatch/loadmetrics.py defines ITL, TPOT, throughput and goodput, and summarises them with `quantiles`).
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

VERDICTS = ("PASS", "FAIL", "ERROR")
ANSWERED = ("PASS", "FAIL")  # verdicts whose timings describe the model
QUANTILES = (50, 90, 95, 99)  # the percentiles every summary reports
Z95 = 1.959963984540054  # two-sided 95 % normal quantile
RULE = ("Pass rate = PASS / (PASS + FAIL + ERROR) over final attempts; ERROR counts against the rate and is "
        "also shown on its own. Timings: final PASS and FAIL attempts. Intervals: Wilson score, 95 %.")


def final(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attempts that count: one per task."""
    return [r for r in rows if r["final"]]


def timed(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attempts whose timings count: final, and answered (PASS or FAIL)."""
    return [r for r in rows if r["final"] and r["verdict"] in ANSWERED]


@dataclass
class Tally:
    """Final verdicts of a group of tasks (a model on a dataset, a model, a run)."""
    passed: int = 0
    failed: int = 0
    errored: int = 0

    @classmethod
    def of(cls, verdicts: Iterable[str]) -> "Tally":
        t = cls()
        for v in verdicts:
            t.add(v)
        return t

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errored

    @property
    def rate(self) -> float | None:
        return self.passed / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.passed, self.total)

    def add(self, verdict: str, n: int = 1) -> None:
        if verdict == "PASS":
            self.passed += n
        elif verdict == "FAIL":
            self.failed += n
        elif verdict == "ERROR":
            self.errored += n
        else:
            raise ValueError(f"unknown verdict {verdict!r}; expected one of {VERDICTS}")

    def shares_pct(self) -> tuple[float | None, float | None, float | None]:
        """PASS, FAIL and ERROR as percentages of the total (one decimal), None before any verdict."""
        if not self.total:
            return None, None, None
        return tuple(round(100.0 * n / self.total, 1) for n in (self.passed, self.failed, self.errored))  # type: ignore[return-value]

    def as_dict(self) -> dict[str, Any]:
        iv = self.interval
        return {"pass": self.passed, "fail": self.failed, "error": self.errored, "total": self.total,
                "rate": self.rate, "low": iv[0] if iv else None, "high": iv[1] if iv else None}


def median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a binomial proportion; None when there are no trials.

    Chosen over the normal (Wald) interval because it stays inside [0, 1] and is honest at 0/n and n/n,
    which small benchmark cells hit all the time.
    """
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # At 0/n and n/n an end is exactly 0 or 1; say so rather than leave float rounding a hair inside.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (NumPy's default)."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def quantiles(values: Iterable[float | None]) -> dict[str, float | None]:
    """{"p50": ..., "p90": ..., "p95": ..., "p99": ...} of the values given (None ones left out)."""
    vals = [float(v) for v in values if v is not None]
    return {f"p{q}": percentile(vals, q) for q in QUANTILES}
