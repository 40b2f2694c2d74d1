"""Concurrency against the OpenAI-compatible STAND-IN server (tests/standins/: every request in its own thread,
programmable delays, 429/503 pushback): slots, plan order, throttling, the request-rate cap, deadlines, Ctrl-C and
kill -9 + --resume with N attempts in flight. The real llama.cpp server at concurrency 1 is in
test_backend_openai_llamacpp.py."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from benchwatch import events as ev
from benchwatch.state import replay
from benchwatch.store import Store
from tests.conftest import PYTHON, cli_env
from tests.standins.base import Behaviour
from tests.standins.harness import run
from tests.standins.openai_sse import StandinOpenAI

IDS = [f"arith-{i:02d}" for i in range(1, 25)]


@pytest.fixture
def server():
    s = StandinOpenAI().start()
    yield s
    s.stop()


def model(server, name="m", **extra):
    return {"name": name, "backend": "openai", "base_url": f"{server.url}/v1", **extra}


def finals(rows):
    keys = [(r["model"], r["dataset"], r["task_id"]) for r in rows if r["final"]]
    assert len(keys) == len(set(keys)), "a task got two final verdicts"
    return keys


def test_slots_run_in_parallel_in_plan_order(tmp_path, server):
    server.behaviours["m"] = Behaviour(first_delay_s=0.3, delay_s=0.01)
    t0 = time.monotonic()
    outcome, rows, events = run(tmp_path, [model(server)], IDS, concurrency=8)
    wall = time.monotonic() - t0
    assert outcome.status == "finished"
    assert len(finals(rows)) == 24 and all(r["verdict"] == "PASS" for r in rows)
    assert server.max_in_flight == 8
    assert wall < 24 * 0.3 / 3, f"8 slots should be far faster than 7.2 s one by one, took {wall:.1f} s"
    started = [e.task_id for e in events if isinstance(e, ev.TaskStarted)]
    # Slots take tasks in plan order (each announces its own, so the first 8 may be announced in any order).
    assert sorted(started[:8]) == IDS[:8] and sorted(started) == sorted(IDS)
    ms = next(e for e in events if isinstance(e, ev.ModelStarted))
    assert ms.concurrency == 8
    # Every attempt carries the load metrics; with ~9 chunks 10 ms apart ITL is about 10 ms.
    for r in rows:
        assert r["output_tokens"] >= 3 and r["ttft_ms"] >= 290
        assert 5 <= r["itl_ms"] <= 60, r["itl_ms"]
        assert r["tpot_ms"] > r["itl_ms"] and r["request_ms"] >= r["ttft_ms"]
    # The live state: nothing in flight at the end, every task counted once, the followed task is a real one.
    state = replay(events)
    assert state["slots"]["inflight"] == [None] * 8 and state["slots"]["n"] == 8
    assert state["counters"]["done"] == 24 and state["counters"]["pass"] == 24


class SlowStore(Store):
    """The real store on a slow disk (each commit 30 ms later): slots finish answers far faster than their
    results are stored, so any announcement made before its commit, or any slot running ahead of its own
    results, would show."""

    def add_results(self, rows):
        time.sleep(0.03)
        return super().add_results(rows)


def test_every_result_is_stored_before_it_is_announced_and_each_slots_events_keep_their_order(tmp_path, server):
    server.behaviours["m"] = Behaviour(first_delay_s=0.02, delay_s=0.002)
    db = tmp_path / "bench.db"
    announced_unstored: list[str] = []
    con: list[sqlite3.Connection] = []

    def check(e):
        if isinstance(e, ev.TaskFinished):
            if not con:
                con.append(sqlite3.connect(db, check_same_thread=False))
            row = con[0].execute("select verdict from results where task_id = ? and attempt = ?",
                                 (e.task_id, e.attempt)).fetchone()
            if row is None or row[0] != e.verdict:
                announced_unstored.append(e.task_id)

    ids = [f"arith-{i:02d}" for i in range(1, 29)]  # every task of the built-in set
    outcome, rows, events = run(tmp_path, [model(server)], ids, on_event=check, store_class=SlowStore,
                                concurrency=8)
    assert outcome.status == "finished" and len(finals(rows)) == 28
    assert not announced_unstored
    assert [e.seq for e in events] == sorted(e.seq for e in events) and len({e.seq for e in events}) == len(events)
    # At most 8 tasks between task_started and task_finished at any moment of the published stream.
    open_now, most = set(), 0
    for e in events:
        if isinstance(e, ev.TaskStarted):
            open_now.add((e.task_id, e.attempt))
        elif isinstance(e, ev.TaskFinished):
            open_now.discard((e.task_id, e.attempt))
        most = max(most, len(open_now))
    assert most <= 8 and not open_now
    # Each attempt's events in the order it made them: started, its stages, done, finished.
    for tid in ids:
        mine = [e for e in events if getattr(e, "task_id", None) == tid]
        assert isinstance(mine[0], ev.TaskStarted) and isinstance(mine[-1], ev.TaskFinished)
        stages = [e.stage for e in mine if isinstance(e, ev.StageChanged)]
        assert stages == ["cooling", "thinking", "streaming", "evaluating", "done"], (tid, stages)
        assert [e.at_s for e in mine if isinstance(e, ev.StageChanged)] == sorted(
            e.at_s for e in mine if isinstance(e, ev.StageChanged))
    last_finished = max(i for i, e in enumerate(events) if isinstance(e, ev.TaskFinished))
    dataset_finished = next(i for i, e in enumerate(events) if isinstance(e, ev.DatasetFinished))
    assert dataset_finished > last_finished
    state = replay(events)
    assert state["slots"]["inflight"] == [None] * 8 and state["counters"]["done"] == 28


class RefusingStore(Store):
    """The real store, refusing one row as a full disk would (the error sqlite3 raises for it)."""

    def add_results(self, rows):
        kept = [r for r in rows if r["task_id"] != "arith-05"]
        errors = iter(super().add_results(kept))
        return [sqlite3.OperationalError("database or disk is full") if r["task_id"] == "arith-05"
                else next(errors) for r in rows]


def test_a_result_the_store_refuses_stops_the_run_failed_and_is_never_announced(tmp_path, server):
    server.behaviours["m"] = Behaviour(first_delay_s=0.05, delay_s=0.01)
    outcome, rows, events = run(tmp_path, [model(server)], IDS, store_class=RefusingStore, concurrency=4)
    assert outcome.status == "failed"
    run_row = sqlite3.connect(tmp_path / "bench.db").execute("select status, detail from runs").fetchone()
    assert run_row[0] == "failed" and "disk is full" in run_row[1]
    finished = {e.task_id for e in events if isinstance(e, ev.TaskFinished)}
    assert "arith-05" not in finished and "arith-05" not in {r["task_id"] for r in rows}
    assert finished <= {r["task_id"] for r in rows}  # whatever was announced is stored
    assert isinstance(events[-1], ev.RunFinished) and events[-1].status == "failed"


def test_concurrency_1_is_one_at_a_time(tmp_path, server):
    server.behaviours["m"] = Behaviour(first_delay_s=0.05)
    outcome, rows, events = run(tmp_path, [model(server)], IDS[:4])
    assert outcome.status == "finished" and server.max_in_flight == 1
    kinds = [e.type for e in events if e.type in ("task_started", "task_finished")]
    assert kinds == ["task_started", "task_finished"] * 4


def test_per_model_override_and_datasets_flow_through_slots(tmp_path, server):
    server.behaviours["a"] = Behaviour(first_delay_s=0.5)  # long enough for all 6 slots to start on a busy box
    server.behaviours["b"] = Behaviour(first_delay_s=0.1)
    from benchwatch.config import parse_config
    from benchwatch.runner import Runner
    from benchwatch.runner.sinks import MemorySink
    from benchwatch.store import Store
    cfg = parse_config({
        "store": f"sqlite:///{tmp_path / 'b.db'}",
        "runner": {"cooling_s": 0, "coalesce_ms": 0, "concurrency": 2},
        "models": [model(server, "a", concurrency=6), model(server, "b")],
        "datasets": [{"name": "one", "source": "builtin:arithmetic", "evaluator": "numeric", "limit": 3},
                     {"name": "two", "source": "builtin:arithmetic", "evaluator": "numeric", "limit": 3}],
    })
    sink = MemorySink()
    store = Store(cfg.store)
    outcome = Runner(cfg, store, [sink]).run()
    assert outcome.status == "finished" and outcome.counts == {"PASS": 12}
    conc = {e.model: e.concurrency for e in sink.events if isinstance(e, ev.ModelStarted)}
    assert conc == {"a": 6, "b": 2}
    # Model a: 6 slots take both datasets' tasks at once; the datasets are announced in order, each finished once.
    a_events = [e for e in sink.events if getattr(e, "model", None) == "a"]
    firsts = [(e.type, getattr(e, "dataset", None)) for e in a_events if e.type.startswith("dataset")]
    assert firsts[0] == ("dataset_started", "one") and firsts.count(("dataset_finished", "one")) == 1
    assert ("dataset_started", "two") in firsts and firsts.count(("dataset_finished", "two")) == 1
    starts = [e for e in a_events if isinstance(e, ev.TaskStarted)]
    first_finish = next(i for i, e in enumerate(a_events) if isinstance(e, ev.TaskFinished))
    assert sum(1 for e in a_events[:first_finish] if isinstance(e, ev.TaskStarted)) == 6
    assert sorted(e.dataset for e in starts) == ["one"] * 3 + ["two"] * 3
    assert firsts.index(("dataset_started", "one")) < firsts.index(("dataset_started", "two"))
    # Models one after another: b starts after a finished.
    order = [(e.type, e.model) for e in sink.events if e.type in ("model_started", "model_finished")]
    assert order == [("model_started", "a"), ("model_finished", "a"), ("model_started", "b"), ("model_finished", "b")]


def test_embedded_stays_at_one_slot():
    from benchwatch.config import parse_config
    cfg = parse_config({"runner": {"concurrency": 16},
                        "models": [{"name": "e", "backend": "embedded", "concurrency": 4},
                                   {"name": "o", "backend": "openai", "base_url": "http://127.0.0.1:9/v1"}],
                        "datasets": [{"name": "d", "source": "builtin:arithmetic"}]})
    assert [cfg.concurrency_for(m) for m in cfg.models] == [1, 16]


@pytest.mark.parametrize("status,retry_after", [(429, "0.2"), (503, "1"), (429, "Wed, 21 Oct 2015 07:28:00 GMT")])
def test_pushback_with_retry_after_waits_in_the_slot_and_is_not_a_failure(tmp_path, server, status, retry_after):
    push = Behaviour(fault="pushback", status=status, retry_after=retry_after)
    server.behaviours["m"] = [push, push, Behaviour()]
    t0 = time.monotonic()
    outcome, rows, events = run(tmp_path, [model(server)], IDS[:1], attempts=1)
    wall = time.monotonic() - t0
    assert outcome.status == "finished"
    assert [(r["attempt"], r["verdict"]) for r in rows] == [(1, "PASS")]  # no attempt used up, no ERROR
    assert rows[0]["backend_stats"]["throttled"] == 2
    waited = {"0.2": 0.4, "1": 2.0}.get(retry_after, 0.0)  # a date in the past: send again at once
    assert waited <= wall < waited + 3
    stages = [e.stage for e in events if isinstance(e, ev.StageChanged)]
    assert stages.count("throttled") == 2
    # The monitor shows the slot as throttled while it waits.
    mid = replay(events[:next(i for i, e in enumerate(events) if getattr(e, "stage", None) == "throttled") + 1])
    item = next(i for i in mid["tasks"]["items"] if i["id"] == IDS[0])
    assert item["status"] == "throttled"
    [rec] = [r for r in mid["slots"]["inflight"] if r]
    assert (rec["task_id"], rec["stage"]) == (IDS[0], "throttled")


def test_pushback_without_retry_after_is_an_ordinary_error(tmp_path, server):
    server.behaviours["m"] = Behaviour(fault="pushback", status=503, retry_after=None)
    outcome, rows, _ = run(tmp_path, [model(server)], IDS[:1], attempts=1)
    assert [r["verdict"] for r in rows] == ["ERROR"]
    assert "HTTP 503" in rows[0]["error"]


def test_endless_pushback_ends_as_error_after_the_cap(tmp_path, server, monkeypatch):
    import benchwatch.runner.attempt as runner_mod
    monkeypatch.setattr(runner_mod, "THROTTLE_MAX", 3)
    server.behaviours["m"] = Behaviour(fault="pushback", status=429, retry_after="0")
    outcome, rows, _ = run(tmp_path, [model(server)], IDS[:1], attempts=1)
    assert [r["verdict"] for r in rows] == ["ERROR"]
    assert "still throttled after 3 waits" in rows[0]["error"]
    assert server.calls["m"] == 4


def test_max_requests_per_s_spaces_requests(tmp_path, server):
    server.behaviours["m"] = Behaviour()
    sent: list[float] = []
    orig = server.record

    def record(path, body, headers):
        sent.append(time.monotonic())
        orig(path, body, headers)
    server.record = record
    outcome, rows, _ = run(tmp_path, [model(server)], IDS[:8], concurrency=8, max_requests_per_s=10)
    assert outcome.status == "finished" and len(sent) == 8
    gaps = [b - a for a, b in zip(sent, sent[1:])]
    # 10/s: sent 100 ms apart. Measured where the stand-in receives them, one request can arrive late and the next
    # on time (thread scheduling on a loaded 2-core machine), so check the rate over the run and that no two came
    # as a burst (without the cap, 8 slots send within a few ms).
    assert sent[-1] - sent[0] >= 0.65, gaps
    assert min(gaps) >= 0.02, gaps


def test_deadlines_hold_per_attempt_with_slots(tmp_path, server):
    # Every third request stalls: those hit the first-token deadline; the others pass meanwhile.
    ok, stall = Behaviour(first_delay_s=0.05), Behaviour(fault="stall", fault_after=0, stall_s=10)
    server.behaviours["m"] = [stall if i % 3 == 0 else ok for i in range(12)]
    t0 = time.monotonic()
    outcome, rows, _ = run(tmp_path, [model(server)], IDS[:12], concurrency=6, attempts=1,
                           first_token_timeout_s=1)
    assert time.monotonic() - t0 < 6
    errors = [r for r in rows if r["verdict"] == "ERROR"]
    assert len(errors) == 4 and all("runner.first_token_timeout_s" in r["error"] for r in errors)
    assert sum(r["verdict"] == "PASS" for r in rows) == 8
    assert len(finals(rows)) == 12


def _final_count(db):
    try:
        return sqlite3.connect(db).execute("select count(*) from results where final = 1").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _start_cli(cfg, cwd, *extra):
    return subprocess.Popen([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(cfg), *extra], cwd=cwd,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_finals(db, n, timeout_s=60):
    deadline = time.time() + timeout_s
    while time.time() < deadline and _final_count(db) < n:
        time.sleep(0.05)


def test_ctrl_c_abandons_every_attempt_in_flight(tmp_path, server, write_config):
    server.behaviours["m"] = Behaviour(first_delay_s=0.2, delay_s=0.3)  # ~3 s per answer
    cfg = write_config({"runner": {"cooling_s": 0, "attempts": 1, "concurrency": 8},
                        "models": [model(server)],
                        "datasets": [{"name": "arith", "source": "builtin:arithmetic", "evaluator": "numeric"}]})
    db = tmp_path / "bench.db"
    proc = _start_cli(cfg, tmp_path)
    deadline = time.time() + 60
    while server.max_in_flight < 8 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # all 8 mid-answer
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err[-2000:]
    assert time.monotonic() - t0 < 5, "Ctrl-C must not wait for the answers in flight"
    con = sqlite3.connect(db)
    run_id, status = con.execute("select id, status from runs").fetchone()
    assert status == "interrupted"
    assert con.execute("select count(*) from results where verdict = 'ERROR'").fetchone()[0] == 0
    assert "Traceback" not in err and f"--resume {run_id}" in err
    # The server saw every connection closed (none left answering into the void).
    deadline = time.time() + 5
    while server.in_flight and time.time() < deadline:
        time.sleep(0.05)
    assert server.in_flight == 0


@pytest.mark.slow
def test_kill_9_with_slots_in_flight_then_resume_gives_one_verdict_per_task(tmp_path, server, write_config):
    server.behaviours["m"] = Behaviour(first_delay_s=0.1, delay_s=0.05)
    cfg = write_config({"runner": {"cooling_s": 0, "attempts": 2, "concurrency": 8},
                        "models": [model(server)],
                        "datasets": [{"name": "arith", "source": "builtin:arithmetic", "evaluator": "numeric"},
                                     {"name": "facts", "source": "builtin:facts", "evaluator": "contains"}]})
    db = tmp_path / "bench.db"
    proc = _start_cli(cfg, tmp_path)
    _wait_finals(db, 12)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    con = sqlite3.connect(db)
    before = con.execute("select model, dataset, task_id, verdict from results where final = 1").fetchall()
    assert 12 <= len(before) < 52, "the kill should land mid-run"
    run_id = con.execute("select id from runs").fetchone()[0]
    res = subprocess.run([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(cfg), "--resume", run_id],
                         cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode in (0, 1), res.stderr[-2000:]
    after = con.execute("select model, dataset, task_id, verdict from results where final = 1").fetchall()
    keys = [(m, d, t) for m, d, t, _ in after]
    assert len(keys) == len(set(keys)) == 28 + 24
    assert set(before) <= set(after)
    assert con.execute("select status from runs").fetchone()[0] == "finished"
