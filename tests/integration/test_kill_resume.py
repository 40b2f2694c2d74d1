"""kill -9 a real run of the embedded model mid-way, resume it: exactly one final verdict per task."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.conftest import PYTHON, cli_env

pytestmark = pytest.mark.slow


def final_rows(db_path):
    db = sqlite3.connect(db_path)
    try:
        return db.execute("select model, dataset, task_id, verdict from results where final = 1").fetchall()
    finally:
        db.close()


def wait_for_final_rows(db_path, n, timeout_s=180):
    """Until the run has stored `n` final verdicts (the database may not exist or be mid-write yet)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if db_path.exists() and len(final_rows(db_path)) >= n:
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)


def test_kill_9_then_resume_gives_exactly_once_verdicts(tmp_path, write_config):
    cfg = write_config({
        "runner": {"cooling_s": 0.3, "attempts": 1, "max_tokens": 16},
        "models": [{"name": "smollm2", "backend": "embedded", "n_ctx": 512}],
        "datasets": [{"name": "facts", "source": "builtin:facts", "evaluator": "contains", "limit": 8}],
    })
    db_path = tmp_path / "bench.db"
    proc = subprocess.Popen([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(cfg)], cwd=tmp_path,
                            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_final_rows(db_path, 3)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    before = final_rows(db_path)
    assert 3 <= len(before) < 8, "the kill should land mid-run"
    run_id = sqlite3.connect(db_path).execute("select id, status from runs").fetchone()
    assert run_id[1] == "running"  # killed: nobody could mark it
    res = subprocess.run([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(cfg), "--resume", run_id[0]],
                         cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    after = final_rows(db_path)
    keys = [(m, d, t) for m, d, t, _ in after]
    assert len(keys) == len(set(keys)) == 8
    assert set(before) <= set(after)  # nothing stored before the kill was lost or changed
    status = sqlite3.connect(db_path).execute("select status from runs").fetchone()[0]
    assert status == "finished"


def test_ctrl_c_marks_interrupted_and_prints_resume(tmp_path, write_config):
    cfg = write_config({
        "runner": {"cooling_s": 0.5, "attempts": 1, "max_tokens": 16},
        "models": [{"name": "smollm2", "backend": "embedded", "n_ctx": 512}],
        "datasets": [{"name": "facts", "source": "builtin:facts", "evaluator": "contains", "limit": 20}],
    })
    db_path = tmp_path / "bench.db"
    proc = subprocess.Popen([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(cfg)], cwd=tmp_path,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_final_rows(db_path, 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    run_id, status = sqlite3.connect(db_path).execute("select id, status from runs").fetchone()
    assert status == "interrupted"
    assert f"benchwatch run --resume {run_id}" in err
    assert "Traceback" not in err
