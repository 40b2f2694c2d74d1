"""The demo as a new user meets it: `benchwatch demo` started as a user starts it, the monitor open in headless
Chromium before the run begins, watched to the end. The real embedded model; nothing scripted.

Takes the docs' screenshots of the monitor (demo-streaming.png, demo-finished.png; see scripts/screenshots.sh)."""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict

import pytest
from playwright.sync_api import expect

from benchwatch.datasets import load_dataset
from benchwatch.demo import demo_config
from tests.conftest import cli_env

from .harness import open_monitor

pytestmark = pytest.mark.slow


def demo_plan() -> tuple[list[str], dict[str, int]]:
    cfg = demo_config()
    return [m.name for m in cfg.models], {d.name: len(load_dataset(d, cfg.base_dir)) for d in cfg.datasets}


STAGE_TIME = re.compile(r"^\d+\.\d\d s$")


def start_demo(tmp_path) -> tuple[subprocess.Popen, str]:
    err = tmp_path / "demo.err"
    proc = subprocess.Popen([sys.executable, "-m", "benchwatch.cli", "demo", "--exit-when-done", "--port", "0",
                             "--delay", "3", "--store", f"sqlite:///{tmp_path / 'demo.db'}"],
                            cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=err.open("w"),
                            start_new_session=True)  # its own group: a failed test stops its server too
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        m = re.search(r"live monitor: (http://127\.0\.0\.1:\d+)/docs/benchmark_monitor\.html", err.read_text())
        if m:
            return proc, m.group(1)
        time.sleep(0.1)
    stop_demo(proc)
    raise AssertionError("the demo printed no monitor URL: " + err.read_text()[-2000:])


def stop_demo(proc: subprocess.Popen) -> None:
    """The demo and the server it started (a kill of the demo alone left its server running)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.mark.timeout(600)  # one to two minutes of demo on an idle 2-core machine; far more on a loaded one
def test_the_demo_streams_long_answers_and_exercises_every_panel(tmp_path, browser, shots):
    models, tasks = demo_plan()
    assert len(models) >= 2 and len(tasks) >= 2  # the Models and Datasets lists both move
    proc, url = start_demo(tmp_path)
    try:
        page = open_monitor(browser, url)
        # Answers grow on screen over many updates, not in one or two steps: follow the first model's answers.
        visible, position = page.locator("#response-visible"), page.locator("#card-progress [data-k='task_pos']")
        expect(page.locator("[data-stage='streaming']")).to_have_attribute("data-phase", "active", timeout=120000)
        steps: dict[str, set[int]] = defaultdict(set)
        stage_times = {"cooling": False, "thinking": False}
        shot = False
        deadline = time.time() + 240
        while time.time() < deadline and page.locator("#pills-models .pill").nth(0).get_attribute(
                "data-status") != "done":
            if page.locator("[data-stage='streaming']").get_attribute("data-phase") == "active":
                for stage in ("cooling", "thinking"):
                    stage_times[stage] |= bool(STAGE_TIME.match(
                        page.locator(f"[data-stage='{stage}'] .stage-time").text_content() or ""))
                text = visible.text_content() or ""
                seen = steps[position.text_content() or ""]
                seen.add(len(text))
                m = re.match(r"(\d+)/", page.locator("#card-progress [data-k='done']").text_content() or "")
                done = int(m.group(1)) if m else 0
                if not shot and done >= 3 and len(seen) >= 10 and len(text) > 250:  # some verdicts on screen
                    page.screenshot(path=str(shots / "demo-streaming.png"), full_page=True)
                    shot = True
            if shot and max(len(v) for v in steps.values()) >= 20:
                break
            time.sleep(0.1)
        most = max((len(v) for v in steps.values()), default=0)
        assert most >= 10, f"an answer grew in at most {most} steps: {dict(steps)}"
        # The Thinking stage (the prompt's processing) and Cooling show their time. Seen while a task streams:
        # the reference model that follows answers at once, so its card is in Cooling nearly all the time.
        assert stage_times == {"cooling": True, "thinking": True}
        # Both models: the second one takes over from the first.
        expect(page.locator("#pills-models .pill").nth(1)).to_contain_text(f"2/{len(models)}", timeout=420000)
        expect(page.locator("#run-chip")).to_have_text(re.compile(r"· finished$"), timeout=420000)
        total = len(models) * sum(tasks.values())
        expect(page.locator("#card-progress [data-k='done']")).to_have_text(f"{total}/{total}")
        expect(page.locator("#pills-datasets .pill[data-status='done']")).to_have_count(len(tasks))
        expect(page.locator("#panel-result .verdict")).to_have_text(re.compile(r"PASS|FAIL"))
        page.screenshot(path=str(shots / "demo-finished.png"), full_page=True)
        assert page.errors == []
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            stop_demo(proc)
    rows = sqlite3.connect(tmp_path / "demo.db").execute(
        "select model, verdict, stages, visible_tokens from results where final = 1").fetchall()
    assert len(rows) == total
    by_model = defaultdict(list)
    for model, verdict, stages, visible_tokens in rows:
        by_model[model].append((verdict, json.loads(stages), visible_tokens))
    # The embedded model writes answers long enough to watch (tokens, not seconds: the same on any machine).
    first = by_model[models[0]]
    long_answers = [v for _, _, v in first if (v or 0) >= 60]
    assert len(long_answers) * 2 >= len(first), [v for _, _, v in first]
    assert all("thinking" in st and "streaming" in st for _, st, _ in first)
    # The second model answers with the gold answers: every task passes, beside the small model's real verdicts.
    assert [m.backend for m in demo_config().models][1] == "reference"
    assert {v for v, _, _ in by_model[models[1]]} == {"PASS"}
