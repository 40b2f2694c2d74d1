"""`benchwatch demo`: a live server plus the bundled run on the embedded model, published to it.

The server is `benchwatch serve` in a child process (the same gunicorn + gevent server a user runs) on a
loopback port with a token generated for this demo; the run happens in this process with the HTTP sink.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from . import endpoints
from .config import Config, load_config
from .processes import stop_process

DEMO_CONFIG = Path(str(resources.files("benchwatch") / "demo_config.yaml"))
MONITOR_PATH = endpoints.MONITOR


def demo_config(store: str | None = None) -> Config:
    cfg = load_config(DEMO_CONFIG)
    for ds in cfg.datasets:  # the demo's own task files ship beside its config
        if ds.source.endswith(".jsonl") and not Path(ds.source).is_absolute():
            ds.source = str(DEMO_CONFIG.parent / ds.source)
    cfg._path = None  # the store's relative path is taken from the current directory, not the package
    if store:
        cfg.store = store
    if cfg.store.startswith("sqlite:///") and not cfg.store.startswith("sqlite:////"):
        cfg.store = "sqlite:///" + str((Path.cwd() / cfg.store[len("sqlite:///"):]).resolve())
    return cfg


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class ServerProcess:
    """`benchwatch serve` as a child process; `url` once it listens."""

    def __init__(self, cfg: Config, host: str, port: int, token: str, log_dir: str):
        env = dict(os.environ)
        env[cfg.server.token_env] = token
        cmd = [sys.executable, "-m", "benchwatch.cli", "serve", "--config", str(DEMO_CONFIG), "--store", cfg.store,
               "--host", host, "--port", str(port), "--log-dir", log_dir]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.url = ""
        out = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            out.append(line)
            if "listening on " in line:
                self.url = line.split("listening on ", 1)[1].strip()
                break
        if not self.url:
            self.stop()
            raise RuntimeError("the live server did not start:\n" + "".join(out[-20:]) +
                               f"\n(see {log_dir}/server.out.log)")

    def wait(self) -> None:
        self.proc.wait()

    def stop(self) -> None:
        stop_process(self.proc)


def _interrupt_on(*signals: signal.Signals) -> None:
    """Turn these signals into KeyboardInterrupt, so the run is marked interrupted and `finally` stops the server."""
    def handler(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt
    for sig in signals:
        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (tests calling run_demo directly)
            pass


def run_demo(host: str, port: int | None, store: str | None, exit_when_done: bool, delay_s: float,
             log_dir: str, say: Callable[[str], None], sinks: list[Any]) -> int:
    from .runner import Runner
    from .runner.http_sink import HttpSink
    from .store import Store

    cfg = demo_config(store)
    want = cfg.server.port if port is None else port
    if want and not port_free(host, want):
        say(f"port {want} is busy: using a free one")
        want = 0
    token = secrets.token_urlsafe(24)
    _interrupt_on(signal.SIGTERM, signal.SIGHUP)  # a closed terminal must not leave the server child behind
    server = ServerProcess(cfg, host, want, token, log_dir)
    try:
        say(f"live monitor: {server.url}{MONITOR_PATH}")
        if delay_s > 0:
            time.sleep(delay_s)  # time to open the page and see it go from waiting to live
        sink = HttpSink(server.url, token)
        runner = Runner(cfg, Store(cfg.store), [*sinks, sink])
        outcome = runner.run()
        from rich.console import Console

        from .results import summary_table
        Console().print(summary_table(Store(cfg.store).results(outcome.run_id),
                                      title=f"run {outcome.run_id}: {outcome.status}"))
        say(f"report: {server.url}/reports/{outcome.run_id}   all runs: {server.url}/runs")
        if outcome.status == "interrupted":
            return 130
        if exit_when_done:
            return 0 if outcome.status == "finished" else 1
        say(f"the monitor keeps serving at {server.url}{MONITOR_PATH} - Ctrl-C to stop")
        server.wait()
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        server.stop()
