"""The declared live state (state.LiveState) and its exported schemas: every snapshot fits the declaration, the
declaration holds nothing the page does not read, and `benchwatch schema state|events` prints them."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from pydantic import ValidationError

from benchwatch import events as ev
from benchwatch.schema import json_schema
from benchwatch.state import LiveState, apply, initial_state, replay, view
from tests.conftest import ROOT, cli_env
from tests.unit.test_state import R, scripted_events

JS = ROOT / "benchwatch" / "web" / "static" / "js"


def a_whole_run() -> dict:
    t = dict(model="m1", dataset="d1", task_id="t2", attempt=1)
    events = scripted_events() + [
        ev.TaskStarted(run_id=R, seq=20, prompt="3+3?", **t),
        ev.TaskFinished(run_id=R, seq=21, verdict="ERROR", final=False, error="backend down", **t),
        ev.TaskStarted(run_id=R, seq=22, prompt="3+3?", **dict(t, attempt=2)),
        ev.TaskFinished(run_id=R, seq=23, verdict="FAIL", final=True, detail={"expected": 6, "actual": 7},
                        stages={"cooling": [0.0, 1.0], "done": [2.0, 2.0]}, **dict(t, attempt=2)),
        ev.Telemetry(run_id=R, seq=0, cpu_pct=12.0, fds=30, tps=None, unavailable={"gpu_pct": "no NVIDIA driver",
                                                                                  "tps": "no run active"}),
        ev.DatasetFinished(run_id=R, seq=24, model="m1", dataset="d1"),
        ev.ModelFinished(run_id=R, seq=25, model="m1"),
        ev.RunFinished(run_id=R, seq=26, status="interrupted", detail="stopped by the user (Ctrl-C)"),
    ]
    return replay(events)


def test_every_state_along_a_run_fits_the_declaration():
    s = initial_state()
    LiveState.model_validate(view(s))
    for e in scripted_events():
        s = apply(s, e)
        LiveState.model_validate(view(s))
    final = view(a_whole_run())
    LiveState.model_validate(json.loads(json.dumps(final)))  # as it crosses the wire
    assert final["counters"]["fail"] == 1 and final["models"][0]["status"] == "done"
    assert final["models"][1]["status"] == "pending"


def test_the_declaration_refuses_what_it_does_not_declare():
    s = view(a_whole_run())
    with pytest.raises(ValidationError, match="last_seq"):
        LiveState.model_validate({**s, "last_seq": {R: 3}})  # bookkeeping on the wire
    with pytest.raises(ValidationError, match="config"):
        LiveState.model_validate({**s, "run": {**s["run"], "config": {}}})
    with pytest.raises(ValidationError, match="status"):
        LiveState.model_validate({**s, "models": [{**s["models"][0], "status": "sleeping"}]})
    with pytest.raises(ValidationError, match="ok_pct"):
        bad = dict(s["counters"])
        del bad["ok_pct"]
        LiveState.model_validate({**s, "counters": bad})


def _property_names(node) -> set[str]:
    names: set[str] = set()
    if isinstance(node, dict):
        names |= set(node.get("properties", {}))
        for v in node.values():
            names |= _property_names(v)
    elif isinstance(node, list):
        for v in node:
            names |= _property_names(v)
    return names


def test_nothing_in_the_state_that_the_page_does_not_read():
    source = "\n".join(p.read_text(encoding="utf-8") for p in sorted(JS.glob("*.js")))
    metric_keys = {m.key for m in ev.TELEMETRY_METRICS}  # read as sample[m.key], m from state.metrics
    unread = sorted(n for n in _property_names(json_schema("state")) - metric_keys
                    if not re.search(r"""(\.|\[["'])""" + re.escape(n) + r"\b", source))
    assert unread == [], f"fields sent to the page that its scripts never read: {unread}"
    assert re.search(r"\bm\.key\b", source) and "state.metrics" in source


def test_the_page_charts_the_servers_metric_list():
    s = initial_state()
    assert [m["key"] for m in s["metrics"]] == [m.key for m in ev.TELEMETRY_METRICS]
    sample = view(apply(s, ev.Telemetry(run_id="host", seq=0, cpu_pct=3.0)))["telemetry"][0]
    assert set(sample) == {"ts", "unavailable", "model_server"} | {m.key for m in ev.TELEMETRY_METRICS}
    assert set(ev.Telemetry.model_fields) == {"v", "run_id", "seq", "ts", "type", "unavailable", "model_server"} | {
        m.key for m in ev.TELEMETRY_METRICS}


def test_json_schemas():
    state = json_schema("state")
    assert state["$schema"].endswith("2020-12/schema") and state["additionalProperties"] is False
    assert set(state["required"]) == set(LiveState.model_fields)
    events = json_schema("events")
    assert set(events["discriminator"]["mapping"]) == set(ev.EVENT_TYPES)
    with pytest.raises(ValueError, match="unknown schema 'plan'; expected one of state, events"):
        json_schema("plan")


def test_schema_command_prints_them():
    for name in ("state", "events"):
        proc = subprocess.run([sys.executable, "-m", "benchwatch.cli", "schema", name], capture_output=True,
                              text=True, env=cli_env(), cwd=ROOT, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == json_schema(name)
    proc = subprocess.run([sys.executable, "-m", "benchwatch.cli", "schema", "plan"], capture_output=True,
                          text=True, env=cli_env(), cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'plan'" in proc.stderr and proc.stdout == ""


def test_several_in_flight_fit_the_declaration():
    """runner.concurrency > 1: `slots` (n places, each an attempt's record or null) and a throttled task item are
    declared; the followed task is the most recently started, kept until it finishes."""
    ids = ["a", "b", "c"]
    tk = lambda tid, **kw: dict(model="m", dataset="d", task_id=tid, attempt=1, **kw)  # noqa: E731
    events = [
        ev.RunStarted(run_id=R, seq=1, models=[ev.PlanModel(name="m", backend="openai")],
                      datasets=[ev.PlanDataset(name="d", evaluator="numeric", task_ids=ids)]),
        ev.ModelStarted(run_id=R, seq=2, model="m", backend="openai", ordinal=1, total=1, concurrency=2),
        ev.DatasetStarted(run_id=R, seq=3, model="m", dataset="d", task_ids=ids),
        ev.TaskStarted(run_id=R, seq=4, prompt="a?", **tk("a")),
        ev.TaskStarted(run_id=R, seq=5, prompt="b?", **tk("b")),
        ev.StageChanged(run_id=R, seq=6, stage="throttled", at_s=0.1, **tk("b")),
    ]
    s = initial_state()
    for e in events:
        s = apply(s, e)
        LiveState.model_validate(json.loads(json.dumps(view(s))))
    v = view(s)
    assert v["slots"]["n"] == 2 and [r["task_id"] for r in v["slots"]["inflight"]] == ["a", "b"]
    assert v["current"]["task_id"] == "a"  # still in flight: still followed
    assert [i["status"] for i in v["tasks"]["items"]] == ["running", "throttled", "pending"]
    s = apply(s, ev.TaskFinished(run_id=R, seq=7, verdict="PASS", final=True, output_tokens=3, itl_ms=1.5,
                                 tpot_ms=2.0, **tk("a")))
    s = apply(s, ev.TaskStarted(run_id=R, seq=8, prompt="c?", **tk("c")))
    v = view(s)
    LiveState.model_validate(v)
    assert v["current"]["task_id"] == "c" and [r and r["task_id"] for r in v["slots"]["inflight"]] == ["c", "b"]
    assert "tokens_out" not in v["slots"]  # the aggregate speed is the hub's (server/fold.py), not on the wire
