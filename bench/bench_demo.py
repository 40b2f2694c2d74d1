"""The demo as a new user meets it: `benchwatch demo --exit-when-done` timed from the command to its exit, watched
by a real SSE client the way the page follows it (a snapshot, then patches).

Prints: wall time, the run's duration, per task how long its answer streamed and in how many updates the page
saw it grow, the stages the page saw, verdicts per model. Usage:
    .venv/bin/python bench/bench_demo.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.sse_client import LiveState, messages  # noqa: E402


def watch(url: str, out: dict[str, Any], done: threading.Event) -> None:
    """Follow the stream; count, per task attempt, the patches that grew its visible answer or its thinking."""
    live = LiveState()
    growth: dict[str, Counter[str]] = defaultdict(Counter)
    stages_seen: Counter[str] = Counter()
    with httpx.Client(timeout=httpx.Timeout(10, read=120)) as client:
        with client.stream("GET", url + "/api/benchmark/telemetry/stream") as r:
            for msg in messages(r):
                live.feed(msg)
                if msg.kind == "patch":
                    cur = (live.state or {}).get("current") or {}
                    key = f"{cur.get('model')}/{cur.get('dataset')}/{cur.get('task_id')}"
                    for op in msg.data["ops"]:
                        path = op[1]
                        if path[:2] == ["current", "response"] and op[0] == "append":
                            growth[key]["visible"] += 1
                        elif path[:2] == ["current", "thinking"] and op[0] == "append":
                            growth[key]["thinking"] += 1
                        elif path[:2] == ["current", "stage"] and op[0] == "set":
                            stages_seen[op[2]] += 1
                run = (live.state or {}).get("run")
                if run and run.get("status") in ("finished", "interrupted", "failed"):
                    break
    out["growth"] = growth
    out["stages_seen"] = stages_seen
    out["final_state"] = live.state
    done.set()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", metavar="DIR", help="work in DIR (kept) instead of a temporary folder")
    ap.add_argument("--demo-args", default="", help="extra arguments for `benchwatch demo`")
    ap.add_argument("--timeout", type=float, default=600, help="stop the demo after this many seconds")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "demo.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    err_path = work / "demo.err"
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "benchwatch.cli", "demo", "--exit-when-done", "--port", "0", "--delay", "2",
           "--store", f"sqlite:///{db}", *args.demo_args.split()]
    with err_path.open("w") as err:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        url = None
        while url is None and proc.poll() is None and time.monotonic() - t0 < 120:
            m = re.search(r"live monitor: (http://127\.0\.0\.1:\d+)/docs/benchmark_monitor\.html",
                          err_path.read_text())
            url = m.group(1) if m else time.sleep(0.1)
        if url is None:
            print(err_path.read_text()[-3000:], file=sys.stderr)
            return 1
        t_url = time.monotonic() - t0
        out: dict[str, Any] = {}
        done = threading.Event()
        threading.Thread(target=watch, args=(url, out, done), daemon=True).start()
        rc = proc.wait(args.timeout)
        wall = time.monotonic() - t0
        done.wait(30)
    finally:
        if proc.poll() is None:  # interrupted or past the timeout: stop the demo (and so its server) as Ctrl-C does
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    rows = sqlite3.connect(db).execute(
        "select model, dataset, task_id, verdict, stages, tokens_per_s, ttft_ms, latency_ms, response "
        "from results where final = 1 order by id").fetchall()
    run_start, run_end = sqlite3.connect(db).execute("select created_at, finished_at from runs").fetchone()
    print(f"command: {' '.join(['benchwatch', *cmd[3:]])}")
    print(f"exit code {rc}; URL printed after {t_url:.1f} s; command wall time {wall:.1f} s")
    if run_start is not None and run_end is not None:
        print(f"run duration (store) {float(run_end) - float(run_start):.1f} s")
    print(f"stages the page saw (count of tasks entering each): {dict(out.get('stages_seen', {}))}")
    growth = out.get("growth", {})
    by_model: dict[str, list[Any]] = defaultdict(list)
    for r in rows:
        by_model[r[0]].append(r)
    for model, rs in by_model.items():
        stream_s = [json.loads(r[4]).get("streaming", [0, 0]) for r in rs]
        stream_s = [e - s for s, e in stream_s]
        think_s = [(lambda st: st[1] - st[0])(json.loads(r[4]).get("thinking", [0, 0])) for r in rs]
        updates = [growth.get(f"{r[0]}/{r[1]}/{r[2]}", Counter())["visible"] for r in rs]
        chars = [len(r[8] or "") for r in rs]
        tps = [r[5] for r in rs if r[5]]
        print(f"\nmodel {model}: {len(rs)} tasks, verdicts {dict(Counter(r[3] for r in rs))}")
        print(f"  streaming s per answer: median {statistics.median(stream_s):.2f} "
              f"(min {min(stream_s):.2f}, max {max(stream_s):.2f})")
        print(f"  thinking s per answer: median {statistics.median(think_s):.3f} (max {max(think_s):.3f})")
        print(f"  page updates per answer: median {statistics.median(updates):.0f} (min {min(updates)})")
        print(f"  answer length chars: median {statistics.median(chars):.0f}")
        if tps:
            print(f"  tokens/s: median {statistics.median(tps):.1f}")
    try:
        print(f"\nload average: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores")
    except OSError:
        pass
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
