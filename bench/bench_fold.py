"""The server's fold: CPU per event of what the live server does with each event it ingests.

Records the events of a real run (openai backend against the load stand-in, tests/standins/load_openai.py:
`--tasks` tasks, `--concurrency` in flight), then, as the server's ingest does, parses them from JSON in
batches of the most the runner's sink posts at once (128), folds them into the state and builds each SSE patch
message (benchwatch/server/fold.py FoldLog). Prints the median of `--passes` passes in microseconds per event.
The fold is what keeps a telemetry sample (or another client) waiting while a batch is folded.

    .venv/bin/python bench/bench_fold.py [--tasks 3000] [--concurrency 64] [--passes 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_concurrency import dataset, start_standin  # noqa: E402
from benchwatch.config import parse_config  # noqa: E402
from benchwatch.events import parse_events, to_json  # noqa: E402
from benchwatch.runner import Runner  # noqa: E402
from benchwatch.runner.http_sink import BATCH_MAX as BATCH  # noqa: E402
from benchwatch.runner.sinks import MemorySink  # noqa: E402
from benchwatch.server.fold import FoldLog  # noqa: E402
from benchwatch.store import Store  # noqa: E402


def record(n_tasks: int, concurrency: int) -> list[dict]:
    proc, url = start_standin()
    try:
        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td)
            cfg = parse_config({
                "store": f"sqlite:///{tmp / 'fold.db'}",
                "runner": {"cooling_s": 0, "attempts": 1, "concurrency": concurrency, "max_tokens": 64},
                "models": [{"name": "load", "backend": "openai", "base_url": f"{url}/v1"}],
                "datasets": [{"name": "load", "source": str(dataset(tmp, n_tasks)), "evaluator": "numeric"}],
            })
            sink = MemorySink()
            Runner(cfg, Store(cfg.store), [sink]).run()
            return [to_json(e) for e in sink.events]
    finally:
        proc.terminate()
        proc.wait()


def fold_pass(bodies: list[bytes]) -> float:
    fold = FoldLog()
    t0 = time.perf_counter()
    for body in bodies:
        fold.fold(parse_events(json.loads(body)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--passes", type=int, default=5)
    args = ap.parse_args()
    events = record(args.tasks, args.concurrency)
    bodies = [json.dumps(events[i:i + BATCH]).encode() for i in range(0, len(events), BATCH)]
    times = [fold_pass(bodies) for _ in range(args.passes)]
    per_event = statistics.median(times) * 1e6 / len(events)
    print(json.dumps({"tasks": args.tasks, "concurrency": args.concurrency, "events": len(events),
                      "batch": BATCH, "passes": args.passes, "fold_us_per_event_median": round(per_event, 1),
                      "batch_fold_ms_median": round(per_event * BATCH / 1000, 2)}, indent=1))


if __name__ == "__main__":
    main()
