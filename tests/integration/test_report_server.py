"""Reports and history served by a real `benchwatch serve` (gunicorn + gevent) on a loopback port, and the
`benchwatch report` / `export` commands as a user runs them."""
from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess

import pytest

from benchwatch.report import export
from tests.conftest import PYTHON, cli_env
from tests.integration.live_server import LiveServer
from tests.report_runs import MODEL_GOOD, make_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("history")
    store, a = make_run(tmp)
    fixed = {**MODEL_GOOD, "options": {**MODEL_GOOD["options"],
                                       "answers": {**MODEL_GOOD["options"]["answers"], "3 times 10": "30"}}}
    _, b = make_run(tmp, models=[fixed], telemetry=False)
    # A run still going: the runs list links it to the live monitor.
    live = store.create_run({"models": [{"name": "good"}], "datasets": [{"name": "arith"}]}, None)
    return tmp, store, a, b, live


@pytest.fixture(scope="module")
def server(runs):
    tmp = runs[0]
    srv = LiveServer(tmp, store=f"sqlite:///{tmp / 'bench.db'}")
    yield srv
    srv.stop()


def per_model_rates(db, run_id):
    con = sqlite3.connect(db)
    out = {m: (p, n) for m, p, n in con.execute(
        "SELECT model, SUM(verdict = 'PASS'), COUNT(*) FROM results WHERE run_id = ? AND final = 1 GROUP BY model",
        (run_id,))}
    con.close()
    return out


def test_runs_page_lists_runs_with_pass_rates_and_links(server, runs):
    tmp, _, a, b, live = runs
    r = server.client.get("/runs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    for rid in (a, b, live):
        assert f'href="/reports/{rid}"' in html
    for model, (p, n) in per_model_rates(tmp / "bench.db", a).items():
        assert f"{model} · <b>{100 * p / n:.1f} %</b>" in html and f"({p}/{n}" in html
    # Only the running run has a live-monitor link in its row (and the page says a run is active).
    rows = html.split("<tr data-run=")[1:]
    live_rows = [row for row in rows if 'class="live"' in row]
    assert len(live_rows) == 1 and live_rows[0].startswith(f'"{live}"')
    assert 'href="/docs/benchmark_monitor.html"' in html
    assert html.index(f'"{live}"') < html.index(f'"{b}"') < html.index(f'"{a}"')  # newest first


def test_report_page_and_exports_are_served(server, runs):
    tmp, store, a, b, live = runs
    r = server.client.get(f"/reports/{a}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert f"<h1>Run {a}</h1>" in r.text and 'id="report-data"' in r.text and 'href="/runs"' in r.text
    latest = server.client.get("/reports/latest").text
    assert f"<h1>Run {live}</h1>" in latest and "This run is still going" in latest
    for fmt in ("csv", "jsonl"):
        got = server.client.get(f"/reports/{a}/export.{fmt}")
        buf = io.StringIO()
        export(store, a, fmt, buf)
        assert got.status_code == 200 and got.text == buf.getvalue()
        assert f'filename="{a}-results.{fmt}"' in got.headers["content-disposition"]
    tel = server.client.get(f"/reports/{a}/export.jsonl?table=telemetry").text.splitlines()
    assert len(tel) == 40


def test_compare_is_served(server, runs):
    _, _, a, b, _ = runs
    for url in (f"/reports/{a}?compare={b}", f"/compare?a={a}&b={b}"):
        r = server.client.get(url)
        assert r.status_code == 200
        assert 'data-task="arith-03"' in r.text and 'data-task="arith-01"' not in r.text


def test_unknown_run_is_a_404_page(server):
    r = server.client.get("/reports/no-such-run")
    assert r.status_code == 404 and "no run &#39;no-such-run&#39;" in r.text and "sqlite" not in r.text and r.headers["content-type"].startswith("text/html")
    assert server.client.get("/reports/no-such-run/export.csv").status_code == 404
    assert server.client.get("/compare?a=x").status_code == 400


def cli(*args, cwd):
    return subprocess.run([PYTHON, "-m", "benchwatch.cli", *args], cwd=cwd, env=cli_env(), capture_output=True,
                          text=True, timeout=120)


def test_report_and_export_commands(runs, write_config):
    tmp, store, a, b, _ = runs
    cfg = write_config({"store": f"sqlite:///{tmp / 'bench.db'}", "models": [{"name": "x", "backend": "scripted"}],
                        "datasets": [{"name": "d", "source": "builtin:facts"}]})
    p = cli("report", a, "--config", str(cfg), "-o", str(tmp / "r.html"), cwd=tmp)
    assert p.returncode == 0, p.stderr
    html = (tmp / "r.html").read_text()
    assert f"<h1>Run {a}</h1>" in html and "echarts" in html and 'href="/runs"' not in html  # a file: no site links
    p = cli("report", a, "--compare", b, "--config", str(cfg), cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert 'data-task="arith-03"' in (tmp / "reports" / f"{a}-vs-{b}.html").read_text()
    p = cli("export", a, "--format", "csv", "--config", str(cfg), cwd=tmp)
    assert p.returncode == 0 and len(list(csv.DictReader(io.StringIO(p.stdout)))) == len(store.results(a))
    p = cli("export", a, "--format", "jsonl", "-o", str(tmp / "a.jsonl"), "--config", str(cfg), cwd=tmp)
    assert p.returncode == 0
    assert [json.loads(x)["task_id"] for x in (tmp / "a.jsonl").read_text().splitlines()] == [
        r["task_id"] for r in store.results(a)]
    p = cli("report", "nope", "--config", str(cfg), cwd=tmp)
    assert p.returncode == 1 and "no run" in p.stderr and "'nope'" in p.stderr
    p = cli("export", "nope", "--config", str(cfg), cwd=tmp)
    assert p.returncode == 1 and "no run" in p.stderr and "'nope'" in p.stderr
