"""POST /api/benchmark/telemetry/events: the runner's event batches, authenticated by a shared token."""
from __future__ import annotations

import hmac
import logging
import threading
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from ..events import Event, EventError, parse_events
from .rebuild import rebuilt_state

log = logging.getLogger(__name__)
bp = Blueprint("ingest", __name__)
_lock = threading.Lock()  # one batch at a time: a rebuild and the fold that follows it must not interleave


def _error(status: int, message: str) -> Any:
    return jsonify({"error": message}), status


def _authorised(token: str | None) -> bool:
    given = request.headers.get("Authorization", "")
    return bool(token) and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(),
                                                                              token.encode())  # type: ignore[union-attr]


@bp.post("/api/benchmark/telemetry/events")
def ingest() -> Any:
    ctx = current_app.extensions["benchwatch"]
    if not _authorised(ctx.token):
        why = "missing or wrong token" if ctx.token else f"no ingest token set on the server (${ctx.token_env})"
        return _error(401, f"unauthorised: {why}; send 'Authorization: Bearer <token>'")
    body = request.get_json(silent=True)  # raises 413 first when the body is over the limit
    if body is None:
        return _error(400, "body: not valid JSON (expected a list of events or {\"events\": [...]})")
    resync = False
    if isinstance(body, dict):
        resync = bool(body.get("resync"))
        body = body.get("events")
    try:
        events = parse_events(body)  # all or nothing: a bad event leaves the state untouched
    except EventError as exc:
        log.warning("ingest rejected a batch: %s", exc)
        return _error(400, str(exc))
    with _lock:
        changed = fold_with_rebuild(ctx, events, resync)
    return jsonify({"accepted": len(events), "changed": changed, "version": ctx.hub.version})


def fold_with_rebuild(ctx: Any, events: list[Event], resync: bool = False) -> int:
    """Fold events; an event of a run this server doesn't hold (it restarted mid-run) first rebuilds that run's
    state from the store, so the runner's next events land on a correct picture."""
    changed, pending = 0, []
    for i, e in enumerate(events):
        run = ctx.hub.state["run"]
        unknown = e.type not in ("run_started", "telemetry") and (run is None or run["id"] != e.run_id)
        if e.run_id in ctx.unknown_runs:
            unknown = False
        if (unknown or (resync and i == 0 and e.type != "run_started")) and ctx.store is not None:
            changed += ctx.hub.fold(pending)
            pending = []
            new = rebuilt_state(ctx.store, e.run_id, ctx.hub.state)
            if new is not None:
                log.info("rebuilt the state of run %s from the store", e.run_id)
                ctx.hub.reset(new)
            else:
                ctx.unknown_runs.add(e.run_id)
                log.warning("events for run %s, which the store does not know: folded as they come", e.run_id)
        pending.append(e)
    return changed + ctx.hub.fold(pending)
