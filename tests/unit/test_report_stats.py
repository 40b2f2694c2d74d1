"""Wilson intervals and percentiles against independent computations."""
from __future__ import annotations

import math

import numpy as np
import pytest

from benchwatch.counting import percentile, wilson


def wilson_by_definition(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson interval is the set of p where |k/n - p| <= z*sqrt(p(1-p)/n): find its ends by bisection."""
    ph = k / n

    def outside(p: float) -> float:
        return abs(ph - p) - z * math.sqrt(p * (1 - p) / n)

    def root(lo: float, hi: float) -> float:  # outside(lo) and outside(hi) have opposite signs
        for _ in range(200):
            mid = (lo + hi) / 2
            if (outside(mid) > 0) == (outside(lo) > 0):
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    low = 0.0 if k == 0 else root(0.0, ph)
    high = 1.0 if k == n else root(ph, 1.0)
    return low, high


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 10), (10, 10), (1, 4), (2, 4), (8, 10), (37, 50), (1, 1000)])
def test_wilson_matches_its_definition(k, n):
    low, high = wilson(k, n)
    want_low, want_high = wilson_by_definition(k, n)
    assert low == pytest.approx(want_low, abs=1e-9) and high == pytest.approx(want_high, abs=1e-9)
    assert 0 <= low <= k / n <= high <= 1


def test_wilson_published_value_and_empty_cell():
    # 8 of 10: the textbook 95 % Wilson interval is 0.490 to 0.943.
    low, high = wilson(8, 10)
    assert round(low, 3) == 0.490 and round(high, 3) == 0.943
    assert wilson(0, 0) is None


@pytest.mark.parametrize("values", [[5.0], [1.0, 2.0], [3.0, 1.0, 2.0], list(range(1, 101)),
                                    [0.1, 7.5, 2.25, 9.0, 3.3, 3.3, 120.0]])
@pytest.mark.parametrize("q", [0, 50, 90, 99, 100])
def test_percentile_matches_numpy(values, q):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_percentile_of_nothing():
    assert percentile([], 50) is None
