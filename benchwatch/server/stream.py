"""GET /api/benchmark/telemetry/stream: the SSE stream (snapshot, then patches; see hub.py)."""
from __future__ import annotations

import logging
import os
import socket
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from .. import endpoints

bp = Blueprint("stream", __name__)
log = logging.getLogger(__name__)
RETRY_AFTER_S = 5
# A stream's socket send buffer, fixed (Linux doubles it for bookkeeping: 128 KiB charged). Left alone, the kernel
# grows a stalled client's buffer to megabytes (2.7 MB each was measured) before a write blocks.
SEND_BUFFER_BYTES = 64 * 1024


def bound_send_buffer(sock: Any) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    except (OSError, AttributeError) as exc:  # not a TCP socket (a test client): nothing to bound
        log.debug("SSE stream: send buffer not bounded: %s", exc)


@bp.get(endpoints.STREAM)
def stream() -> Any:
    ctx = current_app.extensions["benchwatch"]
    # The raw socket lets the hub shut a too-slow client's connection even while a write to it is blocked.
    sock = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    sub = ctx.hub.open_stream(sock)
    if sub is not None and sock is not None:
        bound_send_buffer(sock)
    if sub is None:
        resp = jsonify({"error": f"too many live streams (cap {ctx.hub.max_streams}); retry later"})
        resp.status_code = 503
        resp.headers["Retry-After"] = str(RETRY_AFTER_S)
        return resp
    last = request.headers.get("Last-Event-ID") or request.args.get("lastEventId")
    try:
        last_id = int(last) if last is not None and len(last) < 40 else None
    except ValueError:
        last_id = None
    body = ctx.hub.stream(sub, last_id, ctx.heartbeat_s)
    resp = Response(body, mimetype="text/event-stream", direct_passthrough=True)
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["X-Accel-Buffering"] = "no"
    resp.headers["X-Benchwatch-Worker"] = str(os.getpid())  # which worker serves it (several with a Redis bus)
    return resp
