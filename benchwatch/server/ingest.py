"""POST /api/benchmark/telemetry/events: the runner's event batches, authenticated by a shared token."""
from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from .. import endpoints
from ..events import EventError, parse_events
from .bus import BusUnavailable

log = logging.getLogger(__name__)
bp = Blueprint("ingest", __name__)
RETRY_AFTER_S = 2


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
