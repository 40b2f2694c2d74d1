"""Runner overhead per task, outside model time and cooling.

A zero-latency scripted backend stand-in answers at once (20 streamed chunks), cooling is 0, and a real SQLite
file plus a JSONL event sink are attached, so what is left per task is the runner's own work: events, stage
timing, evaluation, the durable result commit. Target: median under 2 ms.

    .venv/bin/python bench/bench_runner_overhead.py [--tasks 500] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchwatch.config import parse_config
from benchwatch.runner import Runner
from benchwatch.runner.sinks import JsonlSink
from benchwatch.store import Store


class Stamp:
    """A sink that notes when each attempt starts and ends (wall clock of the runner's own thread)."""

    def __init__(self) -> None:
        self.start: dict[str, float] = {}
        self.spans: list[float] = []

    def emit(self, event) -> None:
        if event.type == "task_started":
            self.start[event.task_id] = time.perf_counter()
        elif event.type == "task_finished":
            self.spans.append(time.perf_counter() - self.start.pop(event.task_id))

    def close(self) -> None:
        pass


def one_run(tmp: Path, n: int) -> list[float]:
    data = tmp / "tasks.jsonl"
    data.write_text("".join(json.dumps({"id": f"t{i}", "prompt": f"q{i}", "expected": 42}) + "\n" for i in range(n)))
    answer = "The answer is " + "4" * 1 + "2" + " " * 60  # ~80 chars -> 20 chunks of 4
    cfg = parse_config({
        "store": f"sqlite:///{tmp / f'bench-{time.time_ns()}.db'}",
        "runner": {"cooling_s": 0, "attempts": 1, "coalesce_ms": 50},
        "models": [{"name": "zero", "backend": "scripted", "options": {"answers": {"*": answer}, "chunk": 4}}],
        "datasets": [{"name": "d", "source": str(data), "evaluator": "numeric"}],
    })
    stamp = Stamp()
    runner = Runner(cfg, Store(cfg.store), [JsonlSink(tmp / "events.jsonl"), stamp])
    runner.run()
    return stamp.spans


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    medians, p99s = [], []
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.repeats):
            spans = sorted(one_run(Path(d), args.tasks))
            med = statistics.median(spans) * 1000
            p99 = spans[int(0.99 * (len(spans) - 1))] * 1000
            medians.append(med)
            p99s.append(p99)
            print(f"repeat {r + 1}: {len(spans)} tasks, median {med:.3f} ms/task, p99 {p99:.3f} ms/task")
    print(f"runner overhead per task: median of medians {statistics.median(medians):.3f} ms "
          f"(p99 {statistics.median(p99s):.3f} ms); target < 2 ms")


if __name__ == "__main__":
    main()
