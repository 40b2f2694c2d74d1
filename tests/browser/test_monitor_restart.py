"""The server killed (-9) in the middle of a three-model run and started again, with neither the run's config nor
its dataset file left: the page and /api/benchmark/state show every model and dataset as the store says, and the
run's remaining events carry on from there.

The third model is the scripted stand-in held at its second task until the page has been checked, so the
check does not race the run on a loaded machine."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import psutil
import pytest
from playwright.sync_api import expect

from benchwatch.backends import make_backend
from benchwatch.backends.scripted import ScriptedBackend
from benchwatch.config import load_config
from benchwatch.runner import Runner
from benchwatch.runner.http_sink import HttpSink
from benchwatch.state import LiveState
from benchwatch.store import Store

from .harness import CHROMIUM, DEFAULT_CONFIG, Server, open_monitor

TASKS = ["q1", "q2", "q3", "q4"]


def three_models(dataset: str) -> str:
    answers = "{answers: {'*': 'Paris is it'}, chunk: 4, token_delay_s: 0.02}"
    return ("runner: {cooling_s: 0, attempts: 1, coalesce_ms: 20}\n"
            "models:\n" + "".join(f"  - {{name: {m}, backend: scripted, options: {answers}}}\n"
                                   for m in ("m1", "m2", "m3")) +
            f"datasets:\n  - {{name: quiz, source: '{dataset}', evaluator: contains}}\n")


class HeldBackend(ScriptedBackend):
    """The scripted stand-in, holding its second and later answers until `gate` opens."""

    def __init__(self, cfg, gate: threading.Event):
        super().__init__(cfg)
        self.gate = gate

    def stream(self, messages, params):
        if self.calls >= 1:
            self.gate.wait(120)
        return super().stream(messages, params)


def from_store(store: Store, run_id: str) -> dict[str, int]:
    verdicts = list(store.final_verdicts(run_id).values())
    return {"done": len(verdicts), "pass": verdicts.count("PASS"), "fail": verdicts.count("FAIL"),
            "error": verdicts.count("ERROR")}


def pill_statuses(page) -> list[str]:
    return page.locator("#pills-models .pill").evaluate_all("els => els.map(e => e.dataset.status)")


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent")
def test_kill_9_mid_run_then_every_model_shows_what_the_store_says(tmp_path, browser, shots):
    dataset = tmp_path / "quiz.jsonl"
    dataset.write_text("".join(json.dumps({"id": t, "prompt": f"Capital of France? ({t})", "expected": "Paris"})
                               + "\n" for t in TASKS))
    server = Server(tmp_path, config_text=three_models(str(dataset))).start()
    cfg = load_config(server.config)
    store = Store(cfg.store)
    gate = threading.Event()
    runner = Runner(cfg, store, [HttpSink(server.url, server.token, backoff_s=(0.05, 0.3))],
                    backend_factory=lambda m: HeldBackend(m, gate) if m.name == "m3" else make_backend(m))
    done: dict = {}
    thread = threading.Thread(target=lambda: done.setdefault("outcome", runner.run()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not runner.run_id or from_store(store, runner.run_id)["done"] < 9):
            time.sleep(0.02)
        run_id = runner.run_id
        time.sleep(0.5)  # the old server has seen m3's second task start
        assert from_store(store, run_id)["done"] == 9  # m1 and m2 done, m3 held at its second task
        for proc in psutil.Process(server.proc.pid).children() + [server.proc]:  # gunicorn's worker and master
            os.kill(proc.pid, signal.SIGKILL)  # a crash: the state in memory is gone
        server.proc.wait(10)
        # Nothing of the run is left but the store: its dataset file is gone, the server's config is another.
        dataset.unlink()
        server.config.write_text(DEFAULT_CONFIG + f"store: {cfg.store}\n")
        server.start()  # it finds the run still running in the store and rebuilds it before any event

        page = open_monitor(browser, server.url)
        expect(page.locator("#run-chip")).to_contain_text(f"Run {run_id} · running")
        api = server.state()["state"]
        LiveState.model_validate(api)
        assert [m["status"] for m in api["models"]] == ["done", "done", "running"]
        assert pill_statuses(page) == ["done", "done", "running"]
        assert {k: api["counters"][k] for k in ("done", "pass", "total")} == {"done": 9, "pass": 9, "total": 12}
        expect(page.locator("#card-progress [data-k='done']")).to_have_text("9/12")
        assert [(i["id"], i["status"]) for i in api["tasks"]["items"]] == [
            ("q1", "pass"), ("q2", "pending"), ("q3", "pending"), ("q4", "pending")]
        expect(page.locator("#pills-tasks [data-id='q1']")).to_have_attribute("data-status", "pass")
        page.screenshot(path=str(shots / "monitor-after-kill-9-restart.png"))

        gate.set()
        thread.join(90)
        assert done["outcome"].status == "finished"
        expect(page.locator("#run-chip")).to_contain_text("finished", timeout=20000)
        api = server.state()["state"]
        LiveState.model_validate(api)
        stored = from_store(store, run_id)
        assert stored["done"] == 12
        assert {k: api["counters"][k] for k in stored} == stored
        assert [m["status"] for m in api["models"]] == ["done", "done", "done"]
        expect(page.locator("#pills-models .pill[data-status='done']")).to_have_count(3)
        expect(page.locator("#pills-datasets .pill")).to_have_attribute("data-status", "done")
        expect(page.locator("#card-progress [data-k='done']")).to_have_text("12/12")
        assert page.errors == []
        log = (tmp_path / "log" / "server.out.log").read_text()
        assert "rebuilt the state of run" in log and "no stored plan" not in log
    finally:
        gate.set()
        runner.stop_requested.set()
        thread.join(30)
        server.stop()
