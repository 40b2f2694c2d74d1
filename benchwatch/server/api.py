"""The small JSON API over the store and the live state."""
from __future__ import annotations

import os
import time
from typing import Any

from flask import Blueprint, current_app, jsonify

from .. import endpoints

bp = Blueprint("api", __name__)


def _ctx() -> Any:
    return current_app.extensions["benchwatch"]


@bp.get(endpoints.STATE)
def state() -> Any:
    s, version = _ctx().hub.snapshot()  # what the page sees: state.LiveState
    return jsonify({"state": s, "seq": version})


@bp.get(endpoints.RUNS_API)
def runs() -> Any:
    store = _ctx().store
    if store is None:
        return jsonify({"error": "no store configured"}), 503
    return jsonify({"runs": store.list_runs()})


@bp.get(endpoints.RUNS_API + "/<run_id>")
def run(run_id: str) -> Any:
    store = _ctx().store
    if store is None:
        return jsonify({"error": "no store configured"}), 503
    row = store.get_run(run_id)
    if row is None:
        return jsonify({"error": f"no run {run_id!r}"}), 404
    return jsonify({"run": row, "results": store.results(run_id)})


@bp.get(endpoints.HEALTH)
def healthz() -> Any:
    ctx = _ctx()
    hub = ctx.hub
    run = hub.state["run"]
    return jsonify({"ok": True, "uptime_s": round(time.monotonic() - ctx.started, 3), "version": hub.version,
                    "streams": hub.stream_count, "max_streams": hub.max_streams,
                    "dropped_clients": hub.dropped_clients, **hub.stream_stats(), "duplicates": hub.duplicates,
                    "run": run and {"id": run["id"], "status": run["status"]},
                    "sampler": ctx.sampler_status(), "bus": ctx.bus.status(), "worker_pid": os.getpid()})
