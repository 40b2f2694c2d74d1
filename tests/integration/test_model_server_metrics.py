"""The model server's /metrics scraped at 1 Hz while its model runs, through a live `benchwatch serve`: the
server is a STAND-IN for vLLM (tests/standins/vllm_metrics.py: vLLM's documented metric names served through
prometheus_client; no vLLM can run here). Mid-run the stand-in fails (HTTP 500) and comes back: the live view
and the stored rows say unavailable with the reason, and the series go on after it. The report draws the series
and compares the server's TTFT with the client's."""
from __future__ import annotations

import threading
import time

import pytest

from benchwatch.config import load_config
from benchwatch.report.render import render_report
from benchwatch.runner import Runner
from benchwatch.runner.http_sink import HttpSink
from benchwatch.store import Store
from tests.integration.live_server import TOKEN, LiveServer, StreamReader
from tests.standins.vllm_metrics import VllmMetricsStandin

pytestmark = pytest.mark.slow


def test_vllm_metrics_scraped_while_the_model_runs_with_a_failure_mid_run(tmp_path, write_config):
    vllm = VllmMetricsStandin().start()
    cfg_path = write_config({
        "runner": {"cooling_s": 0.3, "attempts": 1, "coalesce_ms": 20},
        "models": [{"name": "served", "backend": "scripted", "metrics_url": vllm.url,
                    "options": {"answers": {"*": "Paris"}, "first_token_delay_s": 0.05, "token_delay_s": 0.02}},
                   {"name": "plain", "backend": "scripted", "options": {"answers": {"*": "Paris"}}}],
        "datasets": [{"name": "facts", "source": "builtin:facts", "evaluator": "contains", "limit": 12}],
    })
    srv = LiveServer(tmp_path, config=cfg_path)
    reader = StreamReader(srv.url, read_timeout=60)
    stop = threading.Event()

    def serve_traffic():  # the stand-in "serves" requests while the run goes on: its histograms move
        vllm.running.set(1)
        vllm.waiting.set(2)
        vllm.kv_cache.set(0.375)
        while not stop.wait(0.2):
            vllm.answer(0.04, [0.01, 0.03])

    def fail_mid_run():
        reader.until(lambda s: any((t.get("model_server") or {}).get("ttft_s") for t in s["telemetry"]), 30)
        vllm.fail_with = 500
        reader.until(lambda s: any((t.get("model_server") or {}).get("error") for t in s["telemetry"][-2:]), 30)
        vllm.fail_with = None

    threads = [threading.Thread(target=f, daemon=True) for f in (serve_traffic, fail_mid_run)]
    try:
        for t in threads:
            t.start()
        store = Store(load_config(cfg_path).store)
        outcome = Runner(load_config(cfg_path), store, [HttpSink(srv.url, TOKEN)]).run()
        stop.set()
        threads[1].join(30)
        assert not threads[1].is_alive(), "the scrape never showed a value and then a failure during the run"
        rows = [r for r in store.telemetry(outcome.run_id) if r["model_server"]]
        assert rows, "no model-server samples stored with the run"
        assert {r["model_server"]["model"] for r in rows} == {"served"}  # only while that model ran
        ok = [r["model_server"] for r in rows if not r["model_server"].get("error")]
        failed = [r["model_server"] for r in rows if r["model_server"].get("error")]
        assert {(m["kind"], m["running"], m["waiting"], m["kv_cache_pct"]) for m in ok} == {("vllm", 1, 2, 37.5)}
        means = [m for m in ok if m["ttft_s"] is not None]
        assert means and all(m["ttft_s"] == pytest.approx(0.04) and m["ttft_n"] >= 1 for m in means)
        assert all(m["itl_s"] == pytest.approx(0.02) for m in ok if m["itl_s"] is not None)
        why = f"scrape of {vllm.url} failed: HTTP 500 Internal Server Error"
        assert failed and all(m["unavailable"] == {k: why for k in ("running", "waiting", "kv_cache_pct",
                                                                    "ttft_s", "itl_s")} for m in failed)
        last_failure = max(i for i, r in enumerate(rows) if r["model_server"].get("error"))
        assert any(not r["model_server"].get("error") for r in rows[last_failure + 1:]), "no recovery after it"
        # The host figures go on in the same rows: one sample, one time axis.
        assert all(r["cpu_pct"] is not None for r in rows)
        html = render_report(store, outcome.run_id)
        assert 'id="chart-model-server"' in html and "Server TTFT (mean)" in html
        assert f"unavailable in {len(failed)} scrape(s): {why}" in html
    finally:
        stop.set()
        reader.close()
        srv.stop()
        vllm.stop()
