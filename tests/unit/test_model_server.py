"""The model server's /metrics turned into series: each server kind's documented names, written here through
prometheus_client (the library vLLM and SGLang publish with), per-interval means of the histograms, counter
resets, missing figures and failed scrapes with their reasons, and the config's refusals."""
from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from benchwatch.config import ConfigError, parse_config
from benchwatch import events as ev
from benchwatch import state as reducer
from benchwatch.telemetry.model_server import (SERIES, ModelServerScraper, active_target, detect,
                                               parse)


class Page:
    """A model server's /metrics, built with prometheus_client; `text()` is what a scrape reads."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()

    def gauge(self, name: str, value: float, **labels: str) -> None:
        g = Gauge(name, "doc", list(labels), registry=self.registry)
        (g.labels(**labels) if labels else g).set(value)

    def histogram(self, name: str, values: list[float]) -> Histogram:
        h = Histogram(name, "doc", registry=self.registry)
        for v in values:
            h.observe(v)
        return h

    def counter(self, name: str, value: float) -> Counter:
        c = Counter(name, "doc", registry=self.registry)
        c.inc(value)
        return c

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def scraper_of(page: Page) -> ModelServerScraper:
    return ModelServerScraper(fetch=lambda url, timeout: page.text())


def test_vllm_names_become_series_and_histograms_become_per_interval_means():
    p = Page()
    p.gauge("vllm:num_requests_running", 3, model_name="q")
    p.gauge("vllm:num_requests_waiting", 2, model_name="q")
    p.gauge("vllm:kv_cache_usage_perc", 0.25, model_name="q")
    ttft = p.histogram("vllm:time_to_first_token_seconds", [0.1, 0.3])
    itl = p.histogram("vllm:inter_token_latency_seconds", [0.02] * 10)
    s = scraper_of(p)
    first = s.sample("qwen", "http://x/metrics")
    assert first["kind"] == "vllm"
    assert (first["running"], first["waiting"], first["kv_cache_pct"]) == (3, 2, 25.0)
    assert first["ttft_s"] is None and first["itl_s"] is None  # a mean over an interval needs two scrapes
    assert first["unavailable"] == {}
    ttft.observe(0.05)
    ttft.observe(0.15)
    for _ in range(4):
        itl.observe(0.04)
    second = s.sample("qwen", "http://x/metrics")
    assert second["ttft_s"] == pytest.approx(0.1) and second["ttft_n"] == 2  # only this interval's requests
    assert second["itl_s"] == pytest.approx(0.04) and second["itl_n"] == 4
    third = s.sample("qwen", "http://x/metrics")
    assert third["ttft_s"] is None and third["ttft_n"] is None  # nothing finished: no mean, and no fake 0
    assert "ttft_s" not in third["unavailable"]


def test_older_vllm_names_are_read_too():
    p = Page()
    p.gauge("vllm:gpu_cache_usage_perc", 0.5)
    p.histogram("vllm:time_per_output_token_seconds", [0.01])
    out = scraper_of(p).sample("m", "http://x/metrics")
    assert out["kv_cache_pct"] == 50.0
    assert out["unavailable"]["running"] == "vllm:num_requests_running not in the scrape"


def test_sglang_mapping():
    p = Page()
    p.gauge("sglang:num_running_reqs", 5)
    p.gauge("sglang:num_queue_reqs", 7)
    p.gauge("sglang:token_usage", 0.125)
    p.histogram("sglang:time_to_first_token_seconds", [0.2])
    p.histogram("sglang:inter_token_latency_seconds", [0.01])
    out = scraper_of(p).sample("m", "http://x/metrics")
    assert (out["kind"], out["running"], out["waiting"], out["kv_cache_pct"]) == ("sglang", 5, 7, 12.5)
    assert out["unavailable"] == {}


def test_tgi_says_what_it_does_not_publish():
    p = Page()
    p.gauge("tgi_batch_current_size", 4)
    p.gauge("tgi_queue_size", 1)
    p.histogram("tgi_request_mean_time_per_token_duration", [0.03])
    out = scraper_of(p).sample("m", "http://x/metrics")
    assert (out["kind"], out["running"], out["waiting"]) == ("tgi", 4, 1)
    assert out["kv_cache_pct"] is None and out["unavailable"]["kv_cache_pct"] == "TGI publishes no KV-cache usage"
    assert out["unavailable"]["ttft_s"] == "TGI publishes no time-to-first-token histogram"


def test_llamacpp_inter_token_latency_from_its_counters():
    p = Page()
    p.gauge("llamacpp:requests_processing", 1)
    p.gauge("llamacpp:requests_deferred", 0)
    p.gauge("llamacpp:kv_cache_usage_ratio", 0.1)
    secs = p.counter("llamacpp:tokens_predicted_seconds", 2.0)
    toks = p.counter("llamacpp:tokens_predicted", 100)
    s = scraper_of(p)
    assert s.sample("m", "http://x/metrics")["itl_s"] is None
    secs.inc(1.0)
    toks.inc(50)
    out = s.sample("m", "http://x/metrics")
    assert out["kind"] == "llamacpp" and out["itl_s"] == pytest.approx(0.02) and out["itl_n"] == 50
    assert out["unavailable"] == {"ttft_s": "llama.cpp's server publishes no time-to-first-token figure"}


def test_generic_takes_names_from_config():
    p = Page()
    p.gauge("my_active", 9)
    p.histogram("my_ttft", [1.0])
    out = ModelServerScraper(fetch=lambda u, t: p.text()).sample(
        "m", "http://x/metrics", "generic", {"running": "my_active", "ttft_histogram": "my_ttft"})
    assert out["kind"] == "generic" and out["running"] == 9
    assert out["unavailable"]["waiting"] == "not named in metrics_names"


def test_two_engines_are_summed_and_the_cache_averaged():
    p = Page()
    g = Gauge("vllm:num_requests_running", "doc", ["engine"], registry=p.registry)
    g.labels(engine="0").set(2)
    g.labels(engine="1").set(3)
    k = Gauge("vllm:kv_cache_usage_perc", "doc", ["engine"], registry=p.registry)
    k.labels(engine="0").set(0.2)
    k.labels(engine="1").set(0.4)
    out = scraper_of(p).sample("m", "http://x/metrics")
    assert out["running"] == 5 and out["kv_cache_pct"] == pytest.approx(30.0)


def test_a_server_restart_skips_the_interval_instead_of_a_negative_mean():
    text = {"v": ""}
    s = ModelServerScraper(fetch=lambda u, t: text["v"])
    for count, total in ((10, 5.0), (2, 0.4)):  # counters went down: the server restarted
        text["v"] = (f"# TYPE vllm:time_to_first_token_seconds histogram\n"
                     f"vllm:time_to_first_token_seconds_sum {total}\nvllm:time_to_first_token_seconds_count {count}\n")
        out = s.sample("m", "http://x/metrics")
    assert out["ttft_s"] is None and out["ttft_n"] is None


@pytest.mark.parametrize("error, reason", [
    (ConnectionRefusedError("[Errno 111] Connection refused"), "ConnectionRefusedError: [Errno 111] Connection refused"),
    (ValueError("Invalid line"), "not the Prometheus text format (Invalid line)"),
])
def test_a_failed_scrape_is_unavailable_with_its_reason(error, reason):
    def fetch(url, timeout):
        raise error
    out = ModelServerScraper(fetch=fetch).sample("m", "http://u:secret@host:8000/metrics")
    assert all(out[k] is None for k in SERIES)
    why = f"scrape of http://host:8000/metrics failed: {reason}"  # the password is not repeated
    assert out["error"] == why and out["unavailable"] == {k: why for k in SERIES}


def test_garbage_page_is_refused_with_the_parser_reason():
    out = ModelServerScraper(fetch=lambda u, t: "<html>not metrics</html>\n").sample("m", "http://x/metrics")
    assert out["error"].startswith("scrape of http://x/metrics failed: not the Prometheus text format")


def test_a_page_of_an_unknown_server_asks_for_metrics_kind():
    out = ModelServerScraper(fetch=lambda u, t: "# TYPE foo gauge\nfoo 1\n").sample("m", "http://x/metrics")
    assert out["unavailable"]["running"].endswith("set models[].metrics_kind")


def test_detect_by_prefix():
    assert detect(parse("# TYPE sglang:num_queue_reqs gauge\nsglang:num_queue_reqs 1\n")).kind == "sglang"
    assert detect(parse("# TYPE other gauge\nother 1\n")) is None


def _state(models, active="a", status="running"):
    """The reducer's state after a run_started whose config names these models (the runner sends its config)."""
    plan = ev.RunPlan(models=[ev.PlanModel(name=m["name"], backend="openai") for m in models],
                      datasets=[ev.PlanDataset(name="d", evaluator="exact_match", task_ids=["t1"])], cooling_s=0.0)
    s = reducer.apply(reducer.initial_state(), plan.run_started("r1", 1, done=[], config={"models": models}))
    s = reducer.apply(s, ev.ModelStarted(run_id="r1", seq=2, model=active, backend="openai", ordinal=1, total=1))
    if status != "running":
        s = reducer.apply(s, ev.RunFinished(run_id="r1", seq=3, status=status))
    return s


