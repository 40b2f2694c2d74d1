"""A server restarted mid-run rebuilds the run from the store alone: the plan stored with the run and the final
verdicts, folded through the reducer. No config file, no dataset file."""
from __future__ import annotations

import logging
import time

from sqlalchemy import inspect

from benchwatch import events as ev
from benchwatch.server.rebuild import events_from_store, rebuilt_state
from benchwatch.state import LiveState, initial_state, view
from benchwatch.store import Store, metadata, run_plans

MODELS = ("m1", "m2", "m3")
TASKS = ("a", "b", "c")


def plan() -> ev.RunPlan:
    return ev.RunPlan(models=[ev.PlanModel(name=m, backend="scripted") for m in MODELS],
                      datasets=[ev.PlanDataset(name="d", evaluator="exact_match", task_ids=list(TASKS)),
                                ev.PlanDataset(name="e", evaluator="numeric", task_ids=["x"])],
                      cooling_s=0.5)


def add(store: Store, run_id: str, model: str, dataset: str, task: str, verdict: str, final: bool = True,
        attempt: int = 1) -> None:
    now = time.time()
    store.add_result({"run_id": run_id, "model": model, "backend": "scripted", "dataset": dataset, "task_id": task,
                      "attempt": attempt, "prompt": "p", "thinking": "", "response": "", "verdict": verdict, "final": final, "detail": {},
                      "stages": {}, "started_at": now, "finished_at": now})


def a_run_killed_during_its_third_model(tmp_path) -> tuple[Store, str]:
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    # The stored config names files that are gone: the rebuild must not need them.
    config = {"models": [{"name": m, "backend": "scripted"} for m in MODELS],
              "datasets": [{"name": "d", "source": str(tmp_path / "gone.jsonl")},
                           {"name": "e", "source": str(tmp_path / "gone-too.jsonl")}]}
    run_id = store.create_run(config, str(tmp_path / "no-such-config.yaml"))
    store.save_plan(run_id, plan())
    for m in ("m1", "m2"):
        for t in TASKS:
            add(store, run_id, m, "d", t, "PASS" if t != "b" else "FAIL")
        add(store, run_id, m, "e", "x", "PASS")
    add(store, run_id, "m3", "d", "a", "ERROR", final=False)
    add(store, run_id, "m3", "d", "a", "PASS", attempt=2)
    return store, run_id


def test_every_model_and_dataset_shows_what_the_store_says(tmp_path):
    store, run_id = a_run_killed_during_its_third_model(tmp_path)
    s = rebuilt_state(store, run_id, initial_state())
    LiveState.model_validate(view(s))
    assert [(m["name"], m["status"]) for m in s["models"]] == [("m1", "done"), ("m2", "done"), ("m3", "running")]
    c = s["counters"]
    assert (c["total"], c["done"], c["pass"], c["fail"], c["error"], c["remaining"]) == (12, 9, 7, 2, 0, 3)
    assert [(d["name"], d["done"], d["status"]) for d in s["datasets"]] == [("d", 1, "running"), ("e", 0, "pending")]
    assert [(i["id"], i["status"]) for i in s["tasks"]["items"]] == [("a", "pass"), ("b", "pending"),
                                                                     ("c", "pending")]
    assert s["run"] == {"id": run_id, "status": "running", "detail": "", "model_server": False}


def test_a_buffered_verdict_arriving_after_the_rebuild_counts_once(tmp_path):
    from benchwatch.state import apply
    store, run_id = a_run_killed_during_its_third_model(tmp_path)
    s = rebuilt_state(store, run_id, initial_state())
    done = s["counters"]["done"]
    s = apply(s, ev.TaskFinished(run_id=run_id, seq=99, model="m3", dataset="d", task_id="a", attempt=2,
                                 verdict="PASS", final=True))
    assert s["counters"]["done"] == done
    s = apply(s, ev.TaskFinished(run_id=run_id, seq=100, model="m3", dataset="d", task_id="b", attempt=1,
                                 verdict="PASS", final=True))
    assert s["counters"]["done"] == done + 1


def test_a_finished_run_rebuilt_shows_every_model_done(tmp_path):
    store, run_id = a_run_killed_during_its_third_model(tmp_path)
    for t in ("b", "c"):
        add(store, run_id, "m3", "d", t, "PASS")
    add(store, run_id, "m3", "e", "x", "FAIL")
    store.set_run_status(run_id, "finished")
    s = rebuilt_state(store, run_id, initial_state())
    assert [m["status"] for m in s["models"]] == ["done", "done", "done"]
    assert s["counters"]["remaining"] == 0 and s["run"]["status"] == "finished"


def test_the_plan_is_the_runners_not_a_reread_of_the_config(tmp_path):
    store, run_id = a_run_killed_during_its_third_model(tmp_path)
    started = events_from_store(store, run_id)[0]
    assert started.plan() == plan() and started.seq == 0
    assert {(t.model, t.dataset, t.task_id, t.verdict) for t in started.done} >= {("m3", "d", "a", "PASS")}
    assert len(started.done) == 9  # final verdicts only: the retried ERROR is not one


def test_a_resumed_run_with_a_changed_plan_replaces_the_stored_one(tmp_path):
    store, run_id = a_run_killed_during_its_third_model(tmp_path)
    smaller = ev.RunPlan(models=plan().models[:1], datasets=plan().datasets[:1])
    store.save_plan(run_id, smaller)
    assert store.get_plan(run_id) == smaller
    assert store.get_plan("no-such-run") is None


def test_a_store_made_before_plans_gains_the_table_and_its_runs_still_rebuild(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    from sqlalchemy import create_engine
    engine = create_engine(url)
    metadata.create_all(engine, tables=[t for t in metadata.sorted_tables if t is not run_plans])
    engine.dispose()
    store = Store(url)
    assert "run_plans" in inspect(store.engine).get_table_names()
    run_id = store.create_run({"models": [{"name": "m1", "backend": "ollama"}, {"name": "m2", "backend": "openai"}],
                               "datasets": [{"name": "d", "source": "builtin:facts", "evaluator": "numeric"}],
                               "runner": {"cooling_s": 2.0}}, None)
    add(store, run_id, "m1", "d", "a", "PASS")
    add(store, run_id, "m1", "d", "b", "FAIL")
    with caplog.at_level(logging.WARNING):
        s = rebuilt_state(store, run_id, initial_state())
    assert "no stored plan" in caplog.text
    assert [(m["name"], m["backend"], m["status"]) for m in s["models"]] == [
        ("m1", "ollama", "running"), ("m2", "openai", "pending")]
    assert s["counters"]["done"] == 2 and s["datasets"][0]["evaluator"] == "numeric"


def test_a_run_the_store_does_not_know_rebuilds_nothing(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    assert rebuilt_state(store, "nope", initial_state()) is None
