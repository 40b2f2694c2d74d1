"""Every preset end to end over its local copy in the Hub's layout (tests/hf_fixtures.py, written with the
`datasets` library): the reference backend scores 100 % through the real runner, store and evaluators (the MBPP
code in the sandbox); the embedded model runs each preset on a few rows through the CLI."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
datasets = pytest.importorskip("datasets")

from benchwatch.config import parse_config  # noqa: E402
from benchwatch.datasets.presets import PRESETS  # noqa: E402
from benchwatch.runner import Runner  # noqa: E402
from benchwatch.store import Store  # noqa: E402
from tests import hf_fixtures as fx  # noqa: E402
from tests.conftest import PYTHON, ROOT, cli_env  # noqa: E402

datasets.disable_progress_bars()


@pytest.fixture(scope="module")
def suites(tmp_path_factory):
    return fx.write_suites(tmp_path_factory.mktemp("hub"))


def test_the_reference_backend_scores_100_percent_on_every_preset(tmp_path, suites):
    cfg = parse_config({
        "store": f"sqlite:///{tmp_path / 'ref.db'}",
        "runner": {"cooling_s": 0, "attempts": 1, "coalesce_ms": 0},
        "models": [{"name": "reference", "backend": "reference"}],
        "datasets": [{"name": name, "preset": name, "source": f"hf:{suites[name]}"} for name in PRESETS],
    })
    store = Store(cfg.store)
    try:
        outcome = Runner(cfg, store, []).run()
        rows = store.results(outcome.run_id)
    finally:
        store.close()
    assert outcome.status == "finished"
    bad = [(r["dataset"], r["task_id"], r["verdict"], r["detail"]) for r in rows if r["verdict"] != "PASS"]
    assert not bad
    assert {r["dataset"] for r in rows} == set(PRESETS)
    assert len(rows) == sum(len(fx.ROWS[name]) for name in PRESETS)
    mbpp = [r for r in rows if r["dataset"] == "mbpp"]
    assert all(r["detail"]["tests_passed"] >= 2 for r in mbpp)
    mc = [r for r in rows if r["dataset"] in ("mmlu", "arc_challenge", "hellaswag", "truthfulqa_mc1")]
    assert all(r["detail"]["read_as"].startswith("bare letter") for r in mc)


@pytest.mark.slow
@pytest.mark.timeout(900)  # 14 answers of 8 tokens; measured 530 s on the shared machine at a load average of ~16
def test_the_embedded_model_runs_every_preset(tmp_path, suites, write_config):
    pytest.importorskip("llama_cpp")
    cfg = write_config({
        "runner": {"cooling_s": 0, "attempts": 1, "max_tokens": 8, "task_timeout_s": 120},
        "models": [{"name": "smollm2", "backend": "embedded", "n_ctx": 1024}],
        "datasets": [{"name": name, "preset": name, "source": f"hf:{suites[name]}", "limit": 2} for name in PRESETS],
    })
    events_out = tmp_path / "events.jsonl"
    env = {**cli_env(), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([PYTHON, str(ROOT / "run_benchmark.py"), "--config", str(cfg), "--events-out",
                           str(events_out)], capture_output=True, text=True, env=env, timeout=850, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    db = sqlite3.connect(tmp_path / "bench.db")
    db.row_factory = sqlite3.Row
    rows = db.execute("select * from results").fetchall()
    assert sorted({r["dataset"] for r in rows}) == sorted(PRESETS)
    assert len(rows) == 2 * len(PRESETS)
    for r in rows:
        detail = json.loads(r["detail"])
        assert r["verdict"] in ("PASS", "FAIL"), (r["dataset"], r["verdict"], r["error"])  # the model's verdict
        assert r["response"] and r["ttft_ms"] is not None
        if r["dataset"] in ("mmlu", "arc_challenge", "arc_easy", "hellaswag", "truthfulqa_mc1"):
            assert "read_as" in detail and "expected_text" in detail
    for name in ("mmlu", "gsm8k"):
        assert name in proc.stdout  # the summary table names every preset's dataset
