"""POST /api/benchmark/telemetry/events: the runner's event batches, authenticated by a shared token.

A client's mistake is a 4xx naming the event and field, never a 5xx, and leaves the live state and the store
as they were: the body is read and parsed here (a malformed chunked body, nesting deeper than the bound, NaN /
Infinity, text with lone surrogates: 400), the whole batch is validated before any of it is folded, and every
event must belong to a run the server can place (see `_run_problem`: 409 otherwise).
"""
from __future__ import annotations

import hmac
import json
import logging
import math
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from .. import endpoints
from ..events import Event, EventError, parse_events
from ..safe_data import find_problem
from .bus import BusUnavailable

log = logging.getLogger(__name__)
bp = Blueprint("ingest", __name__)
RETRY_AFTER_S = 2
# In valid UTF-8 JSON, a lone surrogate can only be spelled as an escape (\ud800-\udfff), and NaN, Infinity or a
# number too large for a float show up while parsing. A body without any of them needs only its free-form fields
# (detail, config) walked, for depth: the check then costs little on a full batch.
_FREE_FORM = ("detail", "config")


def _error(status: int, message: str) -> Any:
    return jsonify({"error": message}), status


def _authorised(token: str | None) -> bool:
    given = request.headers.get("Authorization", "")
    return bool(token) and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(),
                                                                              token.encode())  # type: ignore[union-attr]


@bp.post(endpoints.INGEST)
def ingest() -> Any:
    ctx = current_app.extensions["benchwatch"]
    if not _authorised(ctx.token):
        why = "missing or wrong token" if ctx.token else f"no ingest token set on the server (${ctx.token_env})"
        return _error(401, f"unauthorised: {why}; send 'Authorization: Bearer <token>'")
    body, problem = _read_body()
    if problem:
        log.warning("ingest rejected a batch: %s", problem)
        return _error(400, problem)
    resync = False
    if isinstance(body, dict):
        resync = body.get("resync") is True
        body = body.get("events")
    try:
        events = parse_events(body)  # all or nothing: a bad event leaves the state untouched
    except EventError as exc:
        log.warning("ingest rejected a batch: %s", exc)
        return _error(400, str(exc))
    conflict = _run_problem(ctx, events)
    if conflict:
        log.warning("ingest refused a batch: %s", conflict)
        return _error(409, conflict)
    try:
        changed = ctx.bus.publish(events, resync)
    except BusUnavailable as exc:
        log.warning("ingest: %s", exc)
        resp = jsonify({"error": str(exc)})
        resp.status_code, resp.headers["Retry-After"] = 503, str(RETRY_AFTER_S)
        return resp
    if changed is None:  # on a shared bus every worker folds it from there
        return jsonify({"accepted": len(events), "queued": True})
    return jsonify({"accepted": len(events), "changed": changed, "version": ctx.hub.version})


def _read_body() -> tuple[Any, str | None]:
    """(parsed JSON, None) or (None, why it is refused). Over the size limit: 413 (raised)."""
    try:
        raw = request.get_data(cache=False)
    except HTTPException as exc:
        if exc.code == 413:
            raise  # over the size limit: 413
        return None, f"body: could not be read ({exc.code} {exc.name}: {exc.description})"
    except Exception as exc:  # a malformed chunked body, a client that hung up mid-body
        return None, f"body: could not be read ({type(exc).__name__}: {exc})"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"body: not UTF-8 (byte offset {exc.start})"
    suspect: list[bool] = []

    def number(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            suspect.append(True)
        return value

    try:
        body = json.loads(text, parse_float=number, parse_constant=lambda c: suspect.append(True) or float(c))
    except RecursionError:
        return None, "body: nested too deeply"
    except ValueError as exc:  # JSONDecodeError, or an integer literal too long to convert
        return None, f"body: not valid JSON ({exc}); expected a list of events or {{\"events\": [...]}}"
    events = body.get("events") if isinstance(body, dict) else body
    if isinstance(body, dict):
        problem = find_problem({k: v for k, v in body.items() if k != "events"})
        if problem is not None:
            return None, f"body: field '{problem.field()}': {problem.reason}"
    if isinstance(events, list):
        walk_all = bool(suspect) or b"\\ud" in raw or b"\\uD" in raw
        for i, item in enumerate(events):
            checked = item if walk_all or not isinstance(item, dict) else {k: item[k] for k in _FREE_FORM if k in item}
            problem = find_problem(checked)
            if problem is not None:
                kind = item.get("type") if isinstance(item, dict) else None
                return None, (f"event[{i}] (type={kind!r}): field '{problem.field()}': {problem.reason}"
                              if isinstance(kind, str) and not find_problem(kind) else
                              f"event[{i}]: field '{problem.field()}': {problem.reason}")
    else:
        problem = find_problem(body)
        if problem is not None:
            return None, f"body: field '{problem.field()}': {problem.reason}"
    return body, None


def _run_problem(ctx: Any, events: list[Event]) -> str | None:
    """Events fold only into the run they belong to. An event is taken when its run is the live one, starts in
    this batch (run_started), or is a run the store holds (the server restarted mid-run, or another worker
    holds it: it is rebuilt from the store, see bus.RebuildingFold). Anything else (a run nobody started)
    is refused with 409, so it can never change the live run's counters. Telemetry samples are the host's,
    whatever run_id they carry: they feed the charts, never a run's state."""
    run = ctx.hub.read(lambda s: s["run"])
    known = {run["id"]} if run else set()
    for i, e in enumerate(events):
        if e.type == "telemetry" or e.run_id in known:  # host samples: not a run's state
            continue
        if e.type == "run_started":
            known.add(e.run_id)
            continue
        if ctx.store is not None and _stored_run(ctx, e.run_id):
            known.add(e.run_id)
            continue
        live = f"the live run is {run['id']!r}" if run else "no run is live"
        return (f"event[{i}] (type={e.type!r}): field 'run_id': run {e.run_id!r} was never started here ({live} "
                "and the store has no such run); send its run_started first")
    return None


def _stored_run(ctx: Any, run_id: str) -> bool:
    try:
        return ctx.store.get_run(run_id) is not None
    except Exception:  # the store unreachable: say no; the runner's retry brings the batch again
        log.exception("ingest: store lookup for run %s failed", run_id)
        return False