def test_active_target_follows_the_running_model():
    models = [{"name": "a", "metrics_url": "http://h/metrics", "metrics_kind": "vllm"}, {"name": "b"}]
    assert active_target(_state(models)) == {"model": "a", "url": "http://h/metrics", "kind": "vllm", "names": {}}
    assert active_target(_state(models, active="b")) is None
    assert active_target(_state(models, status="finished")) is None
    # The page learns only that the charts apply; the URLs stay on the server.
    assert _state(models)["run"]["model_server"] is True
    assert _state([{"name": "a"}])["run"]["model_server"] is False
    assert "metrics_url" not in json.dumps(reducer.view(_state(models)))
    # A hand-made run_started can't point the server at a file or another scheme.
    assert active_target(_state([{"name": "a", "metrics_url": "file:///etc/passwd"}])) is None


BASE = {"datasets": [{"name": "d", "source": "builtin:facts"}]}


def _model(**kw):
    return parse_config({**BASE, "models": [{"name": "m", "backend": "openai", **kw}]}, "c.yaml").models[0]


def test_config_fields():
    m = _model(metrics_url="http://127.0.0.1:8000/metrics")
    assert (m.metrics_url, m.metrics_kind, m.metrics_names) == ("http://127.0.0.1:8000/metrics", "auto", {})


