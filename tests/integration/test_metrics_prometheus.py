"""A real Prometheus (Debian's `prometheus`, started here on a loopback port with its own scrape config and data
directory) scrapes a live `benchwatch serve` during a run; its HTTP API then says what it saw: the verdict counter
equals the stored verdicts, it was scraped while the run went on, and the histograms count the stored answers.
With two workers on a Redis bus every worker answers the same totals (a scrape may reach either)."""
from __future__ import annotations

import json
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchwatch.config import load_config
from benchwatch.runner import Runner
from benchwatch.runner.http_sink import HttpSink
from benchwatch.server import metrics as metrics_mod
from benchwatch.store import Store
from tests.integration.live_server import ROOT, TOKEN, LiveServer
from tests.integration.test_redis_bus import readers_on_both_workers
from tests.services import prometheus_server, redis_server

pytestmark = pytest.mark.slow


def mixed_config(write_config, limit: int = 12, token_delay_s: float = 0.04):
    """Scripted answers: the first two calls error (attempts: 1 -> final ERROR), fact-03 passes, the rest fail."""
    return write_config({
        "runner": {"cooling_s": 0, "attempts": 1, "coalesce_ms": 20},
        "models": [{"name": "script", "backend": "scripted",
                    "options": {"answers": {"capital of Italy": "Rome", "*": "Paris is the answer here"},
                                "chunk": 3, "fail_times": 2,
                                "token_delay_s": token_delay_s}}],
        "datasets": [{"name": "facts", "source": "builtin:facts", "evaluator": "contains", "limit": limit}],
    })


def stored_counts(store: Store, run_id: str) -> dict[tuple[str, str, str], int]:
    out: dict[tuple[str, str, str], int] = {}
    for (model, dataset, _), verdict in store.final_verdicts(run_id).items():
        out[(model, dataset, verdict)] = out.get((model, dataset, verdict), 0) + 1
    return out


