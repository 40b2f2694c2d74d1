"""The hub's fold / dedupe / ring logic (server/fold.py), without sockets, threads or greenlets."""
from __future__ import annotations

import json

import pytest

from benchwatch import events as ev
from benchwatch import state as reducer
from benchwatch.patch import apply_ops
from benchwatch.server.fold import RESET, FoldLog

R = "run-1"
T = dict(model="m", dataset="d", task_id="a", attempt=1)


def started(seq: int = 1, task_ids=("a", "b")) -> ev.RunStarted:
    return ev.RunStarted(run_id=R, seq=seq, models=[ev.PlanModel(name="m", backend="scripted")],
                         datasets=[ev.PlanDataset(name="d", evaluator="exact_match", task_ids=list(task_ids))])


def tokens(first_seq: int, n: int) -> list[ev.TokenDelta]:
    return [ev.TokenDelta(run_id=R, seq=first_seq + i, kind="visible", text=f"w{i} ", n_tokens=1, **T)
            for i in range(n)]


def messages(chunk: bytes) -> list[tuple[int, str, dict]]:
    """Parse SSE messages: (id, event, data)."""
    out = []
    for block in chunk.decode().split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return out


def test_each_change_is_one_patch_that_turns_the_old_view_into_the_new():
    log = FoldLog(version=100)
    before = json.loads(json.dumps(log.view()))
    assert log.fold([started(), ev.TaskStarted(run_id=R, seq=2, prompt="2+2?", **T)] + tokens(3, 2)) == 4
    assert log.version == 104 and [v for v, _ in log.ring] == [101, 102, 103, 104]
    got = messages(log.since(100))
    assert [(i, kind) for i, kind, _ in got] == [(101, "patch"), (102, "patch"), (103, "patch"), (104, "patch")]
    after = before
    for _, _, data in got:
        after = apply_ops(after, data["ops"])
    assert after == json.loads(json.dumps(log.view()))
    assert after["current"]["response"] == "w0 w1 "


def test_a_resent_batch_is_skipped_and_counted_but_telemetry_is_never_deduped():
    log = FoldLog()
    batch = [started(), ev.TaskStarted(run_id=R, seq=2, prompt="p", **T)] + tokens(3, 3)
    assert log.fold(batch) == 5
    version, view = log.version, log.view()
    assert log.fold(batch) == 0  # the sink re-sent it after a lost reply
    assert log.duplicates == 5 and log.version == version and log.view() == view
    assert log.fold(tokens(5, 1)) == 0 and log.duplicates == 6  # seq 5 was folded already
    assert log.fold([ev.Telemetry(run_id="host", seq=1, cpu_pct=5.0)] * 2) == 2  # samples share seq: both count
    assert log.last_seq == {R: 5}


def test_dedupe_is_per_run():
    log = FoldLog()
    log.fold([started(seq=10)])
    other = ev.RunStarted(run_id="run-2", seq=1, models=[ev.PlanModel(name="m", backend="scripted")],
                          datasets=[ev.PlanDataset(name="d", evaluator="exact_match", task_ids=["x"])])
    assert log.fold([other]) == 1 and log.view()["run"]["id"] == "run-2"


def test_the_ring_is_bounded_and_a_cursor_older_than_it_cannot_be_served():
    log = FoldLog(ring_size=4, version=0)
    log.fold([started(), ev.TaskStarted(run_id=R, seq=2, prompt="p", **T)] + tokens(3, 8))
    assert log.version == 10 and len(log.ring) == 4 and log.oldest_kept() == 7
    assert log.since(5) is None  # needs 6, which the ring dropped
    assert [m[0] for m in messages(log.since(6))] == [7, 8, 9, 10]
    assert [m[0] for m in messages(log.since(8))] == [9, 10]
    assert log.since(10) == b""
    assert log.since(8) is log.since(8)  # streams woken by one fold share one chunk


def test_a_reset_starts_the_ring_over_and_old_cursors_get_a_snapshot():
    log = FoldLog(version=0)
    log.fold([started(), ev.TaskStarted(run_id=R, seq=2, prompt="p", **T)])
    rebuilt = reducer.replay([started(seq=0, task_ids=("a", "b", "c"))])
    log.reset(rebuilt)
    assert log.version == 3 and log.after_reset() and log.ring[0] == (3, RESET)
    assert log.since(2) is None  # before the reset: nothing to replay, a snapshot it is
    snap = messages(log.snapshot_message())[0]
    assert snap[:2] == (3, "snapshot") and snap[2]["state"]["counters"]["total"] == 3
    log.fold([ev.TaskStarted(run_id=R, seq=3, prompt="p", **T)])
    assert [m[0] for m in messages(log.since(3))] == [4]
    assert log.fold([ev.TaskStarted(run_id=R, seq=2, prompt="p", **T)]) == 0  # dedupe survives the reset


