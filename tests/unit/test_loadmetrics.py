"""Load metrics, each checked against its definition (benchwatch/loadmetrics.py): per attempt through the runner on
a fake clock, per model over rows, in `results`, the report and the comparison; and Retry-After parsing."""
from __future__ import annotations

import email.utils
import time

import numpy as np
import pytest
from rich.console import Console

from benchwatch.backends import Stats, Text
from benchwatch.backends.http import RETRY_AFTER_MAX_S, retry_after_s
from benchwatch.config import ConfigError, parse_config
from benchwatch.loadmetrics import attempt_metrics, model_load
from benchwatch.report import compare, render_compare, render_report
from benchwatch.results import load_table
from tests.report_runs import make_run
from tests.unit.test_report import parse
from tests.unit.test_runner import make


def test_itl_tpot_output_tokens_on_a_fake_clock(tmp_path):
    # send at 0; thinking token at 0.2, visible tokens at 0.5, 0.55, 0.60, 0.65; server reports 5 tokens.
    script = [(0.2, Text("<think>x</think>", n_tokens=1)), (0.3, Text("3", n_tokens=1)), (0.05, Text("2", n_tokens=1)),
              (0.05, Text(" ", n_tokens=1)), (0.05, Text("!", n_tokens=1)), (0.0, Stats(completion_tokens=5))]
    runner, store, sink, _ = make(tmp_path, script)
    [row] = store.results(runner.run().run_id)
    assert row["output_tokens"] == 5
    assert row["itl_ms"] == pytest.approx((0.65 - 0.2) * 1000 / 4)
    assert row["tpot_ms"] == pytest.approx(0.65 * 1000 / 5)
    assert row["request_ms"] == pytest.approx(650)
    done = [e for e in sink.events if e.type == "task_finished"][0]
    assert (done.output_tokens, done.itl_ms, done.tpot_ms) == (5, row["itl_ms"], row["tpot_ms"])


def test_attempt_metrics_edges():
    # No server count: the runner's own count; one token: no ITL; nothing sent: nothing measured.
    assert attempt_metrics(0.0, 0.1, 0.1, 0.2, 1, None) == {"output_tokens": 1, "itl_ms": None, "tpot_ms": 100.0,
                                                           "request_ms": 200.0}
    assert attempt_metrics(0.0, 0.1, 0.4, 0.5, 4, 0)["itl_ms"] == 100.0  # a reported 0 is not believed
    assert attempt_metrics(None, None, None, None, 0, None) == {"output_tokens": None, "itl_ms": None,
                                                               "tpot_ms": None, "request_ms": None}
    assert attempt_metrics(0.0, None, None, 1.0, 0, None)["itl_ms"] is None


def _row(model, ttft, itl, req, tokens, start, end, verdict="PASS", final=True):
    return {"model": model, "ttft_ms": ttft, "itl_ms": itl, "tpot_ms": None, "request_ms": req,
            "output_tokens": tokens, "started_at": start, "finished_at": end, "verdict": verdict, "final": final}


def test_model_load_throughput_slo_and_goodput():
    rows = [_row("m", 100, 10, 400, 20, 0.0, 1.0), _row("m", 300, 10, 600, 20, 0.5, 2.0),
            _row("m", 200, 30, 900, 10, 1.0, 4.0),
            _row("m", 50, 5, 100, 3, 1.0, 1.5, verdict="ERROR"),  # an error: in the wall time, not the figures
            _row("m", 50, 5, 100, 3, 0.2, 0.3, verdict="ERROR", final=False)]
    load = model_load(rows, {"ttft_ms": 250, "itl_ms": 20, "e2e_ms": None})
    assert load["answered"] == 3 and load["wall_s"] == 4.0
    assert load["requests_per_s"] == 0.75 and load["output_tokens_per_s"] == 12.5
    assert load["quantiles"]["ttft_ms"]["p95"] == pytest.approx(np.percentile([100, 300, 200], 95))
    slo = load["slo"]
    assert slo["objectives"] == {"ttft_ms": 250, "itl_ms": 20}
    assert slo["share_met"] == {"ttft_ms": pytest.approx(2 / 3), "itl_ms": pytest.approx(2 / 3)}
    assert slo["all_met"] == pytest.approx(1 / 3) and slo["goodput_per_s"] == 0.25
    assert "slo" not in model_load(rows)
    empty = model_load([])
    assert empty["requests_per_s"] is None and empty["quantiles"]["itl_ms"]["p99"] is None


