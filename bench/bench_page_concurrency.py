"""The monitor under load: a real run with 64 attempts in flight, the page open in headless Chromium.

A real `benchwatch serve` (gunicorn + gevent) on loopback; the real runner (openai backend, runner.concurrency 64)
against the load stand-in (tests/standins/load_openai.py: 300 ms to the first token, 20 tokens 25 ms apart,
unlimited parallelism), as `benchwatch run` in its own process publishing through its real HTTP sink; the monitor page open (1440x900) in Debian's
Chromium. Measured over the run's steady part:

- frame time: requestAnimationFrame intervals on the page (p50 / p95 / p99) and long tasks;
- SSE delivery: a probe POSTs a telemetry sample stamped with its send time to the ingest endpoint 4 times a
  second; an SSE client (httpx, this process) notes when the sample's patch arrives. The latency is ingest POST ->
  SSE receipt through the same server that folds the run's events (the runner's own events are batched by its
  sink every 150 ms by design; that wait is not the server's).

    .venv/bin/python bench/bench_page_concurrency.py [--tasks 1500] [--concurrency 64] [--window-s 20]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_concurrency import dataset, start_standin  # noqa: E402
from bench.bench_page import FRAME_RECORDER, pct  # noqa: E402
from benchwatch import endpoints  # noqa: E402
from benchwatch import events as ev  # noqa: E402
from tests.browser.harness import Server, launch_browser  # noqa: E402

PROBE_RUN = "probe"


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and all its descendants now alive."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0.0
    for proc in procs:
        try:
            total += sum(proc.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def chromium_pids() -> list[int]:
    """This process's Chromium processes (Playwright's driver starts the browser; both are our descendants)."""
    return [c.pid for c in psutil.Process().children(recursive=False)
            if "node" in c.name() or "playwright" in " ".join(c.cmdline())]


def probe(server: Server, stop: threading.Event) -> None:
    # One client for every probe: a new one per POST builds its TLS context first (~50 ms here), which the
    # sample's timestamp would count as the server's delivery time.
    seq = 0
    with httpx.Client(headers={"Authorization": f"Bearer {server.token}"}, timeout=30) as client:
        while not stop.wait(0.25):
            seq += 1
            sample = ev.Telemetry(run_id=PROBE_RUN, seq=seq, ts=time.time(), unavailable={"cpu_pct": "probe"})
            client.post(server.url + endpoints.INGEST, json=[ev.to_json(sample)]).raise_for_status()


def listen(url: str, lat: list[float], stop: threading.Event) -> None:
    # Hundreds of patches a second pass by: only a line that names the probe is parsed, so this client's own JSON
    # work (in a process that also drives the browser) does not delay when it notes a probe's arrival.
    with httpx.stream("GET", url + "/api/benchmark/telemetry/stream", timeout=None) as resp:
        for line in resp.iter_lines():
            if stop.is_set():
                return
            if not line.startswith("data:") or '"probe"' not in line:
                continue
            now = time.time()
            for op in json.loads(line[5:]).get("ops", []):
                # The reducer keeps a sample without its run_id: the probe's is the one marked unavailable "probe".
                sample = op[2] if op[0] == "push" and op[1] == ["telemetry"] else {}
                if sample.get("unavailable", {}).get("cpu_pct") == "probe":
                    lat.append((now - sample["ts"]) * 1000.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=1500)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--warmup-s", type=float, default=5.0)
    ap.add_argument("--window-s", type=float, default=20.0)
    ap.add_argument("--idle-s", type=float, default=8.0, help="baseline frame window before the run starts")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    standin, url = start_standin()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        server = Server(tmp).start()
        try:
            cfg_path = tmp / "run.yaml"
            cfg_path.write_text(json.dumps({  # JSON is YAML
                "store": f"sqlite:///{tmp / 'run.db'}", "server": {"url": server.url},
                "runner": {"cooling_s": 0, "attempts": 1, "concurrency": args.concurrency, "max_tokens": 64},
                "models": [{"name": "load", "backend": "openai", "base_url": f"{url}/v1"}],
                "datasets": [{"name": "load", "source": str(dataset(tmp, args.tasks)), "evaluator": "numeric"}],
            }))
            with sync_playwright() as p:
                browser = launch_browser(p)
                page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
                page.goto(server.url + "/docs/benchmark_monitor.html")
                page.wait_for_selector("body[data-rendered='1']", timeout=15000)
                # Baseline: the same page with no run, same machine, same moment (a shared box starves everyone).
                page.evaluate(FRAME_RECORDER)
                time.sleep(args.idle_s)
                idle = page.evaluate("window.__frames")
                # The runner in its own process (`benchwatch run`, publishing with the server's token), so this
                # process only listens and its receipt times are not delayed by the runner's threads.
                runner = subprocess.Popen([sys.executable, "-m", "benchwatch.cli", "run", "--config", str(cfg_path)],
                                          cwd=tmp, env=dict(os.environ, PYTHONPATH=str(ROOT),
                                                            BENCHWATCH_TOKEN=server.token),
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(args.warmup_s)
                lat: list[float] = []
                stop = threading.Event()
                threads = [threading.Thread(target=probe, args=(server, stop), daemon=True),
                           threading.Thread(target=listen, args=(server.url, lat, stop), daemon=True)]
                for th in threads:
                    th.start()
                # Where the two cores go during the window: CPU share (of one core) of each part.
                parts = {"runner": [runner.pid], "server": [server.proc.pid], "stand-in": [standin.pid],
                         "chromium": chromium_pids()}
                cpu0 = {k: sum(tree_cpu_s(pid) for pid in pids) for k, pids in parts.items()}
                page.evaluate("window.__frames = []; window.__longTasks = 0")
                t0 = time.monotonic()
                time.sleep(args.window_s)
                cpu_share = {k: round((sum(tree_cpu_s(pid) for pid in pids) - cpu0[k]) / (time.monotonic() - t0), 2)
                             for k, pids in parts.items()}
                frames = page.evaluate("window.__frames")
                long_tasks = page.evaluate("window.__longTasks")
                inflight = page.evaluate("window.benchwatchMonitor.state.slots.inflight.filter(Boolean).length")
                strip = page.locator("#now-strip").inner_text()
                stop.set()
                running = runner.poll() is None
                runner.send_signal(signal.SIGINT)
                runner.wait(60)
                browser.close()
            result = {
                "concurrency": args.concurrency, "window_s": args.window_s, "run_still_going": running,
                "inflight_on_page_at_end": inflight, "now_strip": " | ".join(strip.split("\n")),
                "idle_frame_ms_p50": statistics.median(idle), "idle_frame_ms_p95": pct(idle, .95),
                "frame_ms_p50": statistics.median(frames), "frame_ms_p95": pct(frames, .95),
                "frame_ms_p99": pct(frames, .99), "frames": len(frames), "long_tasks": long_tasks,
                "sse_probe_ms_p50": statistics.median(lat) if lat else None,
                "sse_probe_ms_p99": pct(lat, .99) if lat else None, "sse_probes": len(lat),
                "cpu_cores_used": cpu_share,
            }
            print(json.dumps(result, indent=1))
        finally:
            server.stop()
            standin.terminate()


if __name__ == "__main__":
    main()
