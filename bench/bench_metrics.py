"""Cost of the metrics work: (1) `GET /metrics` render time with 20 models x 10 datasets of label sets, (2) the
sampler's added CPU per hour with one model server's `metrics_url` polled at 1 Hz.

(1) A real SQLite store holds 20 x 10 x --tasks final results (PASS/FAIL/ERROR mixed); the app's /metrics is
rendered through Flask's test client, as after a result was stored (aggregate query + rendering) and with the
results unchanged (the cached store section; only the live-state part is rendered).
(2) A vLLM stand-in (tests/standins/vllm_metrics.py, vLLM's names through prometheus_client, padded with a
dozen more 30-bucket histograms and process figures to a real page's size) runs in its own
process so its CPU is not counted; the telemetry loop ticks with and without an active model whose
metrics_url points at it, and the difference x 3600 is the added CPU per hour at 1 Hz.

    PYTHONPATH=. .venv/bin/python bench/bench_metrics.py [--tasks 5] [--renders 30] [--ticks 300]
"""
from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchwatch import events as ev
from benchwatch import state as reducer
from benchwatch.config import parse_config
from benchwatch.server import metrics as metrics_mod
from benchwatch.server.app import create_app
from benchwatch.server.hub import Hub
from benchwatch.server.telemetry_loop import TelemetryLoop
from benchwatch.store import Store, results

STANDIN = """
import sys, time
from tests.standins.vllm_metrics import VllmMetricsStandin
s = VllmMetricsStandin(); s.port = int(sys.argv[1]); s.start()
s.running.set(3); s.waiting.set(1); s.kv_cache.set(0.4)
# A real vLLM page is mostly what we don't read: a dozen more histograms of ~30 buckets each, plus process figures.
from prometheus_client import Histogram, ProcessCollector, GCCollector, PlatformCollector
ProcessCollector(registry=s.registry); GCCollector(registry=s.registry); PlatformCollector(registry=s.registry)
for i in range(12):
    h = Histogram(f"vllm:other_{i}_seconds", "padding", ["model_name"], registry=s.registry,
                  buckets=[x / 10 for x in range(1, 30)]).labels(model_name="q")
    h.observe(0.5)
for i in range(200):
    s.answer(0.03 + i / 1e4, [0.01, 0.02, 0.015])
print("ready", flush=True)
time.sleep(3600)
"""


def fill_store(store: Store, tasks: int) -> int:
    rng = random.Random(7)
    rows = []
    now = time.time()
    for m in range(20):
        for d in range(10):
            for t in range(tasks):
                verdict = rng.choice(("PASS", "PASS", "FAIL", "ERROR"))
                rows.append({"run_id": "bench", "model": f"model-{m:02d}", "backend": "openai",
                             "dataset": f"dataset-{d}", "task_id": f"t{t}", "attempt": 1, "prompt": "p",
                             "thinking": "", "response": "r", "verdict": verdict, "final": True, "detail": {},
                             "stages": {}, "ttft_ms": rng.uniform(20, 900), "first_token_ms": rng.uniform(10, 800),
                             "latency_ms": rng.uniform(200, 9000), "completion_tokens": rng.randint(1, 900),
                             "started_at": now, "finished_at": now})
    with store.engine.begin() as c:
        c.execute(results.insert(), rows)
    return len(rows)


def render_cost(tasks: int, renders: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'b.db'}")
        n = fill_store(store, tasks)
        cfg = parse_config({"store": store.url, "models": [{"name": "-", "backend": "scripted"}],
                            "datasets": [{"name": "-", "source": "builtin:facts"}]}, "bench")
        app = create_app(cfg, store=store, token="t", start_sampler=False)
        app.extensions["benchwatch"].hub.fold([ev.Telemetry(run_id="host", seq=1, cpu_pct=10.0, fds=30,
                                                            disk_mbps=1.0)])
        client = app.test_client()
        body = client.get("/metrics").get_data()
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        section = app.extensions["benchwatch.metrics"].store_section
        for label, fresh in (("results changed since the last scrape (aggregate + render)", True),
                             ("results unchanged (cached store section)", False)):
            metrics_mod.CACHE_S = 0.0  # check the store's version on every scrape
            client.get("/metrics")
            times, cpu = [], []
            for _ in range(renders):
                if fresh:
                    section.invalidate()
                t0, c0 = time.perf_counter(), time.process_time()
                r = client.get("/metrics")
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                assert r.status_code == 200
            print(f"/metrics, 20 models x 10 datasets, {n} stored results, {series} series, {len(body)} bytes, "
                  f"{label}: median {statistics.median(times) * 1000:.1f} ms wall "
                  f"({statistics.median(cpu) * 1000:.1f} ms CPU), min {min(times) * 1000:.1f} ms, "
                  f"max {max(times) * 1000:.1f} ms over {renders}")
        store.close()


class Sampler:  # the host part held constant (its own cost is bench_sampler_cost.py's)
    def sample(self):
        return {"cpu_pct": 10.0, "fds": 30, "disk_mbps": 1.0, "gpu_pct": None, "gpu_temp_c": None,
                "unavailable": {}}


def scrape_cost(ticks: int, repeats: int) -> None:
    from tests.services import free_port
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", STANDIN, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        url = f"http://127.0.0.1:{port}/metrics"
        hub = Hub(reducer.initial_state())
        hub.fold([ev.RunStarted(run_id="r", seq=1, models=[ev.PlanModel(name="m", backend="openai")],
                                datasets=[ev.PlanDataset(name="d", evaluator="exact_match", task_ids=["a"])],
                                config={"models": [{"name": "m", "metrics_url": url, "metrics_kind": "auto"}]}),
                  ev.ModelStarted(run_id="r", seq=2, model="m", backend="openai", ordinal=1, total=1)])
        idle = Hub(reducer.initial_state())
        added = []
        for r in range(repeats):
            per = {}
            for name, h in (("with", hub), ("without", idle)):
                loop = TelemetryLoop(h, None, sampler=Sampler())
                loop.tick()
                c0 = time.process_time()
                for _ in range(ticks):
                    loop.tick()
                per[name] = (time.process_time() - c0) / ticks
            sample = hub.state["telemetry"][-1]["model_server"]
            assert sample["running"] == 3 and not sample.get("error"), sample
            added.append(per["with"] - per["without"])
            print(f"repeat {r + 1}: tick {per['without'] * 1e6:.0f} us without, {per['with'] * 1e6:.0f} us with "
                  f"the scrape -> added {added[-1] * 3600:.2f} CPU s/hour at 1 Hz")
        print(f"model-server scrape (vLLM stand-in page, {len(open_page(url))} bytes): median added "
              f"{statistics.median(added) * 3600:.2f} CPU s/hour at 1 Hz ({statistics.median(added) * 1e6:.0f} us/scrape)")
    finally:
        proc.terminate()
        proc.wait(5)


def open_page(url: str) -> str:
    from benchwatch.telemetry.model_server import fetch_text
    return fetch_text(url, 2.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=5, help="stored results per model x dataset cell")
    ap.add_argument("--renders", type=int, default=30)
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    render_cost(args.tasks, args.renders)
    scrape_cost(args.ticks, args.repeats)


if __name__ == "__main__":
    main()