def test_a_missing_measurement_does_not_meet_its_slo():
    load = model_load([_row("m", None, None, 100, 1, 0, 1)], {"ttft_ms": 1000})
    assert load["slo"]["share_met"] == {"ttft_ms": 0.0} and load["slo"]["goodput_per_s"] == 0.0


@pytest.mark.parametrize("runner,msg", [
    ({"concurrency": 0}, "runner.concurrency: Input should be greater than or equal to 1"),
    ({"concurrency": "many"}, "runner.concurrency: Input should be a valid integer"),
    ({"max_requests_per_s": 0}, "runner.max_requests_per_s: Input should be greater than 0"),
    ({"slo": {}}, "runner.slo: give at least one of ttft_ms, itl_ms, e2e_ms"),
    ({"slo": {"ttft_ms": -1}}, "runner.slo.ttft_ms: Input should be greater than 0"),
    ({"slo": {"p99": 5}}, "runner.slo.p99: unknown field"),
])
def test_config_refuses_bad_concurrency_fields(runner, msg):
    with pytest.raises(ConfigError) as err:
        parse_config({"runner": runner, "models": [{"name": "m", "backend": "scripted"}],
                      "datasets": [{"name": "d", "source": "builtin:arithmetic"}]}, "c.yaml")
    assert msg in str(err.value)


def test_model_concurrency_is_bounded():
    with pytest.raises(ConfigError) as err:
        parse_config({"models": [{"name": "m", "backend": "openai", "concurrency": 0}],
                      "datasets": [{"name": "d", "source": "builtin:arithmetic"}]}, "c.yaml")
    assert "models[0](m).concurrency: Input should be greater than or equal to 1" in str(err.value)


@pytest.mark.parametrize("value,want", [
    ("2", 2.0), (" 0.5 ", 0.5), ("-3", 0.0), ("99999", RETRY_AFTER_MAX_S), ("", None), (None, None),
    ("soon", None), ("nan", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
])
def test_retry_after_parsing(value, want):
    assert retry_after_s(value) == want


def test_retry_after_http_date_in_the_future():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after_s(when) <= 31


def test_results_report_and_compare_show_every_percentile(tmp_path):
    store, run_a = make_run(tmp_path, telemetry=False)
    _, run_b = make_run(tmp_path, telemetry=False)
    rows = store.results(run_a)
    console = Console(width=200, record=True)
    config = {"runner": {"slo": {"ttft_ms": 5000}}}
    console.print(load_table(rows, config))
    text = console.export_text()
    for needle in ("p50", "p90", "p95", "p99", "ITL ms", "TPOT ms", "req/s", "SLO met", "goodput"):
        assert needle in text
    page = parse(render_report(store, run_a))
    good = [r for r in rows if r["model"] == "good" and r["final"] and r["verdict"] in ("PASS", "FAIL")]
    itl = [r["itl_ms"] for r in good if r["itl_ms"] is not None]
    assert itl, "the scripted model streams several tokens: ITL is measured"
    assert page.text("td", data_metric="itl_ms", data_model="good", data_q="p95") == [f"{np.percentile(itl, 95):,.1f}"]
    html = render_compare(store, run_a, run_b)
    cmp_page = parse(html)
    assert len(cmp_page.text("td", data_metric="itl_ms", data_model="good", data_q="p95")) == 2
    assert "requests/s A" in html and compare(store, run_a, run_b).a.load["good"]["requests_per_s"] > 0
