"""Benchmark of the live monitor page with one dataset of 10,000 tasks, against a real server and headless
Chromium (Debian's /usr/bin/chromium):

  1. snapshot size in bytes (GET /api/benchmark/state and the SSE `snapshot` message), with 2,500 tasks done;
  2. page load to fully rendered (navigation start -> the page's "benchwatch:rendered" mark, 10,000 pills in
     the DOM), median of --loads fresh page loads;
  3. frame time while --rate token events/s stream (a task of ~200 events per second: stages, thinking and
     visible tokens, verdict): requestAnimationFrame intervals and long tasks over a 30 s window, plus the
     main thread's busy time from Chromium's performance metrics (CDP Performance.getMetrics);
  4. JS heap (after a forced GC) after --short-min and after --long-min minutes of streaming.

Usage: .venv/bin/python bench/bench_page.py [--tasks 10000] [--rate 200] [--short-min 1] [--long-min 3]
Prints its figures; medians where repeated. The machine is shared: figures are noisy.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchwatch import events as ev  # noqa: E402
from tests.browser.harness import Script, Server, launch_browser  # noqa: E402

MODEL, DATASET = "smollm2", "big"
PAGE = "/docs/benchmark_monitor.html"
FRAME_RECORDER = """
window.__frames = []; window.__longTasks = 0;
let last = performance.now();
const tick = (t) => { window.__frames.push(t - last); last = t; requestAnimationFrame(tick); };
requestAnimationFrame(tick);
new PerformanceObserver((l) => { window.__longTasks += l.getEntries().length; }).observe({ entryTypes: ["longtask"] });
"""


def seed(server: Server, s: Script, n_tasks: int, n_done: int) -> list[str]:
    ids = [f"task-{i:05d}" for i in range(n_tasks)]
    server.post([
        s(ev.RunStarted, models=[ev.PlanModel(name=MODEL, backend="embedded")],
          datasets=[ev.PlanDataset(name=DATASET, evaluator="numeric", task_ids=ids)]),
        s(ev.ModelStarted, model=MODEL, backend="embedded", ordinal=1, total=1),
        s(ev.BackendState, model=MODEL, state="connected"),
        s(ev.DatasetStarted, model=MODEL, dataset=DATASET, task_ids=ids),
    ])
    batch = []
    for i in range(n_done):
        t = dict(model=MODEL, dataset=DATASET, task_id=ids[i], attempt=1)
        batch += [s(ev.TaskStarted, prompt=f"What is {i} + 1?", **t),
                  s(ev.TaskFinished, verdict=("PASS", "FAIL", "PASS", "ERROR")[i % 4], final=True, ttft_ms=100.0,
                    latency_ms=900.0, detail={"expected": str(i + 1), "actual": str(i + 1)}, **t)]
        if len(batch) >= 500:
            server.post(batch)
            batch = []
    if batch:
        server.post(batch)
    return ids


def task_events(s: Script, task_id: str, i: int) -> list:
    """About 200 events: what the runner publishes for one task (stages, coalesced thinking + visible tokens)."""
    t = dict(model=MODEL, dataset=DATASET, task_id=task_id, attempt=1)
    out = [s(ev.TaskStarted, prompt=f"System: be brief.\n\nUser: what is {i} + 1?", **t),
           s(ev.StageChanged, stage="cooling", at_s=0.0, **t), s(ev.StageChanged, stage="thinking", at_s=0.2, **t)]
    out += [s(ev.TokenDelta, kind="thinking", text=f"step {k} ", n_tokens=1, **t) for k in range(40)]
    out.append(s(ev.StageChanged, stage="streaming", at_s=0.4, **t))
    out += [s(ev.TokenDelta, kind="visible", text=f"tok{k} ", n_tokens=1, tps=50.0, **t) for k in range(150)]
    out += [s(ev.StageChanged, stage="evaluating", at_s=0.9, **t), s(ev.StageChanged, stage="done", at_s=0.95, **t),
            s(ev.TaskFinished, verdict="PASS" if i % 3 else "FAIL", final=True, ttft_ms=200.0, latency_ms=950.0,
              tokens_per_s=50.0, detail={"expected": str(i + 1), "actual": str(i + 1)}, **t)]
    return out


class Publisher(threading.Thread):
    """Posts `rate` events/s in batches every 100 ms (the runner's sink also batches) until stopped."""

    def __init__(self, server: Server, s: Script, ids: list[str], start: int, rate: int):
        super().__init__(daemon=True)
        self.server, self.s, self.ids, self.next, self.rate = server, s, ids, start, rate
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        pending: list = []
        per_tick = max(1, self.rate // 10)  # a batch every 100 ms
        t0 = time.monotonic()
        while not self.stop.is_set():
            while len(pending) < per_tick:
                pending += task_events(self.s, self.ids[self.next], self.next)
                self.next = (self.next + 1) % len(self.ids)
            batch, pending = pending[:per_tick], pending[per_tick:]
            self.server.post(batch)
            self.sent += len(batch)
            wait = t0 + self.sent / self.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)


def sse_snapshot_bytes(url: str) -> int:
    with httpx.stream("GET", url + "/api/benchmark/telemetry/stream", timeout=30) as r:
        buf = b""
        for chunk in r.iter_bytes():
            buf += chunk
            if b"event: snapshot" in buf and b"\n\n" in buf[buf.index(b"event: snapshot"):]:
                start = buf.index(b"event: snapshot")
                return buf.index(b"\n\n", start) + 2 - start
    return -1


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--done", type=int, default=2_500, help="tasks already finished before measuring")
    ap.add_argument("--rate", type=int, default=200, help="token/stage events per second while streaming")
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--short-min", type=float, default=1.0)
    ap.add_argument("--long-min", type=float, default=3.0)
    ap.add_argument("--window-s", type=float, default=30.0, help="frame-time window, starting at --short-min")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp)).start()
        try:
            s = Script("bench-page")
            t0 = time.monotonic()
            ids = seed(server, s, args.tasks, args.done)
            print(f"seeded {args.tasks} tasks ({args.done} done) in {time.monotonic() - t0:.1f} s")
            state_bytes = len(httpx.get(server.url + "/api/benchmark/state", timeout=30).content)
            print(f"snapshot size: GET /api/benchmark/state {state_bytes:,} bytes; "
                  f"SSE snapshot message {sse_snapshot_bytes(server.url):,} bytes")

            with sync_playwright() as p:
                browser = launch_browser(p)
                loads = []
                for _ in range(args.loads):
                    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
                    page = ctx.new_page()
                    page.goto(server.url + PAGE)
                    page.wait_for_selector("body[data-rendered='1']", timeout=60000)
                    n = page.locator("#pills-tasks > *").count()
                    assert n == args.tasks, n
                    loads.append(page.evaluate(
                        "performance.getEntriesByName('benchwatch:rendered')[0].startTime"))
                    ctx.close()
                print(f"page load to fully rendered ({args.tasks} pills): median {statistics.median(loads):.0f} ms "
                      f"(runs: {', '.join(f'{x:.0f}' for x in loads)})")

                ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
                page = ctx.new_page()
                cdp = ctx.new_cdp_session(page)
                cdp.send("Performance.enable")
                page.goto(server.url + PAGE)
                page.wait_for_selector("body[data-rendered='1']", timeout=60000)
                page.evaluate(FRAME_RECORDER)

                def metrics() -> dict[str, float]:
                    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}

                def heap_after_gc() -> float:
                    cdp.send("HeapProfiler.collectGarbage")
                    return metrics()["JSHeapUsedSize"] / 1e6

                pub = Publisher(server, s, ids, args.done, args.rate)
                start = time.monotonic()
                pub.start()
                time.sleep(args.short_min * 60)
                heap_short = heap_after_gc()
                page.evaluate("window.__frames = []; window.__longTasks = 0")
                m0 = metrics()
                w0 = time.monotonic()
                time.sleep(args.window_s)
                m1 = metrics()
                wall = time.monotonic() - w0
                frames = page.evaluate("window.__frames")
                long_tasks = page.evaluate("window.__longTasks")
                rate = pub.sent / (time.monotonic() - start)
                time.sleep(max(0.0, start + args.long_min * 60 - time.monotonic()))
                heap_long = heap_after_gc()
                pub.stop.set()
                pub.join(10)
                busy = {k: (m1[k] - m0[k]) / wall * 100 for k in
                        ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")}
                print(f"streaming: {rate:.0f} events/s achieved ({pub.sent} events)")
                print(f"frame interval over {args.window_s:.0f} s: median {statistics.median(frames):.1f} ms, "
                      f"p95 {pct(frames, .95):.1f} ms, p99 {pct(frames, .99):.1f} ms, max {max(frames):.1f} ms, "
                      f"{len(frames)} frames, {sum(f > 50 for f in frames)} over 50 ms, {long_tasks} long tasks")
                print("main thread busy (% of wall time): " + ", ".join(f"{k} {v:.1f}" for k, v in busy.items()))
                print(f"JS heap after GC: {heap_short:.1f} MB after {args.short_min:g} min, "
                      f"{heap_long:.1f} MB after {args.long_min:g} min of streaming "
                      f"({(heap_long - heap_short):+.1f} MB)")
                # The page kept up: its pills agree with the server's counters.
                page.wait_for_timeout(1500)
                st = httpx.get(server.url + "/api/benchmark/state", timeout=30).json()["state"]
                shown = page.evaluate("[...document.querySelectorAll('#pills-tasks > *')].filter("
                                      "e => e.dataset.status !== 'pending' && e.dataset.status !== 'running').length")
                print(f"consistency: page shows {shown} finished pills, server counts {st['counters']['done']}")
                print(json.dumps({"snapshot_bytes": state_bytes, "load_ms_median": statistics.median(loads),
                                  "frame_ms_median": statistics.median(frames), "frame_ms_p99": pct(frames, .99),
                                  "heap_mb_short": heap_short, "heap_mb_long": heap_long}))
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
