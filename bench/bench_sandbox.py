"""Code-execution sandbox figures:

  1. HumanEval canonical solutions evaluated per second through the code_execution evaluator, --workers
     threads in parallel (2 on this 2-core machine), median of --repeats passes over all 164 problems;
  2. the sandbox's overhead per evaluation: a trivial program through the sandbox (namespaces, limits, uid,
     harness, temp dir) vs a bare `python -c pass` subprocess, median of --n runs each, one at a time.
     Also `python -I -S -c pass` (the sandbox's flags) and the namespace wrapper alone, to show where the time goes.

    .venv/bin/python bench/bench_sandbox.py [--workers 2] [--repeats 3] [--n 40]

Prints its figures. The machine is shared with other work: figures are noisy; medians are quoted.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchwatch import sandbox  # noqa: E402
from benchwatch.config import DatasetConfig  # noqa: E402
from benchwatch.datasets import load_dataset  # noqa: E402
from benchwatch.evaluators import get_evaluator  # noqa: E402


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def ms(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1000:7.1f} ms  (min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f}, n={len(xs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()

    iso = sandbox.isolation()
    print(f"isolation: {iso.summary()}  (child python: {iso.python})")
    tasks = load_dataset(DatasetConfig(name="he", source="humaneval", evaluator="code_execution"), ROOT)
    evaluator = get_evaluator("code_execution", {"timeout_s": 10})

    rates = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            verdicts = list(pool.map(lambda t: evaluator.evaluate(t, t.expected).verdict, tasks))
        elapsed = time.perf_counter() - t0
        assert verdicts.count("PASS") == len(tasks), "canonical solutions must all pass"
        rates.append(len(tasks) / elapsed)
        print(f"  pass {r + 1}: {len(tasks)} problems in {elapsed:.1f} s = {rates[-1]:.1f} /s")
    print(f"HumanEval canonical solutions, {args.workers} workers: median {statistics.median(rates):.1f} evaluations/s")

    py = iso.python
    bare = timed(lambda: subprocess.run([py, "-c", "pass"], check=True), args.n)
    isolated = timed(lambda: subprocess.run([py, "-I", "-S", "-c", "pass"], check=True), args.n)
    wrapper = None
    if iso.mode == "namespaces":
        wrapper = timed(lambda: subprocess.run(sandbox._NS_CMD + ["/bin/true"], check=True), args.n)
    trivial = timed(lambda: sandbox.run("x = 1", "assert x == 1", limits=sandbox.Limits()), args.n)
    print(f"bare `python -c pass` subprocess:        {ms(bare)}")
    print(f"`python -I -S -c pass` (as the sandbox): {ms(isolated)}")
    if wrapper:
        print(f"namespace wrapper alone (unshare true):  {ms(wrapper)}")
    print(f"sandboxed trivial program + one assert:  {ms(trivial)}")
    print(f"sandbox overhead per evaluation vs bare python: "
          f"{(statistics.median(trivial) - statistics.median(bare)) * 1000:.1f} ms (difference of medians)")


if __name__ == "__main__":
    main()
