"""Concurrency: speed-up and timing fidelity against a stand-in with a fixed answer time and unlimited parallelism.

The stand-in (tests/standins/load_openai.py, its own process, one asyncio loop) answers every request with the
first token 300 ms after the request arrives and 19 more 25 ms apart (an answer takes 775 ms), all in parallel.
The real runner (openai backend, real SQLite store, attempts 1, cooling 0; the sinks of `benchwatch run`: its
terminal display, here as in a log (`--display plain`) or a terminal (`--display live`), and a sink that
serialises every event to JSON as the HTTP publisher does) runs `--tasks` tasks at each concurrency level.

- Speed-up: wall time against the ideal, ceil(tasks / N) waves x 775 ms; efficiency = ideal / wall.
- Fidelity: measured TTFT and ITL (benchwatch/loadmetrics.py) minus the injected 300 ms / 25 ms; median and p99
  of the absolute error. The stand-in's own lateness (how late it wrote each token against its schedule) is
  printed beside it: that part of the error is the stand-in's, not the runner's.
- Client CPU: user+system CPU per request of the runner process and its stream worker process.
- With --breakdown, each first token's error split in three (one clock, CLOCK_MONOTONIC, in all three
  processes): the request's way to the stand-in (worker's sent stamp -> its bytes reached the kernel, as the
  stand-in's SO_TIMESTAMPNS says), the stand-in's lateness, and the way back (the stand-in wrote it -> the worker
  stamped it). Beside them, how long the stand-in took to read a request after it arrived: not part of the
  error, since the stand-in times its answer from the kernel's arrival time.

Before the levels, an untimed warm-up (8 tasks) starts the runner's stream worker process, once per runner
process as in `benchwatch run` (where its start overlaps the connection check); its time is printed apart. A
level with any ERROR attempt stops the bench: a failed run says nothing about speed.

    .venv/bin/python bench/bench_concurrency.py [--tasks 512] [--levels 1,16,64,256] [--display plain|live|none]
                                                [--json] [--breakdown]
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchwatch.config import parse_config  # noqa: E402
from benchwatch.counting import percentile  # noqa: E402
from benchwatch.events import to_json_text  # noqa: E402
from benchwatch.gc_tuning import freeze_long_lived  # noqa: E402
from benchwatch.runner import Runner  # noqa: E402
from benchwatch.runner.display import TerminalDisplay  # noqa: E402
from benchwatch.store import Store  # noqa: E402

TTFT_MS, TOKENS, GAP_MS = 300.0, 20, 25.0
ANSWER_S = (TTFT_MS + (TOKENS - 1) * GAP_MS) / 1000.0


class JsonSink:
    """Serialises each event as the HTTP publisher would (the work a real run does per event), then drops it."""

    def __init__(self) -> None:
        self.n = 0

    def emit(self, event) -> None:
        to_json_text(event)
        self.n += 1

    def close(self) -> None:
        pass


def start_standin() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.standins.load_openai", "--ttft-ms", str(TTFT_MS),
                             "--tokens", str(TOKENS), "--gap-ms", str(GAP_MS)], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    return proc, f"http://127.0.0.1:{line[1]}"


def dataset(tmp: Path, n: int) -> Path:
    tmp.mkdir(exist_ok=True)
    path = tmp / "load.jsonl"
    path.write_text("".join(json.dumps({"id": f"t{i:04d}", "prompt": f"What is {i} plus 1?",
                                        "expected": i + 1}) + "\n" for i in range(n)))
    return path


def display_sink(kind: str) -> list:
    """benchwatch run's terminal display, writing to nowhere: as in a log (plain) or on a terminal (live)."""
    if kind == "none":
        return []
    console = Console(file=io.StringIO(), force_terminal=kind == "live", width=120)
    return [TerminalDisplay(console)]


def client_cpu_s() -> float:
    """CPU seconds (user + system) of the runner: this process and its stream worker process (not the stand-in)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            if "benchwatch.stream_worker" in " ".join(child.cmdline()):
                total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


FIRST_TOKEN_STAMPS: dict[str, tuple[float, float]] = {}  # prompt -> the worker's (sent, first token arrived)


def stamp_first_tokens() -> None:
    """--breakdown: note, for each request, when the stream worker sent it and when its first token arrived (the
    stamps TTFT is measured from). A wrapper around the backend's stream, in this process only."""
    from benchwatch.backends import Text
    from benchwatch.backends.openai_compat import OpenAIBackend
    stream = OpenAIBackend.stream

    def noting(self, messages, params):
        noted = False
        for item in stream(self, messages, params):
            if not noted and isinstance(item, Text) and item.text and item.sent is not None:
                FIRST_TOKEN_STAMPS[messages[-1]["content"]] = (item.sent, item.arrived)
                noted = True
            yield item

    OpenAIBackend.stream = noting