def test_the_wire_carries_the_page_view_only():
    log = FoldLog()
    log.fold([started(), ev.TaskStarted(run_id=R, seq=2, prompt="p", **T),
              ev.TaskFinished(run_id=R, seq=3, verdict="PASS", final=True, tokens_per_s=50.0, **T)])
    assert reducer.PRIVATE in log.state  # the reducer's bookkeeping is folded...
    snap = messages(log.snapshot_message())[0][2]["state"]
    assert set(snap) == set(reducer.LiveState.model_fields)  # ...but never sent
    for _, _, data in messages(log.since(0)):
        assert all(op[1][:1] != [reducer.PRIVATE] for op in data["ops"]), data
    for bookkeeping in ("last_seq", "last_speed", "plan", "matrix"):
        assert bookkeeping not in snap
    assert set(snap["run"]) == {"id", "status", "detail", "model_server"}  # not the run's whole config


def test_an_event_that_changes_only_bookkeeping_sends_nothing():
    log = FoldLog()
    log.fold([started()])
    version = log.version
    # A final verdict for a task of a dataset not in progress: counted in the plan and the counters...
    assert log.fold([ev.TaskFinished(run_id=R, seq=2, verdict="FAIL", final=True, **T)]) == 1
    assert log.view()["counters"]["fail"] == 1 and log.version == version + 1
    # ...a duplicate verdict for the same task from a later seq (a rebuilt server that already counted it) does
    # not count twice and, the page's view unchanged, sends no patch.
    assert log.fold([ev.TaskFinished(run_id=R, seq=3, verdict="FAIL", final=True, **T)]) == 0
    assert log.view()["counters"]["fail"] == 1 and log.version == version + 1


@pytest.mark.parametrize("stage, expected", [("cooling", 0.0), ("streaming", 42.0)])
def test_the_speed_meter_reads_the_live_task(stage, expected):
    log = FoldLog()
    assert log.speed.sample(log.state) == (None, "no run active")
    log.fold([started(), ev.TaskStarted(run_id=R, seq=2, prompt="p", **T),
              ev.StageChanged(run_id=R, seq=3, stage=stage, at_s=1.0, **T),
              ev.TokenDelta(run_id=R, seq=4, kind="visible", text="x", n_tokens=3, tps=42.0, **T)])
    assert log.speed.sample(log.state) == (expected, None)


def test_an_answer_that_streamed_between_two_samples_is_reported_once():
    log = FoldLog()
    log.fold([started(), ev.TaskStarted(run_id=R, seq=2, prompt="p", **T)])
    assert log.speed.sample(log.state) == (0.0, None)
    log.fold([ev.StageChanged(run_id=R, seq=3, stage="streaming", at_s=1.0, **T),
              ev.TaskFinished(run_id=R, seq=4, verdict="PASS", final=True, tokens_per_s=75.0, **T),
              ev.TaskStarted(run_id=R, seq=5, prompt="p", **dict(T, task_id="b")),
              ev.StageChanged(run_id=R, seq=6, stage="cooling", at_s=0.0, **dict(T, task_id="b"))])
    assert log.speed.sample(log.state) == (75.0, None)
    assert log.speed.sample(log.state) == (0.0, None)  # once
    log.fold([ev.RunFinished(run_id=R, seq=7, status="finished")])
    assert log.speed.sample(log.state) == (None, "no run active")


def test_with_several_in_flight_the_speed_meter_reports_every_streams_tokens():
    now = [100.0]
    log = FoldLog()
    log.speed.clock = lambda: now[0]
    two = ev.ModelStarted(run_id=R, seq=2, model="m", backend="openai", ordinal=1, total=1, concurrency=2)
    log.fold([started(), two, ev.TaskStarted(run_id=R, seq=3, prompt="p", **T),
              ev.TaskStarted(run_id=R, seq=4, prompt="p", **dict(T, task_id="b"))])
    assert log.view()["slots"]["n"] == 2
    assert log.speed.sample(log.state) == (0.0, None)  # the first sample only starts the count
    log.fold([ev.TokenDelta(run_id=R, seq=5, kind="visible", text="x", n_tokens=30, tps=42.0, **T),
              ev.TokenDelta(run_id=R, seq=6, kind="visible", text="y", n_tokens=50, **dict(T, task_id="b"))])
    now[0] += 2.0
    assert log.speed.sample(log.state) == (40.0, None)  # 80 tokens of both streams over 2 s
