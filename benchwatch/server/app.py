"""The Flask app factory: `create_app(config)`.

Route groups are blueprints, all registered in `_register_blueprints` (add new ones there). The live state lives
in this process (the Hub); events reach it through the bus (bus.py): folded at once by default, or through Redis
when several workers share one live view (`server.bus`).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from .. import state as reducer
from ..config import Config, default_config
from ..store import Store
from .bus import make_bus
from .hub import Hub

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 8 * 1024 * 1024  # one ingest batch; over it: 413


@dataclass
class ServerContext:
    """What the routes share; reachable as app.extensions["benchwatch"]."""
    hub: Hub
    store: Store | None
    token: str | None
    token_env: str
    heartbeat_s: float
    telemetry: Any = None  # the TelemetryLoop, when sampling
    bus: Any = None  # LocalBus or RedisBus (bus.py): where accepted events go to be folded
    started: float = field(default_factory=time.monotonic)

    def sampler_status(self) -> Any:
        return self.telemetry.status() if self.telemetry is not None else None


def create_app(config: Config | None = None, *, store: Store | None | bool = True, token: str | None = None,
               heartbeat_s: float | None = None, ring_size: int = 4096, max_body_bytes: int = MAX_BODY_BYTES,
               sampler: Any = None, sample_interval_s: float = 1.0, start_sampler: bool = True,
               write_timeout_s: float = 10.0) -> Flask:
    """Build the app. `store=True` opens the config's store, a Store uses that one, None/False runs without.
    `token` defaults to the environment variable named by server.token_env. `sampler` replaces the host
    sampler (tests inject one); `start_sampler=False` runs no telemetry loop at all."""
    cfg = config or default_config("<server defaults>")
    sc = cfg.server
    if store is True:
        store = Store(cfg.store, cfg.base_dir)
    hub = Hub(reducer.initial_state({"warm_c": sc.thermal_warm_c, "hot_c": sc.thermal_hot_c}),
              ring_size=ring_size, max_streams=sc.max_streams, write_timeout_s=write_timeout_s)
    ctx = ServerContext(hub=hub, store=store or None,
                        token=token if token is not None else os.environ.get(sc.token_env) or None,
                        token_env=sc.token_env, heartbeat_s=heartbeat_s if heartbeat_s is not None else sc.heartbeat_s)
    ctx.bus = make_bus(hub, ctx.store, sc.bus)
    ctx.bus.start()  # rebuilds a run the store says is running, so it is on the page at once
    hub.start_heartbeat(ctx.heartbeat_s)
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.extensions["benchwatch"] = ctx
    _register_blueprints(app)

    @app.errorhandler(HTTPException)
    def _json_error(exc: HTTPException) -> Any:  # JSON errors for the API, plain pages stay plain
        return jsonify({"error": f"{exc.code} {exc.name}: {exc.description}"}), exc.code

    if start_sampler:
        from .telemetry_loop import TelemetryLoop
        ctx.telemetry = TelemetryLoop(hub, ctx.store, ctx.bus, sampler=sampler, interval_s=sample_interval_s)
        ctx.telemetry.start()
    return app


def _register_blueprints(app: Flask) -> None:
    """Every route group, in one place."""
    from . import api, ingest, metrics, static, stream
    from ..report import routes as reports
    for module in (static, ingest, stream, api, reports, metrics):
        app.register_blueprint(module.bp)
