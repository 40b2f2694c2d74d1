import copy

from benchwatch import events as ev
from benchwatch.state import apply, initial_state, replay, thermal_class

R = "run-1"


def seq():
    n = 0
    while True:
        n += 1
        yield n


def scripted_events():
    s = seq()
    t = dict(model="m1", dataset="d1", task_id="t1", attempt=1)
    return [
        ev.RunStarted(run_id=R, seq=next(s), models=[ev.PlanModel(name="m1", backend="embedded"),
                                                     ev.PlanModel(name="m2", backend="ollama")],
                      datasets=[ev.PlanDataset(name="d1", evaluator="numeric", task_ids=["t1", "t2"])]),
        ev.ModelStarted(run_id=R, seq=next(s), model="m1", backend="embedded", ordinal=1, total=2),
        ev.BackendState(run_id=R, seq=next(s), model="m1", state="connected"),
        ev.DatasetStarted(run_id=R, seq=next(s), model="m1", dataset="d1", task_ids=["t1", "t2"]),
        ev.TaskStarted(run_id=R, seq=next(s), prompt="2+2?", **t),
        ev.StageChanged(run_id=R, seq=next(s), stage="cooling", at_s=0.0, **t),
        ev.StageChanged(run_id=R, seq=next(s), stage="thinking", at_s=1.0, **t),
        ev.TokenDelta(run_id=R, seq=next(s), kind="thinking", text="hmm", n_tokens=1, **t),
        ev.StageChanged(run_id=R, seq=next(s), stage="streaming", at_s=1.5, **t),
        ev.TokenDelta(run_id=R, seq=next(s), kind="visible", text="4", n_tokens=1, tps=None, **t),
        ev.StageChanged(run_id=R, seq=next(s), stage="evaluating", at_s=2.0, **t),
        ev.StageChanged(run_id=R, seq=next(s), stage="done", at_s=2.1, **t),
        ev.TaskFinished(run_id=R, seq=next(s), verdict="PASS", final=True, ttft_ms=500, latency_ms=1100,
                        detail={"expected": 4, "actual": 4}, **t),
    ]


def test_reducer_builds_the_page_picture():
    s = replay(scripted_events())
    assert s["run"]["status"] == "running"
    assert [(m["name"], m["ordinal"], m["of"], m["status"]) for m in s["models"]] == [
        ("m1", 1, 2, "running"), ("m2", 2, 2, "pending")]
    assert s["server"]["active_model"] == "m1" and s["server"]["connection"] == "connected"
    assert [(i["id"], i["status"]) for i in s["tasks"]["items"]] == [("t1", "pass"), ("t2", "pending")]
    c = s["counters"]
    assert (c["total"], c["done"], c["remaining"], c["ok_pct"]) == (4, 1, 3, 100.0)
    cur = s["current"]
    assert cur["response"] == "4" and cur["thinking"] == "hmm" and cur["verdict"] == "PASS"
    assert cur["stages"]["cooling"]["elapsed_s"] == 1.0 and cur["stages"]["thinking"]["elapsed_s"] == 0.5
    assert s["datasets"][0]["done"] == 1 and s["datasets"][0]["status"] != "done"


def test_apply_does_not_mutate_its_input():
    events = scripted_events()
    s = replay(events[:-1])
    before = copy.deepcopy(s)
    apply(s, events[-1])
    assert s == before


def test_resumed_run_starts_from_done_tasks():
    e = ev.RunStarted(run_id=R, seq=1, models=[ev.PlanModel(name="m", backend="x")],
                      datasets=[ev.PlanDataset(name="d", evaluator="numeric", task_ids=["a", "b"])],
                      resumed=True, done=[ev.DoneTask(model="m", dataset="d", task_id="a", verdict="FAIL")])
    s = replay([e, ev.DatasetStarted(run_id=R, seq=2, model="m", dataset="d", task_ids=["a", "b"])])
    assert s["counters"]["fail"] == 1 and s["counters"]["remaining"] == 1
    assert [i["status"] for i in s["tasks"]["items"]] == ["fail", "pending"]


def test_retry_returns_task_to_pending_and_does_not_count():
    events = scripted_events()[:-1] + [ev.TaskFinished(run_id=R, seq=99, model="m1", dataset="d1", task_id="t1",
                                                       attempt=1, verdict="ERROR", final=False)]
    s = replay(events)
    assert s["counters"]["done"] == 0 and s["tasks"]["items"][0]["status"] == "pending"


def test_telemetry_window_and_thermal_class():
    s = initial_state()
    for i in range(70):
        s = apply(s, ev.Telemetry(run_id=R, seq=0, cpu_pct=i, gpu_temp_c=90.0))
    assert len(s["telemetry"]) == 60 and s["telemetry"][-1]["cpu_pct"] == 69
    assert s["server"]["thermal"] == "hot"
    s = apply(s, ev.Telemetry(run_id=R, seq=0, gpu_temp_c=None, unavailable={"gpu_temp_c": "no NVIDIA driver"}))
    assert s["server"]["gpu_temp_c"] is None and s["server"]["gpu_unavailable"] == "no NVIDIA driver"
    assert thermal_class(40, s["thermal"]) == "cool" and thermal_class(75, s["thermal"]) == "warm"


def test_parse_event_names_the_field():
    import pytest
    with pytest.raises(ev.EventError) as exc:
        ev.parse_events([{"type": "stage", "run_id": "r", "seq": 1, "model": "m", "dataset": "d",
                          "task_id": "t", "attempt": 1, "stage": "sleeping", "at_s": 0}])
    assert "event[0]" in str(exc.value) and "stage" in str(exc.value)


def test_current_task_position_and_live_ttft():
    events = scripted_events()
    s = replay(events[:5])  # up to task_started
    assert s["current"]["position"] == {"model": [1, 2], "dataset": [1, 1], "task": [1, 2]}
    s = replay(events[5:9], s)  # cooling, thinking (at 1.0), token, streaming (at 1.5)
    assert s["current"]["ttft_ms"] == 500.0


def test_a_grid_in_another_order_than_the_plan_still_marks_the_right_pill():
    """The grid's items are found by the plan's order first (a scan in C); a dataset announced in another order
    (an older runner, a hand-written event stream) still updates the right item."""
    s = seq()
    t1 = dict(model="m1", dataset="d1", task_id="t1", attempt=1)
    events = [
        ev.RunStarted(run_id=R, seq=next(s), models=[ev.PlanModel(name="m1", backend="embedded")],
                      datasets=[ev.PlanDataset(name="d1", evaluator="numeric", task_ids=["t1", "t2", "t3"])]),
        ev.ModelStarted(run_id=R, seq=next(s), model="m1", backend="embedded", ordinal=1, total=1),
        ev.DatasetStarted(run_id=R, seq=next(s), model="m1", dataset="d1", task_ids=["t3", "t2", "t1"]),
        ev.TaskStarted(run_id=R, seq=next(s), prompt="p", **t1),
        ev.TaskFinished(run_id=R, seq=next(s), verdict="FAIL", final=True, detail={}, **t1),
    ]
    items = replay(events)["tasks"]["items"]
    assert [(i["id"], i["status"]) for i in items] == [("t3", "pending"), ("t2", "pending"), ("t1", "fail")]
