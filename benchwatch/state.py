"""The one reducer: `apply(state, event) -> state`, pure, over the event contract.

The server's snapshot, the page, the terminal display and every replay (reconnect, restart, resume) use this
and nothing else. The state is plain JSON-ready data. `apply` never mutates its input: it copies the branches
an event touches and shares the rest, so a 10,000-task run stays cheap per event.
"""
from __future__ import annotations

from typing import Any

from .events import Event

TELEMETRY_WINDOW = 60
RESPONSE_LIMIT = 200_000  # characters kept of the streaming text; the store keeps the whole answer
THERMAL_DEFAULTS = {"warm_c": 70.0, "hot_c": 85.0}


def initial_state(thermal: dict[str, float] | None = None) -> dict[str, Any]:
    return {
        "v": 1,
        "run": None,
        "models": [],
        "datasets": [],
        "tasks": {"model": None, "dataset": None, "items": []},
        "matrix": {},
        "counters": _counters(0, 0, 0, 0),
        "server": {"active_model": None, "connection": "unknown", "connection_detail": "",
                   "gpu_temp_c": None, "thermal": None},
        "thermal": dict(thermal or THERMAL_DEFAULTS),
        "current": None,
        "telemetry": [],
        "last_seq": {},
        # Bumped by every finished attempt with its streaming speed: lets a 1 Hz sampler see an answer that
        # streamed and finished between two samples.
        "last_speed": {"n": 0, "tps": None},
        "slots": _slots(1),
    }


# ---- concurrency (docs/concurrency.md): everything it adds to the state is under "slots" and in the helpers
# below. `slots.inflight` is a list of N places, each the record (same shape as `current`) of an attempt in
# flight or None: a fixed-length list, so an attempt starting or ending is one small patch (a dict losing a key
# would be re-sent whole). `current` is the followed attempt (the most recently started, kept until it
# finishes). `slots.tokens_out` counts output tokens of every stream, so the sampler can chart aggregate tokens/s.
def _slots(n: int) -> dict[str, Any]:
    return {"n": n, "inflight": [None] * n, "tokens_out": 0}


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


def _counters(total: int, passed: int, failed: int, errored: int) -> dict[str, Any]:
    done = passed + failed + errored
    pct = (lambda n: round(100.0 * n / done, 1)) if done else (lambda n: None)
    return {"total": total, "done": done, "pass": passed, "fail": failed, "error": errored,
            "remaining": max(total - done, 0), "ok_pct": pct(passed), "ko_pct": pct(failed),
            "other_pct": pct(errored)}


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
    if event.type != "telemetry":
        s["last_seq"] = {**state["last_seq"], event.run_id: event.seq}
    handler(s, event)
    return s


def _run_started(s: dict[str, Any], e: Any) -> None:
    task_count = {d.name: len(d.task_ids) for d in e.datasets}
    matrix = {m.name: {d.name: {"total": task_count[d.name], "done": 0, "pass": 0, "fail": 0, "error": 0}
                       for d in e.datasets} for m in e.models}
    results: dict[str, dict[str, dict[str, str]]] = {}
    for t in e.done:
        cell = matrix.get(t.model, {}).get(t.dataset)
        if cell is None:
            continue
        cell["done"] += 1
        cell[_status_of(t.verdict)] += 1
        results.setdefault(t.model, {}).setdefault(t.dataset, {})[t.task_id] = _status_of(t.verdict)
    s["run"] = {"id": e.run_id, "status": "running", "started_at": e.ts, "finished_at": None,
                "resumed": e.resumed, "cooling_s": e.cooling_s, "config": e.config, "detail": ""}
    s["models"] = [{"name": m.name, "backend": m.backend, "ordinal": i + 1, "of": len(e.models),
                    "status": "pending", "connection": "unknown"} for i, m in enumerate(e.models)]
    s["plan"] = {"task_ids": {d.name: list(d.task_ids) for d in e.datasets}, "results": results}
    s["datasets"] = [{"name": d.name, "evaluator": d.evaluator, "total": len(d.task_ids), "done": 0,
                      "pass": 0, "fail": 0, "error": 0, "status": "pending"} for d in e.datasets]
    s["matrix"] = matrix
    s["tasks"] = {"model": None, "dataset": None, "items": []}
    s["counters"] = _totals(matrix)
    s["current"] = None
    s["server"] = {**s["server"], "active_model": None, "connection": "unknown", "connection_detail": ""}
    s["slots"] = _slots(1)


def _totals(matrix: dict[str, Any]) -> dict[str, Any]:
    cells = [c for per_model in matrix.values() for c in per_model.values()]
    return _counters(sum(c["total"] for c in cells), sum(c["pass"] for c in cells),
                     sum(c["fail"] for c in cells), sum(c["error"] for c in cells))


