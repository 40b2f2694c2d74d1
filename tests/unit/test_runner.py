"""Runner arithmetic on a scripted backend stand-in driven by a fake clock: stage times, TTFT, tokens/s."""
from __future__ import annotations

from typing import Iterator

import pytest

from benchwatch.backends import Backend, BackendError, Stats, Text
from benchwatch.config import parse_config
from benchwatch.runner import Runner
from benchwatch.runner.sinks import MemorySink
from benchwatch.state import initial_state, replay
from benchwatch.store import Store


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class TimedBackend(Backend):
    """Stand-in backend: each script item is (seconds to wait, Text|Stats|Exception)."""

    def __init__(self, cfg, clock: FakeClock, script):
        self.cfg, self.clock, self.script = cfg, clock, script
        self.calls = 0

    def connect(self, timeout_s):
        return "connected", "stand-in"

    def render_prompt(self, messages):
        return "|".join(f"{m['role']}:{m['content']}" for m in messages)

    def stream(self, messages, params) -> Iterator:
        self.calls += 1
        script = self.script(self.calls) if callable(self.script) else self.script
        for wait, item in script:
            self.clock.t += wait
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self):
        pass


def make(tmp_path, script, **runner):
    cfg = parse_config({
        "store": f"sqlite:///{tmp_path / 'r.db'}",
        "runner": {"cooling_s": 0, "attempts": 2, "retry_backoff_s": 0, "coalesce_ms": 0, **runner},
        "models": [{"name": "m", "backend": "scripted"}],
        "datasets": [{"name": "d", "source": "builtin:arithmetic", "evaluator": "numeric", "ids": ["arith-01"]}],
    })
    clock = FakeClock()
    sink = MemorySink()
    store = Store(cfg.store)
    backend = TimedBackend(cfg.models[0], clock, script)
    runner = Runner(cfg, store, [sink], backend_factory=lambda m: backend, clock=clock)
    return runner, store, sink, backend


