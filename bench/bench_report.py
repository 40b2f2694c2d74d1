"""Report generation on a large stored run: time to render the HTML, time for the browser to draw it, file size.

Stores a synthetic run straight into a SQLite file (rows shaped like the runner's: MODELS x TASKS final
attempts, ~30 % failing, a few retried errors) plus an hour of 1 Hz telemetry, then renders the report N times
and, with --browser, opens it in headless Chromium (network cut off) and times until its charts are drawn.
Target: a 2,000-task run with an hour of telemetry renders in under 2 s and draws in under 5 s.

    .venv/bin/python bench/bench_report.py [--models 4] [--tasks 500] [--telemetry-s 3600] [--repeat 5] [--browser]
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from benchwatch.report import render_report
from benchwatch.store import Store


def fill(store: Store, models: int, tasks: int, telemetry_s: int) -> str:
    rng = random.Random(7)
    cfg = {"models": [{"name": f"model-{m}", "backend": "scripted"} for m in range(models)],
           "datasets": [{"name": f"set-{d}", "source": "builtin:facts"} for d in range(3)]}
    run_id = store.create_run(cfg, None)
    run = store.get_run(run_id)
    t = run["created_at"]
    step = telemetry_s / (models * tasks)
    rows = []
    for m in range(models):
        for i in range(tasks):
            verdict = rng.choices(["PASS", "FAIL", "ERROR"], [0.68, 0.3, 0.02])[0]
            ttft = rng.lognormvariate(5, 0.4)
            latency = ttft + rng.lognormvariate(7, 0.5)
            rows.append({"run_id": run_id, "model": f"model-{m}", "backend": "scripted", "dataset": f"set-{i % 3}",
                         "task_id": f"task-{i}", "attempt": 1, "prompt": "What is the answer? " * 20,
                         "response": "The answer is probably " + "forty-two " * rng.randint(1, 40),
                         "expected": ["42"], "verdict": verdict, "final": True, "detail": {"expected": "42"},
                         "error": "backend timed out" if verdict == "ERROR" else None,
                         "stages": {"thinking": [0, ttft / 1000], "streaming": [ttft / 1000, latency / 1000]},
                         "ttft_ms": ttft, "latency_ms": latency, "tokens_per_s": rng.gauss(40, 6),
                         "started_at": t, "finished_at": t + step * 0.9, "thinking": ""})
            t += step
    with store.engine.begin() as c:  # one transaction: filling is not what is measured
        from sqlalchemy import insert

        from benchwatch.store import RESULT_FIELDS, results
        c.execute(insert(results), [{k: r.get(k) for k in RESULT_FIELDS} for r in rows])
    store.add_telemetry({"run_id": run_id, "ts": run["created_at"] + s, "cpu_pct": rng.uniform(20, 90),
                         "gpu_pct": rng.uniform(40, 100), "gpu_temp_c": 60 + s / 200, "tps": rng.gauss(40, 5),
                         "fds": 30, "disk_mbps": 1.0, "unavailable": {}} for s in range(telemetry_s))
    store.set_run_status(run_id, "finished")
    with store.engine.begin() as c:  # the synthetic run ends when its last task does
        from sqlalchemy import update

        from benchwatch.store import runs
        c.execute(update(runs).where(runs.c.id == run_id).values(finished_at=t))
    return run_id


def draw_time(path: Path) -> float:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.route(lambda url: not url.startswith("file:"), lambda route: route.abort())
        t0 = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-charts]", timeout=60000)
        dt = time.perf_counter() - t0
        b.close()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--telemetry-s", type=int, default=3600)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--browser", action="store_true", help="also time the draw in headless Chromium")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{Path(d) / 'bench.db'}")
        run_id = fill(store, args.models, args.tasks, args.telemetry_s)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            html = render_report(store, run_id)
            times.append(time.perf_counter() - t0)
        path = Path(d) / "report.html"
        path.write_text(html, encoding="utf-8")
        print(f"run: {args.models} models x {args.tasks} tasks = {args.models * args.tasks} results, "
              f"{args.telemetry_s} telemetry samples")
        print(f"render: median {statistics.median(times):.3f} s  (min {min(times):.3f}, max {max(times):.3f}, "
              f"n={args.repeat})")
        print(f"file: {len(html.encode()) / 1e6:.2f} MB (ECharts inline: ~1.1 MB of it)")
        if args.browser:
            draws = [draw_time(path) for _ in range(3)]
            print(f"browser load + draw: median {statistics.median(draws):.2f} s  (n=3, headless Chromium)")


if __name__ == "__main__":
    main()