def _datasets_for(s: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """The Datasets Overview row for one model: done when all that model's tasks in it are done."""
    out = []
    for d in s["datasets"]:
        cell = s["matrix"].get(model, {}).get(d["name"], {"total": d["total"], "done": 0, "pass": 0,
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
    s["slots"] = {**_slots(getattr(e, "concurrency", 1)), "tokens_out": s["slots"]["tokens_out"]}


def _backend_state(s: dict[str, Any], e: Any) -> None:
    s["models"] = [{**m, "connection": e.state} if m["name"] == e.model else m for m in s["models"]]
    if s["server"]["active_model"] in (None, e.model):
        s["server"] = {**s["server"], "connection": e.state, "connection_detail": e.detail}


def _dataset_started(s: dict[str, Any], e: Any) -> None:
    done = s.get("plan", {}).get("results", {}).get(e.model, {}).get(e.dataset, {})
    s["tasks"] = {"model": e.model, "dataset": e.dataset,
                  "items": [{"id": t, "status": done.get(t, "pending"), "attempt": 0} for t in e.task_ids]}
    s["datasets"] = _datasets_for(s, e.model)


def _set_task_item(s: dict[str, Any], e: Any, **changes: Any) -> None:
    tasks = s["tasks"]
    if tasks["model"] != e.model or tasks["dataset"] != e.dataset:
        return
    items = list(tasks["items"])
    for i, item in enumerate(items):
        if item["id"] == e.task_id:
            items[i] = {**item, **changes}
            break
    s["tasks"] = {**tasks, "items": items}


def _ordinal(names: list[str], name: str) -> list[int | None]:
    """[1-based position of name in names (None if absent), len(names)]: the page's "2/5"."""
    return [names.index(name) + 1 if name in names else None, len(names)]


def _position(s: dict[str, Any], e: Any) -> dict[str, list[int | None]]:
    """Where the task sits in the model x dataset x task matrix (Progress Snapshot card)."""
    task_ids = s.get("plan", {}).get("task_ids", {}).get(e.dataset) or [i["id"] for i in s["tasks"]["items"]]
    return {"model": _ordinal([m["name"] for m in s["models"]], e.model),
            "dataset": _ordinal([d["name"] for d in s["datasets"]], e.dataset),
            "task": _ordinal(task_ids, e.task_id)}


def _task_started(s: dict[str, Any], e: Any) -> None:
    rec = {"model": e.model, "dataset": e.dataset, "task_id": e.task_id, "attempt": e.attempt,
                    "position": _position(s, e),
                    "stage": None, "stages": {}, "status_label": "RUNNING", "last": False,
                    "prompt": e.prompt, "thinking": "", "response": "", "tokens": 0, "tps": None,
                    "ttft_ms": None, "first_token_ms": None, "latency_ms": None, "verdict": None,
                    "detail": None, "error": None, "started_at": e.ts}
    inflight = s["slots"]["inflight"]
    c = s["current"]
    # Follow the newly started attempt unless the followed one is still in flight (one task at a time: always).
    if c is None or c.get("last") or c["verdict"] is not None or _place(
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
    if e.n_tokens:
        s["slots"] = {**s["slots"], "tokens_out": s["slots"]["tokens_out"] + e.n_tokens}
    _update_inflight(s, e, lambda c: _tokened(c, e))
    if _is_current(s, e):
        s["current"] = _tokened(s["current"], e)


def _tokened(c: dict[str, Any], e: Any) -> dict[str, Any]:
    key = "thinking" if e.kind == "thinking" else "response"
    text = (c[key] + e.text)[-RESPONSE_LIMIT:]
    return {**c, key: text, "tokens": c["tokens"] + (e.n_tokens if e.kind == "visible" else 0),
            "tps": e.tps if e.tps is not None else c["tps"]}


def _task_finished(s: dict[str, Any], e: Any) -> None:
    s["last_speed"] = {"n": s["last_speed"]["n"] + 1, "tps": e.tokens_per_s}
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
                        "first_token_ms": e.first_token_ms, "latency_ms": e.latency_ms,
                        "tps": e.tokens_per_s, "stages": stages, "status_label": e.verdict,
                        "final": e.final, "stage": "done" if "done" in stages else c["stage"]}
    if not e.final:
        _set_task_item(s, e, status="pending", attempt=e.attempt)
        return
    _set_task_item(s, e, status=status, verdict=e.verdict, attempt=e.attempt)
    model_cells = s["matrix"].get(e.model)
    if model_cells is None or e.dataset not in model_cells:
        return
    # Count a task's final verdict once: a server rebuilt from the store already holds it in plan.results when
    # the runner's buffered task_finished arrives.
    results = s.get("plan", {}).get("results", {})
    per_model = results.get(e.model, {})
    if per_model.get(e.dataset, {}).get(e.task_id) is not None:
        return
    if "plan" in s:
        s["plan"] = {**s["plan"], "results": {**results, e.model: {
            **per_model, e.dataset: {**per_model.get(e.dataset, {}), e.task_id: status}}}}
    cell = dict(model_cells[e.dataset])
    cell["done"] += 1
    cell[status] += 1
    s["matrix"] = {**s["matrix"], e.model: {**model_cells, e.dataset: cell}}
    s["counters"] = _totals(s["matrix"])
    s["datasets"] = _datasets_for(s, e.model)


def _dataset_finished(s: dict[str, Any], e: Any) -> None:
    s["datasets"] = _datasets_for(s, e.model)


def _model_finished(s: dict[str, Any], e: Any) -> None:
    s["models"] = [{**m, "status": "done"} if m["name"] == e.model else m for m in s["models"]]


def _run_finished(s: dict[str, Any], e: Any) -> None:
    if s["run"] is None or s["run"]["id"] != e.run_id:
        return
    s["run"] = {**s["run"], "status": e.status, "finished_at": e.ts, "detail": e.detail}
    if e.status != "finished":
        s["models"] = [{**m, "status": e.status} if m["status"] == "running" else m for m in s["models"]]
    if s["current"] is not None:
        s["current"] = {**s["current"], "last": True}
    # Abandoned attempts (an interrupted run) are no longer in flight.
    s["slots"] = {**s["slots"], "inflight": [None] * len(s["slots"]["inflight"])}


def _telemetry(s: dict[str, Any], e: Any) -> None:
    sample = e.model_dump(mode="json", exclude={"v", "type", "seq"})
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

