"""`benchwatch serve`: the app under gunicorn with one gevent worker (several with a Redis event bus).

Why this server (measured, see docs/server.md and bench/bench_sse_fanout.py): an SSE stream is a
long-lived response. A thread-per-connection server (Werkzeug, gunicorn gthread) needs a thread per open tab;
gevent holds each stream as a greenlet, so hundreds of streams cost little memory and CPU on 2 cores. One worker
by default, because the live run state is in the process: several workers each need every event, which the
Redis bus gives them (bus.py; `--workers N --bus redis://...`).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from gunicorn.app.base import BaseApplication

from .gc_tuning import freeze_long_lived

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5


def log_config(log_file: Path, level: str = "INFO") -> dict[str, Any]:
    """gunicorn's and benchwatch's logs, rotated, in one file (log/server.out.log by default)."""
    handler = {"class": "logging.handlers.RotatingFileHandler", "filename": str(log_file),
               "maxBytes": LOG_MAX_BYTES, "backupCount": LOG_BACKUPS, "formatter": "plain", "encoding": "utf-8"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}},
        "handlers": {"file": handler},
        "loggers": {"gunicorn.error": {"level": level, "handlers": ["file"], "propagate": False},
                    "gunicorn.access": {"level": level, "handlers": ["file"], "propagate": False},
                    "benchwatch": {"level": level, "handlers": ["file"], "propagate": False}},
        "root": {"level": "WARNING", "handlers": ["file"]},
    }


class _Server(BaseApplication):
    def __init__(self, app_factory: Callable[[], Any], options: dict[str, Any]):
        self.app_factory, self.options = app_factory, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        app = self.app_factory()  # in the worker, after gevent has patched the standard library
        freeze_long_lived()  # no full GC pass over the imports while streams are served (gc_tuning.py)
        return app


def serve(app_factory: Callable[[], Any], host: str, port: int, max_streams: int, log_file: Path,
          worker: str = "gevent", announce: Callable[[str], None] | None = None, workers: int = 1) -> None:
    """Run until stopped (Ctrl-C / SIGTERM). `announce(url)` is called once listening (the real port, also
    when `port` is 0)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)

    def when_ready(arbiter: Any) -> None:
        h, p = arbiter.LISTENERS[0].sock.getsockname()[:2]
        url = f"http://{h}:{p}"
        (announce or (lambda u: print(f"benchwatch serve: listening on {u}", flush=True)))(url)

    options: dict[str, Any] = {
        "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
        "workers": workers,
        "worker_class": worker,
        "worker_connections": max_streams + 100,  # streams plus room for ingest and API requests
        "threads": max_streams + 100 if worker == "gthread" else 1,
        "timeout": 30,
        "graceful_timeout": 3,
        "keepalive": 5,
        "logconfig_dict": log_config(log_file),
        "when_ready": when_ready,
        "proc_name": "benchwatch-serve",
        "control_socket_disable": True,  # several servers (tests, benchmarks) must not fight over one socket
    }
    _Server(app_factory, options).run()


if __name__ == "__main__":  # pragma: no cover - `benchwatch serve` is the entry point
    sys.exit("use: benchwatch serve")
