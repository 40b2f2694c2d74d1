"""The store on a real PostgreSQL server (by URL, as config.example.yaml offers): a real embedded-model run killed
with -9 and resumed, results and the report read back, and a live server storing telemetry and serving the run.
The server is a throw-away cluster from Debian's package on a loopback port (tests/services.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from benchwatch.config import load_config
from benchwatch.runner import Runner
from benchwatch.runner.http_sink import HttpSink
from benchwatch.store import Store
from tests.conftest import PYTHON, cli_env
from tests.integration.live_server import TOKEN, LiveServer
from tests.services import postgres_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_cluster():
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_url(pg_cluster):
    """A fresh database on the module's cluster for each test."""
    name = "t_" + uuid.uuid4().hex[:10]
    admin = create_engine(pg_cluster, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return pg_cluster.rsplit("/", 1)[0] + "/" + name


def test_kill_9_resume_results_and_report_on_postgres(tmp_path, write_config, pg_url):
    cfg = write_config({
        "store": pg_url,
        "runner": {"cooling_s": 0.3, "attempts": 1, "max_tokens": 16},
        "models": [{"name": "smollm2", "backend": "embedded", "n_ctx": 512}],
        "datasets": [{"name": "facts", "source": "builtin:facts", "evaluator": "contains", "limit": 8}],
    })
    store = Store(pg_url)
    proc = subprocess.Popen([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(cfg)], cwd=tmp_path,
                            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        run_id = None
        while time.time() < deadline and proc.poll() is None:
            run_id = run_id or store.latest_run_id()
            if run_id and len(store.final_verdicts(run_id)) >= 3:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert run_id, proc.stderr.read()[-2000:] if proc.stderr else ""
    before = store.final_verdicts(run_id)
    assert 3 <= len(before) < 8, "the kill should land mid-run"
    assert store.get_run(run_id)["status"] == "running"  # killed: nobody could mark it
    res = subprocess.run([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(cfg), "--resume", run_id],
                         cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    after = store.final_verdicts(run_id)
    assert len(after) == 8 and before.items() <= after.items()  # nothing stored before the kill changed
    assert len([r for r in store.results(run_id) if r["final"]]) == 8  # exactly one final row per task
    assert store.get_run(run_id)["status"] == "finished"

    res = subprocess.run([PYTHON, "-m", "benchwatch.cli", "results", run_id, "--config", str(cfg),
                          "--format", "json"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [json.loads(line) for line in res.stdout.splitlines()]  # one JSON object per attempt
    assert {(r["task_id"], r["verdict"]) for r in rows if r["final"]} == {(t, v) for (_, _, t), v in after.items()}
    assert all(r["stages"] and r["tokens_per_s"] for r in rows if r["verdict"] != "ERROR")

    out = tmp_path / "report.html"
    res = subprocess.run([PYTHON, "-m", "benchwatch.cli", "report", run_id, "--config", str(cfg), "-o", str(out)],
                         cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert run_id in out.read_text()


def test_live_server_on_postgres_stores_telemetry_and_serves_the_run(tmp_path, write_config, pg_url):
    cfg_path = write_config({
        "store": pg_url,
        "runner": {"cooling_s": 0.4, "attempts": 1, "coalesce_ms": 20},
        "models": [{"name": "script", "backend": "scripted",
                    "options": {"answers": {"*": "Paris is the answer here"}, "chunk": 3, "token_delay_s": 0.05}}],
        "datasets": [{"name": "facts", "source": "builtin:facts", "evaluator": "contains", "limit": 6}],
    })
    srv = LiveServer(tmp_path, config=cfg_path)
    try:
        store = Store(load_config(cfg_path).store)
        sink = HttpSink(srv.url, TOKEN)
        outcome = {}
        t = threading.Thread(target=lambda: outcome.setdefault("o", Runner(load_config(cfg_path), store,
                                                                           [sink]).run()))
        t.start()
        t.join(120)
        run_id = outcome["o"].run_id
        assert outcome["o"].status == "finished"
        deadline = time.time() + 15
        while time.time() < deadline and srv.state()["state"]["run"]["status"] != "finished":
            time.sleep(0.1)
        state = srv.state()["state"]
        assert state["counters"]["done"] == 6 and state["run"]["id"] == run_id
        # The server's 1 Hz sampler stored host telemetry with the run, in PostgreSQL.
        samples = store.telemetry(run_id)
        assert samples and all(s["cpu_pct"] is not None for s in samples)
        assert samples[0]["unavailable"].get("gpu_pct")  # no GPU here: null plus its reason, stored as such
        runs = srv.client.get("/api/runs").json()
        assert any(r["id"] == run_id for r in (runs["runs"] if isinstance(runs, dict) else runs))
        results = srv.client.get(f"/api/runs/{run_id}").json()
        assert len(results["results"]) == 6
        report = srv.client.get(f"/reports/{run_id}")
        assert report.status_code == 200 and run_id in report.text
    finally:
        srv.stop()
