"""Once against a real run: the embedded model (SmolLM2-135M via llama.cpp) run by `run_benchmark.py`,
publishing to a real `benchwatch serve` through its HTTP sink; the page is open before the run starts."""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from .harness import ROOT, Server, open_monitor

pytestmark = pytest.mark.slow

CONFIG = """runner: {cooling_s: 0.6, attempts: 1, max_tokens: 24, task_timeout_s: 60}
models:
  - {name: smollm2, backend: embedded, n_ctx: 512}
datasets:
  - {name: arithmetic, source: 'builtin:arithmetic', evaluator: numeric, limit: 3}
  - {name: facts, source: 'builtin:facts', evaluator: contains, limit: 2}
"""


def test_a_real_embedded_run_shows_live_and_finishes(tmp_path, browser, shots):
    server = Server(tmp_path, config_text=CONFIG).start()
    try:
        page = open_monitor(browser, server.url)
        expect(page.locator("#waiting-banner")).to_be_visible()
        env = dict(os.environ, PYTHONPATH=str(ROOT), BENCHWATCH_TOKEN=server.token)
        run = subprocess.Popen([sys.executable, str(ROOT / "run_benchmark.py"), "--config", str(server.config),
                                "--server-url", server.url], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            # Live: the page fills without a reload and shows a task in flight.
            expect(page.locator("#waiting-banner")).to_be_hidden(timeout=60000)
            expect(page.locator("#pills-tasks .st-running")).to_have_count(1, timeout=60000)
            expect(page.locator("#pills-models .pill")).to_contain_text("1/1")
            _, stderr = run.communicate(timeout=240)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        assert run.returncode == 0, stderr[-2000:]
        expect(page.locator("#run-chip")).to_have_text(re.compile(r"· finished$"), timeout=30000)
        expect(page.locator("#card-progress [data-k='done']")).to_have_text("5/5")
        expect(page.locator("#card-progress [data-k='remaining']")).to_have_text("0")
        expect(page.locator("#pills-datasets .pill[data-status='done']")).to_have_count(2)
        assert page.locator("#pills-tasks .st-pending, #pills-tasks .st-running, #pills-tasks .halo").count() == 0
        expect(page.locator("#card-task [data-k='which']")).to_have_text("(last task)")
        # What the page shows for the last task is what the store holds.
        db = sqlite3.connect(tmp_path / "bench.db")
        prompt, response, verdict = db.execute(
            "select prompt, response, verdict from results order by id desc limit 1").fetchone()
        assert page.locator("#panel-prompt").text_content() == prompt
        assert page.locator("#response-visible").text_content() == (response or "–")
        expect(page.locator("#panel-result .verdict")).to_have_text(verdict)
        for stage in ("cooling", "streaming", "evaluating", "done"):
            expect(page.locator(f"[data-stage='{stage}'] .stage-time")).to_have_text(re.compile(r"^\d+\.\d\d s$"))
        page.screenshot(path=str(shots / "embedded-finished.png"), full_page=True)
        assert page.errors == []
    finally:
        server.stop()
