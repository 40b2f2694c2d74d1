"""`benchwatch demo --exit-when-done`: server + bundled run on the embedded model, watched by a real SSE client."""
from __future__ import annotations

import re
import sqlite3
import subprocess
import time

import pytest

from benchwatch.datasets import load_dataset
from benchwatch.demo import demo_config
from tests.conftest import PYTHON, cli_env
from tests.integration.live_server import StreamReader

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)  # one to two minutes of demo on an idle 2-core machine; far more on a loaded one
def test_demo_serves_the_monitor_and_publishes_the_bundled_run(tmp_path):
    cfg = demo_config()
    models = [m.name for m in cfg.models]
    total = len(models) * sum(len(load_dataset(d, cfg.base_dir)) for d in cfg.datasets)
    db = tmp_path / "demo.db"
    proc = subprocess.Popen([PYTHON, "-m", "benchwatch.cli", "demo", "--exit-when-done", "--port", "0",
                             "--delay", "1", "--store", f"sqlite:///{db}"], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=(tmp_path / "demo.err").open("w"), text=True)
    try:
        url = None
        deadline = time.time() + 60
        while url is None and time.time() < deadline and proc.poll() is None:
            m = re.search(r"live monitor: (http://127\.0\.0\.1:\d+)/docs/benchmark_monitor\.html",
                          (tmp_path / "demo.err").read_text())
            url = m.group(1) if m else time.sleep(0.2)
        assert url, "demo printed no monitor URL: " + (tmp_path / "demo.err").read_text()[-2000:]
        reader = StreamReader(url, read_timeout=120)
        reader.until(lambda s: s["run"] is not None and s["run"]["status"] == "finished", timeout=480)
        st = reader.live.state
        reader.close()
        assert st["counters"]["done"] == st["counters"]["total"] == total
        assert [m["name"] for m in st["models"]] == models
        assert proc.wait(60) == 0, (tmp_path / "demo.err").read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rows = sqlite3.connect(db).execute("select count(*) from results where final = 1").fetchone()[0]
    assert rows == total
    assert (tmp_path / "log" / "server.out.log").exists()
