"""Monitor overhead: embedded-model tokens/s with the live server + 50 SSE clients attached vs with no monitor.

Side by side in one run: rounds alternate A (no monitor: no server, no sink) and B (a real `benchwatch serve`
child process, 50 SSE clients reading the stream, the runner publishing through the HTTP sink). Each round runs
the same long-answer prompts on the embedded model (SmolLM2-135M, 160 tokens max); tokens/s is the runner's own per-task figure (visible
tokens over streaming time), median per round. Prints the ratio median(B) / median(A); target >= 0.97.

    .venv/bin/python bench/bench_monitor_overhead.py [--rounds 5] [--tasks 4] [--clients 50] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sse_fanout import TOKEN, client_process, start_server  # noqa: E402

from benchwatch.config import parse_config  # noqa: E402
from benchwatch.runner import Runner  # noqa: E402
from benchwatch.runner.http_sink import HttpSink  # noqa: E402
from benchwatch.store import Store  # noqa: E402


TOPICS = ["a lighthouse keeper", "a city under the sea", "the first train across a desert", "a clockmaker's robot",
          "a winter market", "a lost map", "two rival bakers", "a comet over a village"]


def one_round(tmp: Path, tasks: int, monitor: bool, clients: int, n_threads: int | None) -> float:
    data = tmp / "stories.jsonl"  # long answers: tokens/s over a long stream, not over a 3-token reply
    data.write_text("".join(json.dumps({"id": f"s{i}", "prompt": f"Write a long story about {t}.",
                                        "expected": "the"}) + "\n" for i, t in enumerate(TOPICS[:tasks])))
    cfg = parse_config({
        "store": f"sqlite:///{tmp / 'bench.db'}",
        "runner": {"cooling_s": 0, "attempts": 1, "max_tokens": 160},
        "models": [{"name": "smollm2", "backend": "embedded", "n_ctx": 512, "n_threads": n_threads}],
        "datasets": [{"name": "stories", "source": str(data), "evaluator": "contains"}],
    })
    store = Store(cfg.store)
    sinks, server, procs = [], None, []
    if monitor:
        server, url = start_server(tmp, "gevent", 1000)
        stop_at = time.time() + 3600
        procs = [mp.Process(target=client_process, args=(url, clients, stop_at, mp.Queue()), daemon=True)]
        procs[0].start()
        time.sleep(clients * 0.002 + 1.5)
        sinks.append(HttpSink(url, TOKEN))
    try:
        outcome = Runner(cfg, store, sinks).run()
    finally:
        for p in procs:
            p.terminate()
        if server is not None:
            server.terminate()
            server.wait(15)
    rates = [r["tokens_per_s"] for r in store.results(outcome.run_id) if r["tokens_per_s"]]
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp n_threads (default: all cores)")
    args = ap.parse_args()
    a, b = [], []
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            for monitor, out in ((False, a), (True, b)) if r % 2 == 0 else ((True, b), (False, a)):
                out.append(one_round(Path(d), args.tasks, monitor, args.clients, args.threads))
                print(f"round {r + 1} {'with monitor' if monitor else 'no monitor  '}: {out[-1]:.1f} tok/s",
                      flush=True)
    ratio = statistics.median(b) / statistics.median(a)
    print(f"monitor overhead: median {statistics.median(a):.1f} tok/s without, {statistics.median(b):.1f} tok/s "
          f"with server + {args.clients} clients: ratio {ratio:.3f} (target >= 0.97)")


if __name__ == "__main__":
    main()
