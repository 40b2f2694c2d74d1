"""The live state, declared once, and the one reducer over it: `apply(state, event) -> state`, pure.

`LiveState` (below) is what the page sees: the server's snapshot and every patch are exactly that, and
`benchwatch schema state` prints its JSON Schema. The reducer's state is a plain JSON-ready dict with those keys
plus one private key, `plan` (the run's task ids, the final verdict of each task and the per model x dataset
counts): what folding needs but the page does not, never sent (`view` leaves it out). Server bookkeeping that is
not about the run (which events were already folded, the streaming speed the sampler reports) lives in the hub.

The server's snapshot, the page, the terminal display and every replay (reconnect, restart, resume) use this
and nothing else. `apply` never mutates its input: it copies the branches an event touches and shares the rest,
so a 10,000-task run stays cheap per event.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from .counting import Tally
from .events import TELEMETRY_METRICS, Connection, Event, RunStatus, Stage, Verdict

TELEMETRY_WINDOW = 60
RESPONSE_LIMIT = 200_000  # characters kept of the streaming text; the store keeps the whole answer
THERMAL_DEFAULTS = {"warm_c": 70.0, "hot_c": 85.0}
PRIVATE = "plan"  # the reducer's own bookkeeping key: folded, never sent


# ---- the declared live state (what the page reads; nothing else goes on the wire)

class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RunView(_View):
    id: str
    status: RunStatus
    detail: str = Field(description="why the run stopped, when it did not finish")
    model_server: bool = Field(default=False, description="a model of the run has a metrics_url: the page shows "
                                                          "the model server's charts")


class ModelRow(_View):
    name: str
    backend: str
    ordinal: int = Field(ge=1)
    of: int = Field(ge=1)
    status: Literal["pending", "running", "partial", "done", "interrupted", "failed"]
    connection: Connection
    errors: int = Field(default=0, ge=0, description="its tasks whose final verdict is ERROR (the page says "
                                                     "'done, N errors' in the error colour)")


class _Counts(_View):
    total: int = Field(ge=0)
    done: int = Field(ge=0)
    pass_: int = Field(ge=0, alias="pass")
    fail: int = Field(ge=0)
    error: int = Field(ge=0)


class DatasetRow(_Counts):
    """A dataset for the active model (the Datasets Overview)."""
    name: str
    evaluator: str
    status: Literal["pending", "running", "partial", "done"]


class TaskItem(_View):
    id: str
    status: Literal["pending", "running", "throttled", "pass", "fail", "error"] = Field(
        description="throttled: the server pushed back (429/503 with Retry-After) and the slot waits to send the "
                    "same attempt again")
    attempt: int = Field(ge=0)
    verdict: Verdict | None = None


class Tasks(_View):
    """The tasks of the dataset in progress (the Tasks grid)."""
    model: str | None
    dataset: str | None
    items: list[TaskItem]


class Counters(_Counts):
    """Final verdicts of the whole run, counted by benchwatch/counting.py."""
    remaining: int = Field(ge=0)
    ok_pct: float | None
    ko_pct: float | None
    other_pct: float | None


class StageSpan(_View):
    start: float
    end: float | None
    elapsed_s: float | None


class Position(_View):
    """[1-based position, count] of the current model, dataset and task (the page's "2/5")."""
    model: list[int | None]
    dataset: list[int | None]
    task: list[int | None]


class Current(_View):
    """The followed task (Current Task and Streaming Details): with several in flight, the most recently started,
    kept until it finishes; the last one once nothing runs. The same shape is each record of `slots.inflight`."""
    model: str
    dataset: str
    task_id: str
    attempt: int = Field(ge=1)
    position: Position
    stage: Stage | None
    stages: dict[Stage, StageSpan]
    status_label: str
    last: bool = Field(description="the run ended: this is the last task, not the current one")
    prompt: str
    thinking: str
    response: str
    ttft_ms: float | None
    tps: float | None
    latency_ms: float | None
    verdict: Verdict | None
    detail: dict[str, Any] | None
    error: str | None


class Slots(_View):
    """The attempts in flight for the running model (runner.concurrency, docs/concurrency.md)."""
    n: int = Field(ge=1, description="places: attempts in flight at most (ModelStarted.concurrency); 1 = one "
                                     "task at a time, and the page looks as it always did")
    inflight: list[Current | None] = Field(description="a fixed-length list of n places, each the record of an "
                                           "attempt in flight or null (an attempt starting or ending is one small "
                                           "patch)")


class ServerCard(_View):
    active_model: str | None
    connection: Connection
    connection_detail: str
    gpu_temp_c: float | None
    thermal: Literal["cool", "warm", "hot"] | None
    gpu_unavailable: str | None = None


class Thermal(_View):
    warm_c: float
    hot_c: float


class MetricInfo(_View):
    key: str
    label: str
    unit: str
    digits: int


class _Sample(_View):
    ts: float = Field(description="wall-clock seconds since the epoch")
    unavailable: dict[str, str] = Field(description="metric -> why its value is null")
    model_server: dict[str, Any] | None = Field(default=None, description="the running model's server metrics "
                                                "(telemetry/model_server.py), null when it has no metrics_url")


TelemetrySample = create_model(  # one value per metric of events.TELEMETRY_METRICS
    "TelemetrySample", __base__=_Sample, __doc__="One host sample, as the charts read it.",
    **{m.key: (m.kind | None, Field(description=f"{m.label} ({m.unit})")) for m in TELEMETRY_METRICS})  # type: ignore[call-overload]


class LiveState(_View):
    """What the monitor page sees: the SSE snapshot, kept current by patches."""
    run: RunView | None
    models: list[ModelRow]
    datasets: list[DatasetRow]
    tasks: Tasks
    counters: Counters
    server: ServerCard
    thermal: Thermal
    current: Current | None
    slots: Slots
    metrics: list[MetricInfo] = Field(description="the telemetry charts, in order (events.TELEMETRY_METRICS)")
    telemetry: list[TelemetrySample] = Field(description=f"the last {TELEMETRY_WINDOW} samples")  # type: ignore[valid-type]


VIEW_KEYS: tuple[str, ...] = tuple(LiveState.model_fields)


def view(state: dict[str, Any]) -> dict[str, Any]:
    """The part of the reducer's state that the page sees (a LiveState as data); shares its branches."""
    return {k: state[k] for k in VIEW_KEYS}


# ---- the reducer

def initial_state(thermal: dict[str, float] | None = None) -> dict[str, Any]:
    return {
        "run": None,
        "models": [],
        "datasets": [],
        "tasks": {"model": None, "dataset": None, "items": []},
        "counters": _counters(Tally()),
        "server": {"active_model": None, "connection": "unknown", "connection_detail": "",
                   "gpu_temp_c": None, "thermal": None},
        "thermal": dict(thermal or THERMAL_DEFAULTS),
        "current": None,
        "metrics": [{"key": m.key, "label": m.label, "unit": m.unit, "digits": m.digits} for m in TELEMETRY_METRICS],
        "telemetry": [],
        "slots": _slots(1),
        PRIVATE: _empty_plan(),
    }


def _empty_plan() -> dict[str, Any]:
    # task_ids: dataset -> ids; task_index: dataset -> id -> its position (a dict: a list scan of thousands of
    # ids per event was a fifth of the server's fold); results: model -> dataset -> task id -> pass|fail|error
    # (final verdicts); cells: model -> dataset -> {total, done, pass, fail, error}; scrape: model -> its /metrics
    return {"task_ids": {}, "task_index": {}, "results": {}, "cells": {}, "scrape": {}}


def _positions(ids: list[str]) -> dict[str, int]:
    """id -> position of its first occurrence (as list.index finds it)."""
    index: dict[str, int] = {}
    for i, task_id in enumerate(ids):
        index.setdefault(task_id, i)
    return index


def _counters(t: Tally, total: int = 0) -> dict[str, Any]:
    ok, ko, other = t.shares_pct()
    return {"total": total, "done": t.total, "pass": t.passed, "fail": t.failed, "error": t.errored,
            "remaining": max(total - t.total, 0), "ok_pct": ok, "ko_pct": ko, "other_pct": other}


# ---- concurrency (docs/concurrency.md): the attempts in flight are under "slots" (declared as `Slots` above).
# `slots.inflight` is a list of N places, each the record (same shape as `current`) of an attempt in flight or
# None: a fixed-length list, so an attempt starting or ending is one small patch (a dict losing a key would be
# re-sent whole). `current` is the followed attempt (the most recently started, kept until it finishes). The
# aggregate tokens/s across streams is counted by the hub's speed meter (server/fold.py), not in the state.
def _slots(n: int) -> dict[str, Any]:
    return {"n": n, "inflight": [None] * n}


def _same_attempt(c: dict[str, Any] | None, e: Any) -> bool:
    return bool(c) and (c["model"], c["dataset"], c["task_id"], c["attempt"]) == (
        e.model, e.dataset, e.task_id, e.attempt)


def _place(inflight: list[Any], model: str, dataset: str, task_id: str) -> int | None:
    """Index of the task's record among the attempts in flight, or None."""
    for i, rec in enumerate(inflight):
        if rec is not None and rec["task_id"] == task_id and rec["dataset"] == dataset and rec["model"] == model:
            return i
    return None


def _set_place(s: dict[str, Any], i: int, rec: dict[str, Any] | None) -> None:
    inflight = list(s["slots"]["inflight"])
    if i == len(inflight):
        inflight.append(rec)
    else:
        inflight[i] = rec
    s["slots"] = {**s["slots"], "inflight": inflight}


def _update_inflight(s: dict[str, Any], e: Any, change: Any) -> None:
    """Apply change(record) -> record to the in-flight record of e's attempt, if it is in flight."""
    i = _place(s["slots"]["inflight"], e.model, e.dataset, e.task_id)
    if i is not None and _same_attempt(s["slots"]["inflight"][i], e):
        _set_place(s, i, change(s["slots"]["inflight"][i]))


def thermal_class(temp_c: float | None, thermal: dict[str, float]) -> str | None:
    if temp_c is None:
        return None
    if temp_c >= thermal["hot_c"]:
        return "hot"
    return "warm" if temp_c >= thermal["warm_c"] else "cool"


def _status_of(verdict: str) -> str:
    return {"PASS": "pass", "FAIL": "fail", "ERROR": "error"}[verdict]


def apply(state: dict[str, Any], event: Event) -> dict[str, Any]:
    """Fold one event into the state and return the new state (the input is left as it was)."""
    handler = _HANDLERS.get(event.type)
    if handler is None:
        return state
    s = dict(state)
    handler(s, event)
    return s


def _model_status(cells: dict[str, dict[str, int]]) -> str:
    """A model's status from its final verdicts alone (a resumed run, a server rebuilt from the store)."""
    total = sum(c["total"] for c in cells.values())
    done = sum(c["done"] for c in cells.values())
    return "done" if total and done >= total else ("partial" if done else "pending")


def _run_started(s: dict[str, Any], e: Any) -> None:
    task_count = {d.name: len(d.task_ids) for d in e.datasets}
    cells = {m.name: {d.name: {"total": task_count[d.name], "done": 0, "pass": 0, "fail": 0, "error": 0}
                      for d in e.datasets} for m in e.models}
    results: dict[str, dict[str, dict[str, str]]] = {}
    for t in e.done:
        cell = cells.get(t.model, {}).get(t.dataset)
        if cell is None:
            continue
        cell["done"] += 1
        cell[_status_of(t.verdict)] += 1
        results.setdefault(t.model, {}).setdefault(t.dataset, {})[t.task_id] = _status_of(t.verdict)
    scrape = _scrape_targets(e.config)
    s["run"] = {"id": e.run_id, "status": "running", "detail": "", "model_server": bool(scrape)}
    s["models"] = [{"name": m.name, "backend": m.backend, "ordinal": i + 1, "of": len(e.models),
                    "status": _model_status(cells[m.name]), "connection": "unknown",
                    "errors": sum(c["error"] for c in cells[m.name].values())}
                   for i, m in enumerate(e.models)]
    s[PRIVATE] = {"task_ids": {d.name: list(d.task_ids) for d in e.datasets},
                  "task_index": {d.name: _positions(d.task_ids) for d in e.datasets},
                  "results": results, "cells": cells, "scrape": scrape}
    s["datasets"] = [{"name": d.name, "evaluator": d.evaluator, "total": len(d.task_ids), "done": 0,
                      "pass": 0, "fail": 0, "error": 0, "status": "pending"} for d in e.datasets]
    s["tasks"] = {"model": None, "dataset": None, "items": []}
    s["counters"] = _totals(cells)
    s["current"] = None
    s["server"] = {**s["server"], "active_model": None, "connection": "unknown", "connection_detail": ""}
    s["slots"] = _slots(1)


def _scrape_targets(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """model -> {url, kind, names} for the models whose config names their server's /metrics (http(s) only: the
    config schema refuses others, and a hand-made run_started must not get further)."""
    out = {}
    for m in config.get("models") or []:
        url = m.get("metrics_url") if isinstance(m, dict) else None
        if isinstance(url, str) and url.startswith(("http://", "https://")) and isinstance(m.get("name"), str):
            out[m["name"]] = {"url": url, "kind": m.get("metrics_kind") or "auto", "names": m.get("metrics_names") or {}}
    return out


def _totals(cells: dict[str, Any]) -> dict[str, Any]:
    flat = [c for per_model in cells.values() for c in per_model.values()]
    return _counters(Tally(sum(c["pass"] for c in flat), sum(c["fail"] for c in flat),
                           sum(c["error"] for c in flat)), sum(c["total"] for c in flat))


def _datasets_for(s: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """The Datasets Overview row for one model: done when all that model's tasks in it are done."""
    out = []
    for d in s["datasets"]:
        cell = s[PRIVATE]["cells"].get(model, {}).get(d["name"], {"total": d["total"], "done": 0, "pass": 0,
                                                                  "fail": 0, "error": 0})
        status = "done" if cell["total"] and cell["done"] >= cell["total"] else (
            "running" if d["name"] == s["tasks"].get("dataset") and model == s["tasks"].get("model") else
            ("partial" if cell["done"] else "pending"))
        out.append({**d, **cell, "status": status})
    return out


def _model_started(s: dict[str, Any], e: Any) -> None:
    s["models"] = [{**m, "status": "running"} if m["name"] == e.model else
                   ({**m, "status": "done"} if m["status"] == "running" else m) for m in s["models"]]
    s["server"] = {**s["server"], "active_model": e.model}
    s["datasets"] = _datasets_for(s, e.model)
    s["slots"] = _slots(e.concurrency)


def _backend_state(s: dict[str, Any], e: Any) -> None:
    s["models"] = [{**m, "connection": e.state} if m["name"] == e.model else m for m in s["models"]]
    if s["server"]["active_model"] in (None, e.model):
        s["server"] = {**s["server"], "connection": e.state, "connection_detail": e.detail}


def _dataset_started(s: dict[str, Any], e: Any) -> None:
    done = s[PRIVATE]["results"].get(e.model, {}).get(e.dataset, {})
    s["tasks"] = {"model": e.model, "dataset": e.dataset,
                  "items": [{"id": t, "status": done.get(t, "pending"), "attempt": 0} for t in e.task_ids]}
    s["datasets"] = _datasets_for(s, e.model)


def _set_task_item(s: dict[str, Any], e: Any, **changes: Any) -> None:
    tasks = s["tasks"]
    if tasks["model"] != e.model or tasks["dataset"] != e.dataset:
        return
    items = list(tasks["items"])
    i = _item_index(s, items, e.dataset, e.task_id)
    if i is not None:
        items[i] = {**items[i], **changes}
    s["tasks"] = {**tasks, "items": items}


def _item_index(s: dict[str, Any], items: list[dict[str, Any]], dataset: str, task_id: str) -> int | None:
    """Where task_id sits in the grid's items: they are the plan's task ids in order, so the plan's index finds
    it; a Python scan of thousands of items per event was most of the fold's time."""
    i = s[PRIVATE]["task_index"].get(dataset, {}).get(task_id)
    if i is not None and i < len(items) and items[i]["id"] == task_id:
        return i
    return next((j for j, item in enumerate(items) if item["id"] == task_id), None)


def _ordinal(names: list[str], name: str) -> list[int | None]:
    """[1-based position of name in names (None if absent), len(names)]: the page's "2/5"."""
    return [names.index(name) + 1 if name in names else None, len(names)]


def _position(s: dict[str, Any], e: Any) -> dict[str, list[int | None]]:
    """Where the task sits in the model x dataset x task matrix (Progress Snapshot card)."""
    index = s[PRIVATE]["task_index"].get(e.dataset)
    if index:
        task = [index[e.task_id] + 1 if e.task_id in index else None, len(s[PRIVATE]["task_ids"][e.dataset])]
    else:
        task = _ordinal([i["id"] for i in s["tasks"]["items"]], e.task_id)
    return {"model": _ordinal([m["name"] for m in s["models"]], e.model),
            "dataset": _ordinal([d["name"] for d in s["datasets"]], e.dataset), "task": task}


def _task_started(s: dict[str, Any], e: Any) -> None:
    rec = {"model": e.model, "dataset": e.dataset, "task_id": e.task_id, "attempt": e.attempt,
           "position": _position(s, e), "stage": None, "stages": {}, "status_label": "RUNNING",
           "last": False, "prompt": e.prompt, "thinking": "", "response": "", "tps": None,
           "ttft_ms": None, "latency_ms": None, "verdict": None, "detail": None, "error": None}
    inflight = s["slots"]["inflight"]
    c = s["current"]
    # Follow the newly started attempt unless the followed one is still in flight (one task at a time: always).
    if c is None or c["last"] or c["verdict"] is not None or _place(
            inflight, c["model"], c["dataset"], c["task_id"]) is None:
        s["current"] = rec
    i = _place(inflight, e.model, e.dataset, e.task_id)  # a stale record of this task (not expected) is replaced
    if i is None:
        i = next((j for j, r in enumerate(inflight) if r is None), len(inflight))
    _set_place(s, i, rec)
    _set_task_item(s, e, status="running", attempt=e.attempt)


def _is_current(s: dict[str, Any], e: Any) -> bool:
    c = s["current"]
    return bool(c) and (c["model"], c["dataset"], c["task_id"], c["attempt"]) == (
        e.model, e.dataset, e.task_id, e.attempt)


def _stage(s: dict[str, Any], e: Any) -> None:
    i = _place(s["slots"]["inflight"], e.model, e.dataset, e.task_id)
    was = s["slots"]["inflight"][i]["stage"] if i is not None else None
    _update_inflight(s, e, lambda c: _staged(c, e))
    if e.stage == "throttled" or (was == "throttled" and e.stage == "thinking"):
        # A throttled slot's pill shows it; sending again shows it running again.
        _set_task_item(s, e, status="throttled" if e.stage == "throttled" else "running")
    if _is_current(s, e):
        s["current"] = _staged(s["current"], e)


def _staged(c: dict[str, Any], e: Any) -> dict[str, Any]:
    stages = {k: dict(v) for k, v in c["stages"].items()}
    prev = c["stage"]
    if prev in stages and stages[prev].get("end") is None:
        stages[prev]["end"] = e.at_s
        stages[prev]["elapsed_s"] = round(e.at_s - stages[prev]["start"], 4)
    stages[e.stage] = {"start": e.at_s, "end": None, "elapsed_s": None}
    if e.stage == "done":
        stages["done"].update(end=e.at_s, elapsed_s=0.0)
    ttft_ms = c["ttft_ms"]
    if e.stage == "streaming" and "thinking" in stages:
        # TTFT (first visible token) is captured as Streaming starts; task_finished brings the exact figure.
        ttft_ms = round((e.at_s - stages["thinking"]["start"]) * 1000.0, 1)
    return {**c, "stage": e.stage, "stages": stages, "status_label": e.stage.upper(), "ttft_ms": ttft_ms}


def _token(s: dict[str, Any], e: Any) -> None:
    _update_inflight(s, e, lambda c: _tokened(c, e))
    if _is_current(s, e):
        s["current"] = _tokened(s["current"], e)


def _tokened(c: dict[str, Any], e: Any) -> dict[str, Any]:
    key = "thinking" if e.kind == "thinking" else "response"
    text = (c[key] + e.text)[-RESPONSE_LIMIT:]
    return {**c, key: text, "tps": e.tps if e.tps is not None else c["tps"]}


def _task_finished(s: dict[str, Any], e: Any) -> None:
    status = _status_of(e.verdict)
    i = _place(s["slots"]["inflight"], e.model, e.dataset, e.task_id)
    if i is not None and _same_attempt(s["slots"]["inflight"][i], e):
        _set_place(s, i, None)
    if _is_current(s, e):
        c = s["current"]
        stages = {k: dict(v) for k, v in c["stages"].items()}
        for name, (start, end) in e.stages.items():
            stages[name] = {"start": start, "end": end, "elapsed_s": round(end - start, 4)}
        s["current"] = {**c, "verdict": e.verdict, "detail": e.detail, "error": e.error, "ttft_ms": e.ttft_ms,
                        "latency_ms": e.latency_ms, "tps": e.tokens_per_s, "stages": stages,
                        "status_label": e.verdict, "stage": "done" if "done" in stages else c["stage"]}
    if not e.final:
        _set_task_item(s, e, status="pending", attempt=e.attempt)
        return
    _set_task_item(s, e, status=status, verdict=e.verdict, attempt=e.attempt)
    plan = s[PRIVATE]
    model_cells = plan["cells"].get(e.model)
    if model_cells is None or e.dataset not in model_cells:
        return
    # Count a task's final verdict once: a server rebuilt from the store already holds it in plan.results when
    # the runner's buffered task_finished arrives.
    per_model = plan["results"].get(e.model, {})
    if per_model.get(e.dataset, {}).get(e.task_id) is not None:
        return
    cell = dict(model_cells[e.dataset])
    cell["done"] += 1
    cell[status] += 1
    cells = {**plan["cells"], e.model: {**model_cells, e.dataset: cell}}
    s[PRIVATE] = {**plan, "cells": cells, "results": {**plan["results"], e.model: {
        **per_model, e.dataset: {**per_model.get(e.dataset, {}), e.task_id: status}}}}
    s["counters"] = _totals(cells)
    s["datasets"] = _datasets_for(s, e.model)
    if status == "error":
        s["models"] = [{**m, "errors": m.get("errors", 0) + 1} if m["name"] == e.model else m for m in s["models"]]


def _dataset_finished(s: dict[str, Any], e: Any) -> None:
    s["datasets"] = _datasets_for(s, e.model)


def _model_finished(s: dict[str, Any], e: Any) -> None:
    s["models"] = [{**m, "status": "done"} if m["name"] == e.model else m for m in s["models"]]


def _run_finished(s: dict[str, Any], e: Any) -> None:
    if s["run"] is None or s["run"]["id"] != e.run_id:
        return
    s["run"] = {**s["run"], "status": e.status, "detail": e.detail}
    ended = "done" if e.status == "finished" else e.status  # a model still running ends with the run
    s["models"] = [{**m, "status": ended} if m["status"] == "running" else m for m in s["models"]]
    if s["current"] is not None:
        s["current"] = {**s["current"], "last": True}
    # Abandoned attempts (an interrupted run) are no longer in flight.
    s["slots"] = {**s["slots"], "inflight": [None] * len(s["slots"]["inflight"])}


def _telemetry(s: dict[str, Any], e: Any) -> None:
    sample = e.model_dump(mode="json", exclude={"v", "type", "seq", "run_id"})
    s["telemetry"] = (s["telemetry"] + [sample])[-TELEMETRY_WINDOW:]
    if e.gpu_temp_c is not None or "gpu_temp_c" in e.unavailable:
        s["server"] = {**s["server"], "gpu_temp_c": e.gpu_temp_c,
                       "thermal": thermal_class(e.gpu_temp_c, s["thermal"]),
                       "gpu_unavailable": e.unavailable.get("gpu_temp_c")}


_HANDLERS = {
    "run_started": _run_started, "model_started": _model_started, "backend_state": _backend_state,
    "dataset_started": _dataset_started, "task_started": _task_started, "stage": _stage, "token": _token,
    "task_finished": _task_finished, "dataset_finished": _dataset_finished, "model_finished": _model_finished,
    "run_finished": _run_finished, "telemetry": _telemetry,
}


def replay(events: list[Event], state: dict[str, Any] | None = None) -> dict[str, Any]:
    s = state if state is not None else initial_state()
    for ev in events:
        s = apply(s, ev)
    return s

