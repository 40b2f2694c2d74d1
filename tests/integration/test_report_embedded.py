"""End to end: the real embedded model runs, publishing to a real `benchwatch serve`, whose sampler stores host
telemetry with the run; afterwards the served report has the run's real numbers and its telemetry."""
from __future__ import annotations

import json
import re
import sqlite3
import subprocess

import numpy as np
import pytest

from tests.conftest import PYTHON, cli_env
from tests.integration.live_server import TOKEN, LiveServer
from tests.unit.test_report import parse
from tests.unit.test_report_stats import wilson_by_definition

pytestmark = pytest.mark.slow


def test_report_of_a_real_run_with_sampled_telemetry(tmp_path, write_config):
    cfg = write_config({
        "runner": {"cooling_s": 0.6, "attempts": 1, "max_tokens": 24, "task_timeout_s": 60},
        "models": [{"name": "smollm2", "backend": "embedded", "n_ctx": 512}],
        "datasets": [{"name": "arithmetic", "source": "builtin:arithmetic", "evaluator": "numeric", "limit": 3},
                     {"name": "facts", "source": "builtin:facts", "evaluator": "contains", "limit": 3}],
    })
    srv = LiveServer(tmp_path, config=cfg)
    try:
        run = subprocess.run([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(cfg), "--server-url", srv.url],
                             cwd=tmp_path, env=cli_env() | {"BENCHWATCH_TOKEN": TOKEN}, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        db = sqlite3.connect(tmp_path / "bench.db")
        db.row_factory = sqlite3.Row
        [run_id] = [r[0] for r in db.execute("SELECT id FROM runs")]
        rows = db.execute("SELECT * FROM results WHERE run_id = ? AND final = 1", (run_id,)).fetchall()
        samples = db.execute("SELECT * FROM telemetry WHERE run_id = ? ORDER BY ts", (run_id,)).fetchall()
        db.close()
        assert len(rows) == 6
        assert len(samples) >= 3 and all(s["cpu_pct"] is not None for s in samples)  # the server's 1 Hz sampler

        r = srv.client.get(f"/reports/{run_id}")
        assert r.status_code == 200
        page = parse(r.text)
        for dataset in ("arithmetic", "facts"):
            mine = [x for x in rows if x["dataset"] == dataset]
            k, n = sum(x["verdict"] == "PASS" for x in mine), len(mine)
            low, high = wilson_by_definition(k, n)
            [cell] = page.text("td", data_model="smollm2", data_dataset=dataset)
            assert cell.startswith(f"{100 * k / n:.1f} % {k}/{n} pass") and cell.endswith(
                f"95 % CI {100 * low:.1f}–{100 * high:.1f} %")
        answered = [x for x in rows if x["verdict"] in ("PASS", "FAIL")]
        for metric in ("ttft_ms", "tokens_per_s", "latency_ms"):
            vals = [x[metric] for x in answered if x[metric] is not None]
            assert vals, metric  # a real model streams: every figure is measured
            for q in (50, 90, 99):
                assert page.text("td", data_metric=metric, data_model="smollm2", data_q=f"p{q}") == [
                    f"{np.percentile(vals, q):,.1f}"]
        data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', r.text,
                                    re.S).group(1))
        assert data["telemetry"]["count"] == len(samples)
        assert [v for _, v in data["telemetry"]["series"]["cpu_pct"]] == [s["cpu_pct"] for s in samples]
        assert len(data["boundaries"]) == 6
    finally:
        srv.stop()
