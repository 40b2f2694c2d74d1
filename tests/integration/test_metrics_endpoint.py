"""`GET /metrics` on the real app (Flask's test client, a real SQLite store filled by the real runner): the exact
names and types, base units, counts equal to the store, host figures absent (not 0) when unreadable or stale,
bounded labels (no task ids), tasks in flight, and run info."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from benchwatch import events as ev
from benchwatch.config import parse_config
from benchwatch.server import metrics as metrics_mod
from benchwatch.server.app import create_app
from tests.report_runs import EVIL_TASK_ID, make_run

NAMES = {  # family name (as the parser reports it) -> type
    "benchwatch_verdicts": "counter", "benchwatch_ttft_seconds": "histogram",
    "benchwatch_first_token_seconds": "histogram", "benchwatch_e2e_latency_seconds": "histogram",
    "benchwatch_output_tokens": "histogram", "benchwatch_itl_seconds": "histogram",
    "benchwatch_host_cpu_percent": "gauge",
    "benchwatch_server_open_fds": "gauge", "benchwatch_disk_mb_per_second": "gauge",
    "benchwatch_gpu_utilization_percent": "gauge", "benchwatch_gpu_temperature_celsius": "gauge",
    "benchwatch_tasks_in_flight": "gauge", "benchwatch_sse_clients": "gauge", "benchwatch_run_info": "gauge",
    "benchwatch_metrics_label_sets_dropped": "gauge",
}


@pytest.fixture
def served(tmp_path):
    store, run_id = make_run(tmp_path, telemetry=False)
    cfg = parse_config({"store": store.url, "models": [{"name": "-", "backend": "scripted"}],
                        "datasets": [{"name": "-", "source": "builtin:facts"}]}, "test")
    app = create_app(cfg, store=store, token="t", start_sampler=False)
    return app, store, run_id


def families(app) -> tuple[str, dict]:
    r = app.test_client().get("/metrics")
    assert r.status_code == 200 and r.content_type.startswith("text/plain; version=")
    text = r.get_data(as_text=True)
    return text, {f.name: f for f in text_string_to_metric_families(text)}


def fold(app, *events):
    app.extensions["benchwatch"].hub.fold(list(events))


def test_exactly_the_documented_names_and_types(served):
    app, _, _ = served
    _, fams = families(app)
    assert {n: f.type for n, f in fams.items()} == NAMES


def test_verdicts_and_histograms_equal_the_store(served):
    app, store, run_id = served
    _, fams = families(app)
    stored: dict[tuple[str, str, str], int] = {}
    for (m, d, _), v in store.final_verdicts(run_id).items():
        stored[(m, d, v)] = stored.get((m, d, v), 0) + 1
    got = {(s.labels["model"], s.labels["dataset"], s.labels["verdict"]): s.value
           for s in fams["benchwatch_verdicts"].samples if s.name == "benchwatch_verdicts_total" and s.value}
    assert got == stored and any(v == "ERROR" for _, _, v in got)
    rows = [r for r in store.results(run_id) if r["final"] and r["verdict"] in ("PASS", "FAIL")]
    for model in ("good", "flaky"):
        mine = [r for r in rows if r["model"] == model and r["dataset"] == "arith"]
        by = {(s.name, s.labels.get("le")): s.value for s in fams["benchwatch_ttft_seconds"].samples
              if s.labels["model"] == model and s.labels["dataset"] == "arith"}
        assert by[("benchwatch_ttft_seconds_count", None)] == len(mine)
        assert by[("benchwatch_ttft_seconds_sum", None)] == pytest.approx(sum(r["ttft_ms"] for r in mine) / 1000)
        assert by[("benchwatch_ttft_seconds_bucket", "0.05")] == sum(r["ttft_ms"] <= 50 for r in mine)
        assert by[("benchwatch_ttft_seconds_bucket", "+Inf")] == len(mine)
        tokens = {s.labels.get("le"): s.value for s in fams["benchwatch_output_tokens"].samples
                  if s.labels["model"] == model and s.labels["dataset"] == "arith"
                  and s.name == "benchwatch_output_tokens_bucket"}
        assert tokens["4.0"] == sum(r["completion_tokens"] <= 4 for r in mine)


def test_no_task_ids_in_labels_and_label_values_are_model_and_dataset_names(served):
    app, _, _ = served
    text, fams = families(app)
    assert EVIL_TASK_ID not in text and "odd-2" not in text
    labels = {k for f in fams.values() for s in f.samples for k in s.labels}
    assert labels <= {"model", "dataset", "verdict", "le", "run_id", "status"}


def test_label_sets_past_the_cap_are_dropped_and_counted(served, monkeypatch):
    app, _, _ = served
    monkeypatch.setattr(metrics_mod, "MAX_LABEL_SETS", 2)
    monkeypatch.setattr(metrics_mod, "CACHE_S", 0)
    _, fams = families(app)
    pairs = {(s.labels["model"], s.labels["dataset"]) for s in fams["benchwatch_verdicts"].samples}
    assert len(pairs) == 2  # 2 models x 3 datasets stored
    assert fams["benchwatch_metrics_label_sets_dropped"].samples[0].value == 4


def test_host_figures_absent_when_unreadable_never_zero(served):
    app, _, _ = served
    fold(app, ev.Telemetry(run_id="host", seq=1, cpu_pct=12.5, fds=40, disk_mbps=0.0, gpu_pct=None,
                           gpu_temp_c=None, unavailable={"gpu_pct": "NVML: driver not loaded",
                                                         "gpu_temp_c": "NVML: driver not loaded"}))
    _, fams = families(app)
    value = lambda name: [s.value for s in fams[name].samples]  # noqa: E731
    assert value("benchwatch_host_cpu_percent") == [12.5]
    assert value("benchwatch_server_open_fds") == [40]
    assert value("benchwatch_disk_mb_per_second") == [0.0]  # a real 0 is a value
    assert value("benchwatch_gpu_utilization_percent") == [] and value("benchwatch_gpu_temperature_celsius") == []


def test_a_stale_host_sample_is_not_exported(served):
    app, _, _ = served
    fold(app, ev.Telemetry(run_id="host", seq=1, ts=time.time() - metrics_mod.STALE_S - 1, cpu_pct=50.0))
    _, fams = families(app)
    assert fams["benchwatch_host_cpu_percent"].samples == []


def test_tasks_in_flight_and_run_info_follow_the_live_state(served):
    app, _, _ = served
    _, fams = families(app)
    assert fams["benchwatch_tasks_in_flight"].samples[0].value == 0
    assert fams["benchwatch_run_info"].samples == []
    ref = dict(run_id="r9", model="m", dataset="d", task_id="t1", attempt=1)
    fold(app, ev.RunStarted(run_id="r9", seq=1, models=[ev.PlanModel(name="m", backend="scripted")],
                            datasets=[ev.PlanDataset(name="d", evaluator="exact_match", task_ids=["t1"])]),
         ev.TaskStarted(seq=2, prompt="p", **ref))
    _, fams = families(app)
    assert fams["benchwatch_tasks_in_flight"].samples[0].value == 1
    assert [(s.labels, s.value) for s in fams["benchwatch_run_info"].samples] == [
        ({"run_id": "r9", "status": "running"}, 1.0)]
    fold(app, ev.TaskFinished(seq=3, verdict="PASS", final=True, **ref),
         ev.RunFinished(run_id="r9", seq=4, status="finished"))
    _, fams = families(app)
    assert fams["benchwatch_tasks_in_flight"].samples[0].value == 0
    assert fams["benchwatch_run_info"].samples[0].labels == {"run_id": "r9", "status": "finished"}


def test_without_a_store_the_state_figures_still_answer(tmp_path):
    app = create_app(None, store=None, token="t", start_sampler=False)
    text, fams = families(app)
    assert "benchwatch_verdicts" not in fams and fams["benchwatch_sse_clients"].samples[0].value == 0


def test_the_grafana_dashboard_reads_only_exported_names():
    import json
    import re
    from tests.conftest import ROOT
    dash = json.loads((ROOT / "docs" / "grafana" / "benchwatch-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {n for e in exprs for n in re.findall(r"\bbenchwatch_[a-z0-9_]+", e)}
    exported = set(NAMES) | {n + s for n in NAMES for s in ("_total", "_bucket", "_sum", "_count")}
    assert used and used <= exported, used - exported


def test_a_result_stored_after_a_scrape_is_in_the_next_one(served, monkeypatch):
    app, store, run_id = served
    monkeypatch.setattr(metrics_mod, "CACHE_S", 0)

    def passes():
        _, fams = families(app)
        return sum(s.value for s in fams["benchwatch_verdicts"].samples
                   if s.name == "benchwatch_verdicts_total" and s.labels["verdict"] == "PASS")
    before = passes()
    assert passes() == before  # unchanged store: the cached section, same answer
    row = dict(store.results(run_id)[0], task_id="extra", verdict="PASS", final=True)
    row.pop("id")
    store.add_result(row)
    assert passes() == before + 1


def test_a_store_gone_away_leaves_its_figures_out_and_the_rest_answers(served, monkeypatch):
    app, store, _ = served
    monkeypatch.setattr(metrics_mod, "CACHE_S", 0)
    families(app)
    store.engine.dispose()
    (Path(store.url.removeprefix("sqlite:///"))).unlink()  # the database file is gone...
    Path(store.url.removeprefix("sqlite:///")).mkdir()  # ...and a directory sits where it was: unopenable
    text, fams = families(app)
    assert "benchwatch_verdicts" not in fams and "benchwatch_ttft_seconds" not in fams
    assert fams["benchwatch_tasks_in_flight"].samples[0].value == 0