def query(prom: str, q: str, **params) -> list[dict]:
    r = httpx.get(f"{prom}/api/v1/{'query_range' if 'step' in params else 'query'}", params={"query": q, **params},
                  timeout=10)
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(pred, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def test_prometheus_scrapes_a_live_server_during_a_run(tmp_path, write_config):
    cfg_path = mixed_config(write_config)
    srv = LiveServer(tmp_path, config=cfg_path)
    try:
        with prometheus_server(tmp_path, [f"127.0.0.1:{srv.port}"], interval_s=1.0) as prom:
            wait_for(lambda: [s for s in query(prom, 'up{job="benchwatch"}') if s["value"][1] == "1"], 30,
                     "Prometheus's first successful scrape")
            store = Store(load_config(cfg_path).store)
            t0 = time.time()
            outcome = Runner(load_config(cfg_path), store, [HttpSink(srv.url, TOKEN)]).run()
            t1 = time.time()
            assert outcome.status == "finished"
            expected = stored_counts(store, outcome.run_id)
            assert set(v for _, _, v in expected) == {"PASS", "FAIL", "ERROR"}  # every label value is exercised
            total = sum(expected.values())

            def scraped_after_the_run():
                res = query(prom, "benchwatch_verdicts_total")
                got = {(s["metric"]["model"], s["metric"]["dataset"], s["metric"]["verdict"]): int(s["value"][1])
                       for s in res}
                return got if sum(got.values()) == total else None
            got = wait_for(scraped_after_the_run, 20, "a scrape with every stored verdict")
            assert got == expected
            # Scraped while the run went on: some scrape saw part of the verdicts, and a task in flight.
            during = query(prom, "sum(benchwatch_verdicts_total)", start=t0, end=t1 + 2, step="0.5")
            values = {int(float(v)) for series in during for _, v in series["values"]}
            assert any(0 < v < total for v in values), values
            in_flight = query(prom, f"max_over_time(benchwatch_tasks_in_flight[{int(time.time() - t0) + 5}s])")
            assert in_flight and in_flight[0]["value"][1] == "1"
            # Histograms count the answered final attempts (the report's timing rule), in seconds.
            answered = [r for r in store.results(outcome.run_id) if r["final"] and r["verdict"] in ("PASS", "FAIL")]
            ttft = query(prom, "benchwatch_ttft_seconds_count")
            assert int(ttft[0]["value"][1]) == len(answered)
            mean = query(prom, "benchwatch_e2e_latency_seconds_sum / benchwatch_e2e_latency_seconds_count")
            assert float(mean[0]["value"][1]) == pytest.approx(
                sum(r["latency_ms"] for r in answered) / len(answered) / 1000.0, rel=1e-6)
            info = query(prom, "benchwatch_run_info")
            assert {(s["metric"]["run_id"], s["metric"]["status"]) for s in info} == {(outcome.run_id, "finished")}
            cpu = query(prom, "benchwatch_host_cpu_percent")
            assert cpu and 0 <= float(cpu[0]["value"][1]) <= 100
            # The Grafana dashboard's every query is valid PromQL (query() asserts it) and finds data in this
            # Prometheus, but the GPU's: this machine has none, so those series are absent, as they should be.
            for title, expr in dashboard_queries():
                found = query(prom, expr.replace("$__rate_interval", "1m").replace("$model", ".*"))
                assert bool(found) == ("gpu" not in expr), (title, expr, found)
    finally:
        srv.stop()


def dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads((ROOT / "docs" / "grafana" / "benchwatch-dashboard.json").read_text())
    return [(p["title"], t["expr"]) for p in dash["panels"] for t in p["targets"]]


def scrape(url: str) -> tuple[str, dict[tuple, float]]:
    r = httpx.get(url + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            if fam.name.startswith(("benchwatch_verdicts", "benchwatch_ttft_seconds", "benchwatch_sse_clients")):
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return r.headers["x-benchwatch-worker"], samples


def test_two_workers_on_a_redis_bus_answer_the_same_totals(tmp_path, write_config):
    cfg_path = mixed_config(write_config, limit=6, token_delay_s=0.0)
    with redis_server(tmp_path) as redis:
        srv = LiveServer(tmp_path, "--workers", "2", "--bus", redis.url, config=cfg_path)
        try:
            store = Store(load_config(cfg_path).store)
            outcome = Runner(load_config(cfg_path), store, [HttpSink(srv.url, TOKEN)]).run()
            expected = stored_counts(store, outcome.run_id)
            answers: dict[str, dict] = {}
            for _ in range(60):  # the kernel picks the worker per connection: scrape until both answered
                pid, samples = scrape(srv.url)
                answers[pid] = samples
                if len(answers) == 2:
                    break
            assert len(answers) == 2, f"every scrape reached worker(s) {list(answers)}"
            a, b = answers.values()
            assert a == b, "the workers' /metrics differ"
            verdicts = {dict(k[1])["verdict"]: v for k, v in a.items() if k[0] == "benchwatch_verdicts_total"}
            assert verdicts == {v: float(n) for (_, _, v), n in expected.items()}
            # SSE streams are held per worker: open some on both, and every scrape counts them all.
            readers = readers_on_both_workers(srv.url)
            try:
                per_worker = {pid: sum(1 for r in readers if r.response_headers.get("x-benchwatch-worker") == pid)
                              for pid in answers}
                assert all(per_worker.values()), per_worker
                time.sleep(metrics_mod.CLIENTS_EVERY_S + 0.5)  # each worker has posted its count since
                seen: dict[str, float] = {}
                for _ in range(60):
                    pid, samples = scrape(srv.url)
                    seen[pid] = samples[("benchwatch_sse_clients", ())]
                    if len(seen) == 2:
                        break
                assert seen == {pid: float(len(readers)) for pid in answers}, (seen, per_worker)
            finally:
                for r in readers:
                    r.close()
        finally:
            srv.stop()
