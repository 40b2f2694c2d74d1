"""A report made from a run stored by the real runner (scripted backend stand-in) shows the right numbers.

The expected figures are computed here, independently: rows read with sqlite3 straight from the database
file, intervals by bisection on the Wilson definition, percentiles with NumPy.
"""
from __future__ import annotations

import csv
import io
import json
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from benchwatch.report import compare, export, load_report, render_compare, render_report, runs_list
from benchwatch.report.data import RunNotFound
from tests.report_runs import EVIL_RESPONSE, EVIL_TASK_ID, MODEL_GOOD, add_telemetry, make_run
from tests.unit.test_report_stats import wilson_by_definition


class Cells(HTMLParser):
    """Collects the text of elements carrying data-model (and data-dataset / data-q), and the scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.found: list[tuple[str, dict[str, str], list[str]]] = []
        self.scripts: list[tuple[dict[str, str], str]] = []
        self._script: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "script":
            self._script = a
            self.scripts.append((a, ""))
            return
        if tag in ("td", "tr", "details", "pre", "li"):
            entry = (tag, a, [])
            self.found.append(entry)
            self.stack.append(entry)

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None
        elif self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_data(self, data):
        if self._script is not None:
            a, text = self.scripts[-1]
            self.scripts[-1] = (a, text + data)
            return
        for _, _, texts in self.stack:
            texts.append(data)

    def text(self, tag: str, **attrs: str) -> list[str]:
        return [" ".join("".join(t).split()) for tg, a, t in self.found
                if tg == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]


def parse(html: str) -> Cells:
    p = Cells()
    p.feed(html)
    p.close()
    return p


def final_rows(db: Path, run_id: str) -> list[sqlite3.Row]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = con.execute("SELECT * FROM results WHERE run_id = ? AND final = 1 ORDER BY id", (run_id,)).fetchall()
    con.close()
    return rows


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    store, run_id = make_run(tmp)
    return tmp, store, run_id


def test_pass_rates_and_intervals_are_right(stored):
    tmp, store, run_id = stored
    html = render_report(store, run_id)
    page = parse(html)
    rows = final_rows(tmp / "bench.db", run_id)
    # What the scripted answers must give (see tests/report_runs.py), before any arithmetic:
    verdicts = {(r["model"], r["dataset"], r["task_id"]): r["verdict"] for r in rows}
    assert [verdicts[("good", "arith", f"arith-0{i}")] for i in range(1, 5)] == ["PASS", "PASS", "FAIL", "FAIL"]
    assert [verdicts[("flaky", "arith", f"arith-0{i}")] for i in range(1, 5)] == ["ERROR", "FAIL", "PASS", "FAIL"]
    for model in ("good", "flaky"):
        for dataset in ("arith", "facts", "odd", "*"):
            mine = [r for r in rows if r["model"] == model and (dataset == "*" or r["dataset"] == dataset)]
            n = len(mine)
            k = sum(r["verdict"] == "PASS" for r in mine)
            e = sum(r["verdict"] == "ERROR" for r in mine)
            low, high = wilson_by_definition(k, n)
            [cell] = page.text("td", data_model=model, data_dataset=dataset)
            want = f"{100 * k / n:.1f} % {k}/{n} pass"
            if e:
                want += f" · {e} error" + ("s" if e != 1 else "")
            want += f" 95 % CI {100 * low:.1f}–{100 * high:.1f} %"
            assert cell == want, (model, dataset)
    assert "50.0 % 2/4 pass 95 % CI 15.0–85.0 %" in page.text("td", data_model="good", data_dataset="arith")
    assert page.text("td", data_model="flaky", data_dataset="arith") == [
        "25.0 % 1/4 pass · 1 error 95 % CI 4.6–69.9 %"]


def test_timing_percentiles_are_right(stored):
    tmp, store, run_id = stored
    page = parse(render_report(store, run_id))
    rows = [r for r in final_rows(tmp / "bench.db", run_id) if r["verdict"] in ("PASS", "FAIL")]
    measured = 0
    for metric in ("ttft_ms", "tokens_per_s", "latency_ms"):
        for model in ("good", "flaky"):
            vals = [r[metric] for r in rows if r["model"] == model and r[metric] is not None]
            assert page.text("td", data_metric=metric, data_model=model, data_q="n") == [str(len(vals))]
            for q in (50, 90, 99):
                want = f"{np.percentile(vals, q):,.1f}" if vals else "–"
                assert page.text("td", data_metric=metric, data_model=model, data_q=f"p{q}") == [want]
            measured += bool(vals)
    assert measured == 5  # flaky answers "30" in one chunk: no streaming span, so no tokens/s


def test_inline_data_cannot_be_broken_out_of(stored):
    _, store, run_id = stored
    html = render_report(store, run_id)
    page = parse(html)
    # Exactly our three scripts: the data block, ECharts and the report's own code. Hostile output made none.
    assert [a.get("type", "") for a, _ in page.scripts] == ["application/json", "", ""]
    data = json.loads(page.scripts[0][1])
    assert data == json.loads(json.dumps(load_report(store, run_id).chart_data()))
    assert any(b["task_id"] == EVIL_TASK_ID for b in data["boundaries"])  # reached the block, escaped
    assert "</script" not in page.scripts[0][1].lower() and "<!--" not in page.scripts[0][1]
    # The response is in the page as text.
    assert EVIL_RESPONSE in page.text("pre", **{"class": "response"})
    assert "<img src=x" not in html and "&lt;img src=x" in html


def test_telemetry_and_task_boundaries(stored):
    tmp, store, run_id = stored
    data = load_report(store, run_id).chart_data()
    con = sqlite3.connect(tmp / "bench.db")
    samples = con.execute("SELECT ts, tps, cpu_pct, gpu_pct, gpu_temp_c FROM telemetry WHERE run_id = ? ORDER BY ts",
                          (run_id,)).fetchall()
    attempts = con.execute("SELECT started_at, task_id, verdict FROM results WHERE run_id = ? ORDER BY id",
                           (run_id,)).fetchall()
    con.close()
    assert len(samples) == 40 and data["telemetry"]["count"] == 40
    for i, col in enumerate(("tps", "cpu_pct", "gpu_pct", "gpu_temp_c"), start=1):
        assert data["telemetry"]["series"][col] == [[s[0] * 1000, s[i]] for s in samples]
    assert [(b["start"], b["task_id"], b["verdict"]) for b in data["boundaries"]] == [
        (a[0] * 1000, a[1], a[2]) for a in attempts]
    run = store.get_run(run_id)
    assert data["run_span"] == [run["created_at"] * 1000, run["finished_at"] * 1000]


def test_unavailable_metrics_are_said_to_be_unavailable(tmp_path):
    store, run_id = make_run(tmp_path, telemetry=False,
                             datasets=[{"name": "facts", "source": "builtin:facts", "limit": 1}])
    add_telemetry(store, run_id, n=5, gpu=False)
    page = parse(render_report(store, run_id))
    notes = page.text("li")
    assert "gpu_pct unavailable: NVML: driver not loaded" in notes
    assert "gpu_temp_c unavailable: NVML: driver not loaded" in notes
    series = load_report(store, run_id).chart_data()["telemetry"]["series"]["gpu_pct"]
    assert all(v is None for _, v in series)  # a gap, never a fake zero


def test_a_run_without_results_still_reports(tmp_path):
    from benchwatch.store import Store
    store = Store(f"sqlite:///{tmp_path / 'e.db'}")
    rid = store.create_run({"models": [{"name": "m"}], "datasets": [{"name": "d"}]}, None)
    html = render_report(store, rid)
    assert "no tasks" in html and "No task failed or errored." in html
    with pytest.raises(RunNotFound):
        render_report(store, "nope")


def test_compare_lists_flipped_tasks_only(tmp_path):
    store, a = make_run(tmp_path, telemetry=False)
    # Run B: "good" now answers arith-03 right; "flaky" no longer errors. Everything else is the same.
    fixed = {**MODEL_GOOD, "options": {**MODEL_GOOD["options"],
                                       "answers": {**MODEL_GOOD["options"]["answers"], "3 times 10": "30"}}}
    _, b = make_run(tmp_path, models=[fixed, {"name": "flaky", "backend": "scripted", "options": {"answers": {"*": "30"}}}],
                    telemetry=False)
    cmp = compare(store, a, b)
    flipped = {(f.model, f.dataset, f.task_id): (f.before["verdict"], f.after["verdict"]) for f in cmp.flips}
    assert flipped[("good", "arith", "arith-03")] == ("FAIL", "PASS")
    assert flipped[("flaky", "arith", "arith-01")] == ("ERROR", "FAIL")  # 20+10: "30" is wrong, but it answered
    assert ("good", "arith", "arith-01") not in flipped  # PASS in both
    assert ("good", "arith", "arith-04") not in flipped  # FAIL in both
    assert len(flipped) == 2 and cmp.unchanged == 16 and not cmp.only_a and not cmp.only_b
    page = parse(render_compare(store, a, b))
    listed = [a_.get("data-task") for tg, a_, _ in page.found if tg == "details" and "flip" in a_.get("class", "")]
    assert sorted(listed) == ["arith-01", "arith-03"]
    # The side-by-side matrix: run A's and run B's cells for good × arith, then the difference.
    assert page.text("td", data_model="good", data_dataset="arith") == [
        "50.0 % 2/4 pass 95 % CI 15.0–85.0 %", "75.0 % 3/4 pass 95 % CI 30.1–95.4 %"]


def test_runs_list_numbers(tmp_path):
    store, a = make_run(tmp_path, telemetry=False)
    runs = {r["id"]: r for r in runs_list(store)}
    rows = final_rows(tmp_path / "bench.db", a)
    good = [r for r in rows if r["model"] == "good"]
    cell = runs[a]["per_model"]["good"]
    assert (cell.passed, cell.total) == (sum(r["verdict"] == "PASS" for r in good), len(good))
    assert runs[a]["overall"].total == len(rows)
    assert runs[a]["models"] == ["good", "flaky"] and runs[a]["datasets"] == ["arith", "facts", "odd"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_round_trip(stored, fmt):
    _, store, run_id = stored
    buf = io.StringIO()
    n = export(store, run_id, fmt, buf)
    stored_rows = store.results(run_id)
    assert n == len(stored_rows)
    if fmt == "jsonl":
        back = [json.loads(line) for line in buf.getvalue().splitlines()]
    else:
        back = [_from_csv(r) for r in csv.DictReader(io.StringIO(buf.getvalue()))]
    for got, row in zip(back, stored_rows, strict=True):
        for key in ("run_id", "model", "dataset", "task_id", "attempt", "verdict", "final", "ttft_ms", "tokens_per_s",
                    "latency_ms", "prompt", "response", "expected", "detail", "error", "started_at"):
            assert got[key] == row[key], key
        assert got["stages"] == {k: {"start": v[0], "end": v[1]} for k, v in row["stages"].items()}
    assert any(EVIL_RESPONSE == g["response"] for g in back)


def _from_csv(r: dict[str, str]) -> dict:
    """Read a CSV row back with the documented rules: JSON columns, empty = null, true/false, numbers."""
    out: dict = {}
    for k, v in r.items():
        if v == "":
            out[k] = "" if k in ("prompt", "thinking", "response") else None
        elif k in ("stages", "detail", "expected", "backend_stats"):
            out[k] = json.loads(v)
        elif v in ("true", "false"):
            out[k] = v == "true"
        elif k in ("attempt", "prompt_tokens", "completion_tokens", "thinking_tokens", "visible_tokens"):
            out[k] = int(v)
        elif k in ("ttft_ms", "first_token_ms", "tokens_per_s", "latency_ms", "started_at", "finished_at"):
            out[k] = float(v)
        else:
            out[k] = v
    return out


def test_export_telemetry(stored):
    _, store, run_id = stored
    buf = io.StringIO()
    assert export(store, run_id, "jsonl", buf, table="telemetry") == 40
    back = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [b["cpu_pct"] for b in back] == [s["cpu_pct"] for s in store.telemetry(run_id)]


def test_missing_echarts_says_how_to_get_it(stored, monkeypatch, tmp_path):
    from benchwatch.report import render as render_mod
    _, store, run_id = stored
    monkeypatch.setattr(render_mod, "ECHARTS", tmp_path / "absent" / "echarts.min.js")
    render_mod.echarts_source.cache_clear()
    try:
        with pytest.raises(render_mod.ReportError, match="run scripts/init.sh"):
            render_report(store, run_id)
    finally:
        monkeypatch.undo()
        render_mod.echarts_source.cache_clear()


def test_time_axis_covers_everything_stored(tmp_path):
    store, run_id = make_run(tmp_path, telemetry=False,
                             datasets=[{"name": "facts", "source": "builtin:facts", "limit": 1}])
    run = store.get_run(run_id)
    store.add_telemetry([{"run_id": run_id, "ts": run["created_at"] - 2, "cpu_pct": 1.0},
                         {"run_id": run_id, "ts": run["finished_at"] + 5, "cpu_pct": 2.0}])
    assert load_report(store, run_id).chart_data()["run_span"] == [(run["created_at"] - 2) * 1000,
                                                                   (run["finished_at"] + 5) * 1000]