@pytest.mark.parametrize("fields, message", [
    ({"metrics_url": "ftp://h/metrics"}, "models[0](m).metrics_url: expected an http:// or https:// URL"),
    ({"metrics_kind": "triton"}, "models[0](m).metrics_kind: Input should be 'auto', 'vllm'"),
    ({"metrics_names": {"running": "x"}}, "metrics_names is read only with metrics_kind: generic"),
    ({"metrics_kind": "generic"}, "metrics_kind generic needs metrics_names"),
    ({"metrics_kind": "generic", "metrics_names": {"queue": "x"}}, "metrics_names: unknown field(s) ['queue']"),
])
def test_config_refusals_name_the_field(fields, message):
    with pytest.raises(ConfigError) as exc:
        _model(**fields)
    assert message in str(exc.value)


def test_a_store_made_before_the_column_gains_it_and_keeps_its_rows(tmp_path):
    import sqlite3

    from benchwatch.store import Store
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)  # the telemetry table as an older benchwatch made it
    con.execute("CREATE TABLE telemetry (id INTEGER PRIMARY KEY, run_id VARCHAR(64), ts FLOAT NOT NULL, "
                "cpu_pct FLOAT, fds INTEGER, disk_mbps FLOAT, gpu_pct FLOAT, gpu_temp_c FLOAT, tps FLOAT, "
                "unavailable JSON)")
    con.execute("INSERT INTO telemetry (run_id, ts, cpu_pct) VALUES ('r', 1.0, 5.0)")
    con.commit()
    con.close()
    store = Store(f"sqlite:///{db}")
    store.add_telemetry([{"run_id": "r", "ts": 2.0, "model_server": {"model": "m", "running": 1}}])
    rows = store.telemetry("r")
    assert [(r["cpu_pct"], r["model_server"]) for r in rows] == [(5.0, None), (None, {"model": "m", "running": 1})]
    Store(f"sqlite:///{db}")  # opening it again changes nothing


def test_report_weights_the_server_means_and_compares_with_the_client():
    from benchwatch.report.model_server import model_server_report
    ms = lambda ttft, n, **kw: {"model": "m", "ttft_s": ttft, "ttft_n": n, "unavailable": {}, **kw}  # noqa: E731
    samples = [{"ts": 1.0, "model_server": ms(None, None)}, {"ts": 2.0, "model_server": ms(0.1, 1)},
               {"ts": 3.0, "model_server": ms(0.04, 4)},
               {"ts": 4.0, "model_server": {"model": "m", "error": "scrape failed: HTTP 500",
                                            "unavailable": {"ttft_s": "scrape failed: HTTP 500"}}},
               {"ts": 5.0, "model_server": None}]
    rows = [{"model": "m", "final": True, "verdict": v, "first_token_ms": f, "ttft_ms": t, "finished_at": 3.0}
            for v, f, t in (("PASS", 60.0, 70.0), ("FAIL", 80.0, 90.0), ("ERROR", 1000.0, None))]
    out = model_server_report(samples, rows)
    (m,) = out["models"]
    assert m["server_ttft_ms"] == pytest.approx((0.1 + 4 * 0.04) / 5 * 1000)  # 52 ms, not the plain mean 70
    assert m["client_first_token_ms"] == 70.0 and m["client_ttft_ms"] == 80.0  # ERROR attempts left out
    assert m["difference_ms"] == pytest.approx(18.0)
    assert (m["samples"], m["failed_scrapes"], m["server_requests"]) == (4, 1, 5)
    assert out["unavailable"] == {"scrape failed: HTTP 500": 1}
    assert out["series"]["ttft_s"][1] == [2000.0, 100.0]  # ms on the report's axis
    assert model_server_report([{"ts": 1.0, "model_server": None}], rows) == {"present": False}
