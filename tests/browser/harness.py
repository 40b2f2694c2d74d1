"""What the browser tests and bench/bench_page.py share: a real benchwatch server in a child process on a
loopback port (gunicorn + gevent, as `benchwatch serve` runs it), its ingest endpoint, and headless Chromium
(Debian's /usr/bin/chromium, never a downloaded browser)."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

import httpx

from benchwatch import events as ev
from benchwatch.processes import stop_process
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DEFAULT_CONFIG = ("models:\n  - {name: m, backend: scripted}\n"
                  "datasets:\n  - {name: d, source: 'builtin:facts'}\n")


class Server:
    """A real server process; `restart()` keeps the port and the database file."""

    def __init__(self, workdir: Path, port: int | None = None, config_text: str = DEFAULT_CONFIG):
        self.workdir = workdir
        self.port = port or free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "config.yaml"
        self.config.write_text(config_text + f"store: sqlite:///{workdir / 'bench.db'}\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.seq = 0

    def start(self, timeout_s: float = 30.0) -> "Server":
        env = dict(os.environ, PYTHONPATH=str(ROOT), BENCHWATCH_TOKEN=self.token)
        # `benchwatch serve`, exactly as a user starts it (gunicorn + gevent), on a loopback port.
        cmd = [str(Path(sys.executable).parent / "benchwatch"), "serve", "--config", str(self.config),
               "--port", str(self.port), "--log-dir", str(self.workdir / "log"), "--heartbeat", "2"]
        out = self.workdir / "serve.out"
        with out.open("a") as sink:  # a file, not a pipe nobody reads
            self.proc = subprocess.Popen(cmd, env=env, cwd=self.workdir, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {out.read_text()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError("server did not start in time")

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def post(self, events: Iterable[Any]) -> dict[str, Any]:
        body = [ev.to_json(e) if not isinstance(e, dict) else e for e in events]
        r = httpx.post(self.url + "/api/benchmark/telemetry/events", json=body,
                       headers={"Authorization": f"Bearer {self.token}"}, timeout=30)
        r.raise_for_status()
        return r.json()

    def state(self) -> dict[str, Any]:
        return httpx.get(self.url + "/api/benchmark/state", timeout=10).json()


def launch_browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def open_monitor(browser: Any, url: str, **context_args: Any) -> Any:
    """A fresh page (its own localStorage) on the monitor, after its first full render. Page errors are
    collected in page.errors."""
    context_args.setdefault("viewport", {"width": 1400, "height": 1000})
    ctx = browser.new_context(**context_args)
    page = ctx.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url + "/docs/benchmark_monitor.html")
    page.wait_for_selector("body[data-rendered='1']", timeout=15000)
    return page


def no_sideways_scroll(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


class Script:
    """Builds contract events for one run with a monotonic seq (the scripted event sequence of the tests)."""

    def __init__(self, run_id: str = "run-browser"):
        self.run_id = run_id
        self.seq = 0

    def __call__(self, cls: type, **fields: Any) -> Any:
        self.seq += 1
        return cls(run_id=self.run_id, seq=self.seq, **fields)

    def task(self, cls: type, model: str, dataset: str, task_id: str, attempt: int = 1, **fields: Any) -> Any:
        return self(cls, model=model, dataset=dataset, task_id=task_id, attempt=attempt, **fields)