def test_stage_times_ttft_and_tokens_per_second(tmp_path):
    script = [(0.30, Text("<think>", n_tokens=1)), (0.10, Text("hmm", n_tokens=1)), (0.10, Text("</think>", n_tokens=1)),
              (0.50, Text("3", n_tokens=1)), (0.10, Text("2", n_tokens=1)), (0.10, Text(" ok", n_tokens=1)), (0.10, Text("!", n_tokens=1)),
              (0.0, Stats(prompt_tokens=12, completion_tokens=7, server={"n_eval": 7}))]
    runner, store, sink, _ = make(tmp_path, script)
    outcome = runner.run()
    assert outcome.status == "finished" and outcome.counts == {"PASS": 1}
    [row] = store.results(outcome.run_id)
    # first token of any kind (the <think> tag) arrives at 0.3 s
    assert row["first_token_ms"] == pytest.approx(300, abs=1)
    assert row["ttft_ms"] == pytest.approx(1000, abs=1)  # first visible token: 0.3+0.1+0.1+0.5
    # 3 visible tokens after the first, over 0.3 s
    assert row["tokens_per_s"] == pytest.approx(10.0, rel=1e-6)
    assert row["visible_tokens"] == 4 and row["thinking_tokens"] == 2
    assert row["response"] == "32 ok!" and row["thinking"] == "hmm"
    assert row["prompt"] == "user:What is 22 plus 10? Reply with just the number."
    st = row["stages"]
    assert list(st) == ["cooling", "thinking", "streaming", "evaluating", "done"]
    assert st["thinking"][1] - st["thinking"][0] == pytest.approx(1.0)
    assert st["streaming"][1] - st["streaming"][0] == pytest.approx(0.3)
    assert row["latency_ms"] == pytest.approx(1300, abs=1)
    assert row["ttft_ms"] < row["latency_ms"]
    # The events tell the same story, and the reducer folds them into the same picture.
    state = replay(sink.events, initial_state())
    assert state["current"]["ttft_ms"] == row["ttft_ms"] and state["current"]["verdict"] == "PASS"
    assert state["counters"]["pass"] == 1 and state["run"]["status"] == "finished"
    types = [e.type for e in sink.events]
    assert types.index("task_finished") > types.index("stage")
    stages = [e.stage for e in sink.events if e.type == "stage"]
    assert stages == ["cooling", "thinking", "streaming", "evaluating", "done"]
    seqs = [e.seq for e in sink.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # The plan it sent is stored with the run, for a restarted server to rebuild from.
    assert store.get_plan(outcome.run_id) == sink.events[0].plan()
    assert [d.task_ids for d in store.get_plan(outcome.run_id).datasets] == [["arith-01"]]


def test_error_is_retried_and_each_attempt_is_a_row(tmp_path):
    def script(call):
        if call == 1:
            return [(0.1, BackendError("connection reset"))]
        return [(0.1, Text("32")), (0.0, Stats())]
    runner, store, sink, backend = make(tmp_path, script)
    out = runner.run()
    rows = store.results(out.run_id)
    assert [(r["attempt"], r["verdict"], r["final"]) for r in rows] == [(1, "ERROR", False), (2, "PASS", True)]
    assert rows[0]["error"] == "connection reset"
    assert backend.calls == 2


def test_fail_is_final_and_error_stops_after_attempts(tmp_path):
    runner, store, _, backend = make(tmp_path, [(0.1, Text("31")), (0, Stats())], attempts=3)
    out = runner.run()
    assert [(r["verdict"], r["final"]) for r in store.results(out.run_id)] == [("FAIL", True)]
    runner, store, _, backend = make(tmp_path, [(0.1, BackendError("down"))], attempts=3)
    out = runner.run()
    assert [(r["attempt"], r["final"]) for r in store.results(out.run_id)] == [(1, False), (2, False), (3, True)]


def test_total_timeout_is_an_error(tmp_path):
    script = [(0.1, Text("1")), (5.0, Text("2")), (0, Stats())]
    runner, store, _, _ = make(tmp_path, script, task_timeout_s=2, attempts=1)
    out = runner.run()
    [row] = store.results(out.run_id)
    assert row["verdict"] == "ERROR" and "runner.task_timeout_s" in row["error"]


def test_token_deltas_are_coalesced(tmp_path):
    script = [(0.001, Text("x")) for _ in range(200)] + [(0, Stats())]
    runner, _, sink, _ = make(tmp_path, script, coalesce_ms=50)
    runner.run()
    deltas = [e for e in sink.events if e.type == "token"]
    assert sum(e.n_tokens for e in deltas) == 200
    assert "".join(e.text for e in deltas) == "x" * 200
    assert len(deltas) <= 6  # 0.2 s of tokens in 50 ms windows


def test_result_is_stored_before_finish_event(tmp_path):
    seen = []

    class Probe:
        def emit(self, event):
            if event.type == "task_finished":
                seen.append(len(store.results(event.run_id)))

        def close(self):
            pass

    runner, store, _, _ = make(tmp_path, [(0.1, Text("32")), (0, Stats())])
    runner.out.sinks.append(Probe())
    runner.run()
    assert seen == [1]


def test_a_broken_sink_does_not_stop_the_run(tmp_path):
    class Broken:
        def emit(self, event):
            raise RuntimeError("sink down")

        def close(self):
            raise RuntimeError("still down")

    runner, store, _, _ = make(tmp_path, [(0.1, Text("32")), (0, Stats())])
    runner.out.sinks.insert(0, Broken())
    assert runner.run().counts == {"PASS": 1}


def test_resume_skips_final_tasks(tmp_path):
    runner, store, _, backend = make(tmp_path, [(0.1, Text("32")), (0, Stats())])
    first = runner.run()
    runner2 = Runner(runner.cfg, store, [MemorySink()], backend_factory=lambda m: backend, clock=FakeClock())
    again = runner2.run(resume_run_id=first.run_id)
    assert again.run_id == first.run_id and backend.calls == 1
    assert len(store.results(first.run_id)) == 1