def ttft_breakdown(url: str) -> dict:
    """Each TTFT's error split in three, from the worker's stamps and the stand-in's (one clock, CLOCK_MONOTONIC):
    the request's way to the stand-in (sent -> its bytes reached the stand-in's kernel), the stand-in's lateness
    (its first token written after arrival + TTFT), and the way back (written -> stamped by the worker); and, not
    part of the error, the stand-in's own delay in reading a request that had arrived."""
    there = httpx.get(f"{url}/timeline").json()
    way_in, standin_read, way_back = [], [], []
    for prompt, (sent, arrived) in FIRST_TOKEN_STAMPS.items():
        if prompt in there:
            reached, read_at, written = there[prompt]
            way_in.append((reached - sent) * 1000)
            standin_read.append((read_at - reached) * 1000)
            way_back.append((arrived - written) * 1000)
    FIRST_TOKEN_STAMPS.clear()
    return {"ttft_way_in_ms_p50": percentile(way_in, 50), "ttft_way_in_ms_p99": percentile(way_in, 99),
            "standin_read_ms_p50": percentile(standin_read, 50),
            "standin_read_ms_p99": percentile(standin_read, 99),
            "ttft_way_back_ms_p50": percentile(way_back, 50), "ttft_way_back_ms_p99": percentile(way_back, 99)}


