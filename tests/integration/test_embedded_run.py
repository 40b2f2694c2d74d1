"""End to end on the real embedded model (SmolLM2-135M via llama.cpp): CLI -> store + JSONL events."""
from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from benchwatch.events import parse_event
from benchwatch.state import replay
from tests.conftest import PYTHON, ROOT, cli_env

pytestmark = pytest.mark.slow


def test_two_datasets_three_tasks_each(tmp_path, write_config):
    cfg = write_config({
        "runner": {"cooling_s": 0.2, "attempts": 1, "max_tokens": 24, "task_timeout_s": 60},
        "models": [{"name": "smollm2", "backend": "embedded", "n_ctx": 512}],
        "datasets": [
            {"name": "arithmetic", "source": "builtin:arithmetic", "evaluator": "numeric", "limit": 3},
            {"name": "facts", "source": "builtin:facts", "evaluator": "contains", "limit": 3},
        ],
    })
    events_out = tmp_path / "events.jsonl"
    proc = subprocess.run([PYTHON, str(ROOT / "run_benchmark.py"), "--config", str(cfg), "--events-out",
                           str(events_out)], capture_output=True, text=True, env=cli_env(), timeout=300,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [parse_event(json.loads(line)) for line in events_out.read_text().splitlines()]
    finished = [e for e in events if e.type == "task_finished"]
    db = sqlite3.connect(tmp_path / "bench.db")
    db.row_factory = sqlite3.Row
    rows = db.execute("select * from results order by id").fetchall()
    assert len(rows) == len(finished) == 6
    for row, e in zip(rows, finished):
        assert (row["model"], row["dataset"], row["task_id"], row["attempt"], row["verdict"]) == (
            e.model, e.dataset, e.task_id, e.attempt, e.verdict)
        assert row["ttft_ms"] == pytest.approx(e.ttft_ms) and row["latency_ms"] == pytest.approx(e.latency_ms)
        assert row["verdict"] in ("PASS", "FAIL"), row["error"]
        stages = json.loads(row["stages"])
        names = list(stages)
        assert names == ["cooling", "thinking", "streaming", "evaluating", "done"]
        starts = [stages[n][0] for n in names]
        assert starts == sorted(starts)
        assert all(stages[n][1] >= stages[n][0] for n in names)
        assert stages["cooling"][1] - stages["cooling"][0] >= 0.19
        assert 0 < row["ttft_ms"] < row["latency_ms"]
        assert row["tokens_per_s"] is None or row["tokens_per_s"] > 0
        assert row["prompt"].startswith("<|im_start|>")  # the GGUF's chat template, exactly as sent
        assert row["response"].strip()
        stats = json.loads(row["backend_stats"])
        assert stats["n_eval"] >= 1 and row["completion_tokens"] >= 1
    # the streamed deltas add up to the stored response
    for row in rows:
        text = "".join(e.text for e in events if e.type == "token" and e.kind == "visible"
                       and (e.task_id, e.dataset) == (row["task_id"], row["dataset"]))
        assert text == row["response"]
    state = replay(events)
    assert state["run"]["status"] == "finished" and state["counters"]["done"] == 6
    # the results command reads the same rows back
    res = subprocess.run([PYTHON, "-m", "benchwatch.cli", "results", "--config", str(cfg), "--format", "json"],
                         capture_output=True, text=True, env=cli_env(), timeout=60, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(objs) == 6
    for key in ("run_id", "model", "dataset", "task_id", "attempt", "verdict", "ttft_ms", "tokens_per_s",
                "latency_ms", "stages"):
        assert key in objs[0]
    assert set(objs[0]["stages"]["streaming"]) == {"start", "end"}