def run_level(url: str, data: Path, tmp: Path, n_tasks: int, level: int, display: str = "plain") -> dict:
    cfg = parse_config({
        "store": f"sqlite:///{tmp / f'c{level}.db'}",
        "runner": {"cooling_s": 0, "attempts": 1, "concurrency": level, "max_tokens": 64,
                   "first_token_timeout_s": 60, "task_timeout_s": 120},
        "models": [{"name": "load", "backend": "openai", "base_url": f"{url}/v1"}],
        "datasets": [{"name": "load", "source": str(data), "evaluator": "numeric"}],
    })
    store = Store(cfg.store)
    httpx.post(f"{url}/reset")
    sink = JsonSink()
    sinks = display_sink(display) + [sink]
    cpu0 = client_cpu_s()
    t0 = time.monotonic()
    outcome = Runner(cfg, store, sinks).run()
    wall = time.monotonic() - t0
    cpu = client_cpu_s() - cpu0
    rows = store.results(outcome.run_id)
    errors = [r for r in rows if r["verdict"] == "ERROR"]
    if errors:  # a run that failed says nothing about speed
        raise SystemExit(f"concurrency {level}: {len(errors)} of {len(rows)} attempts ended in ERROR, "
                         f"e.g. {errors[0].get('error')!r}")
    server = httpx.get(f"{url}/stats").json()
    ideal = math.ceil(n_tasks / level) * ANSWER_S
    ttft_err = [abs(r["ttft_ms"] - TTFT_MS) for r in rows if r["ttft_ms"] is not None]
    itl_err = [abs(r["itl_ms"] - GAP_MS) for r in rows if r["itl_ms"] is not None]
    return {"concurrency": level, "tasks": n_tasks, "status": outcome.status, "verdicts": outcome.counts,
            "wall_s": round(wall, 3), "ideal_s": round(ideal, 3), "efficiency": round(ideal / wall, 4),
            "speedup_vs_1": None, "cpu_ms_per_request": round(cpu * 1000 / max(len(rows), 1), 3),
            "events": sink.n, "server_max_in_flight": server["max_in_flight"],
            "requests_per_s": round(len(rows) / wall, 3),
            "ttft_ms_p50": percentile([r["ttft_ms"] for r in rows if r["ttft_ms"] is not None], 50),
            "itl_ms_p50": percentile([r["itl_ms"] for r in rows if r["itl_ms"] is not None], 50),
            "ttft_err_ms_p50": percentile(ttft_err, 50), "ttft_err_ms_p99": percentile(ttft_err, 99),
            "itl_err_ms_p50": percentile(itl_err, 50), "itl_err_ms_p99": percentile(itl_err, 99),
            "standin_late_first_ms_p50": server["late_first_ms_p50"],
            "standin_late_first_ms_p99": server["late_first_ms_p99"],
            "standin_late_any_ms_p99": server["late_any_ms_p99"],
            **(ttft_breakdown(url) if FIRST_TOKEN_STAMPS else {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=512)
    ap.add_argument("--levels", default="1,16,64,256")
    ap.add_argument("--display", choices=["plain", "live", "none"], default="plain",
                    help="benchwatch run's terminal display: as in a log (default), on a terminal, or none")
    ap.add_argument("--json", action="store_true", help="one JSON object per level instead of the table")
    ap.add_argument("--breakdown", action="store_true",
                    help="split each TTFT error into the request's way to the stand-in, the stand-in's lateness and "
                         "the way back, and print the stand-in's delay in reading requests (wraps the backend's "
                         "stream in this process)")
    args = ap.parse_args()
    if args.breakdown:
        stamp_first_tokens()
    levels = [int(x) for x in args.levels.split(",")]
    freeze_long_lived()  # as `benchwatch run` does once it is set up
    proc, url = start_standin()
    results = []
    try:
        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td)
            data = dataset(tmp, args.tasks)
            # Not timed: a short run that starts the runner's stream worker process (once per runner process; a
            # run overlaps it with its connection check) and warms the imports, so each level measures streaming.
            t0 = time.monotonic()
            run_level(url, dataset(tmp / "warm", 8), tmp / "warm", 8, 8, "none")
            warm_s = time.monotonic() - t0
            for level in levels:
                res = run_level(url, data, tmp, args.tasks, level, args.display)
                results.append(res)
                if args.json:
                    print(json.dumps(res), flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    base = next((r for r in results if r["concurrency"] == 1), None)
    for r in results:
        r["speedup_vs_1"] = round(base["wall_s"] / r["wall_s"], 2) if base else None
    if args.json:
        return
    f = lambda v, d=1: "–" if v is None else f"{v:.{d}f}"  # noqa: E731
    print(f"stand-in: TTFT {TTFT_MS:g} ms, {TOKENS} tokens {GAP_MS:g} ms apart (answer {ANSWER_S * 1000:g} ms), "
          f"unlimited parallelism; {args.tasks} tasks; {os.cpu_count()} CPUs; display {args.display}")
    print(f"warm-up, not counted (8 tasks; starts the stream worker process): {warm_s:.2f} s")
    print(f"{'N':>4} {'wall s':>8} {'ideal s':>8} {'eff %':>6} {'x vs 1':>7} {'CPU ms/req':>10} "
          f"{'TTFT err p50/p99 ms':>20} {'ITL err p50/p99 ms':>19} {'stand-in late p50/p99':>22}")
    for r in results:
        print(f"{r['concurrency']:>4} {r['wall_s']:>8.2f} {r['ideal_s']:>8.2f} {100 * r['efficiency']:>6.1f} "
              f"{f(r['speedup_vs_1']):>7} {r['cpu_ms_per_request']:>10.2f} "
              f"{f(r['ttft_err_ms_p50'], 2) + ' / ' + f(r['ttft_err_ms_p99'], 2):>20} "
              f"{f(r['itl_err_ms_p50'], 2) + ' / ' + f(r['itl_err_ms_p99'], 2):>19} "
              f"{f(r['standin_late_first_ms_p50'], 2) + ' / ' + f(r['standin_late_first_ms_p99'], 2):>22}")
    if args.breakdown:
        print("first token, split (ms, p50 / p99): request to the stand-in | stand-in late | back to the worker"
              "   (not in the error: the stand-in's delay in reading an arrived request)")
        for r in results:
            print(f"{r['concurrency']:>4} {f(r['ttft_way_in_ms_p50'], 2)} / {f(r['ttft_way_in_ms_p99'], 2)} | "
                  f"{f(r['standin_late_first_ms_p50'], 2)} / {f(r['standin_late_first_ms_p99'], 2)} | "
                  f"{f(r['ttft_way_back_ms_p50'], 2)} / {f(r['ttft_way_back_ms_p99'], 2)}   "
                  f"({f(r['standin_read_ms_p50'], 2)} / {f(r['standin_read_ms_p99'], 2)})")


if __name__ == "__main__":
    main()
