"""Start a real `benchwatch serve` (gunicorn + gevent) on a free loopback port, and talk to it."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.sse_client import LiveState, Message, messages
from tests.conftest import PYTHON, ROOT, cli_env

TOKEN = "test-token-123"


class LiveServer:
    def __init__(self, tmp: Path, *args: str, port: int = 0, config: Path | None = None, store: str | None = None):
        self.tmp = tmp
        cmd = [PYTHON, "-m", "benchwatch.cli", "serve", "--port", str(port), "--log-dir", str(tmp / "log"), *args]
        if config:
            cmd += ["--config", str(config)]
        if store:
            cmd += ["--store", store]
        env = cli_env() | {"BENCHWATCH_TOKEN": TOKEN}
        self.proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.url = ""
        deadline = time.time() + 60
        lines = []
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "listening on " in line:
                self.url = line.split("listening on ")[1].strip()
                break
        if not self.url:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(lines))
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # keep the pipe drained
        self.port = int(self.url.rsplit(":", 1)[1])
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def worker(self) -> psutil.Process:
        return psutil.Process(self.proc.pid).children()[0]

    def post(self, events: Any, token: str | None = TOKEN, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.post("/api/benchmark/telemetry/events", json=events, headers=headers, **kw)

    def state(self) -> dict[str, Any]:
        return self.client.get("/api/benchmark/state").json()

    def health(self) -> dict[str, Any]:
        return self.client.get("/healthz").json()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            if sig == signal.SIGKILL:  # the master and its worker: a crash, not a shutdown
                for child in psutil.Process(self.proc.pid).children():
                    os.kill(child.pid, signal.SIGKILL)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if hasattr(self, "client"):
            self.client.close()


class StreamReader:
    """A real SSE client on its own thread; messages land in a queue, the followed state in `live`."""

    def __init__(self, url: str, last_event_id: int | None = None, read_timeout: float = 30,
                 state: dict[str, Any] | None = None):
        self.q: queue.Queue[Message | Exception | None] = queue.Queue()
        self.live = LiveState()
        self.live.state = state  # what a resuming client already holds
        self.headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=read_timeout))
        self._url = url
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self._ready.wait(15)

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._url + "/api/benchmark/telemetry/stream",
                                     headers=self.headers) as r:
                self.status, self.response_headers = r.status_code, dict(r.headers)
                self._ready.set()
                if r.status_code != 200:
                    r.read()
                    return
                for msg in messages(r):
                    self.live.feed(msg)
                    self.q.put(msg)
                    if self._stop.is_set():
                        return
        except Exception as exc:  # noqa: BLE001 - surfaced to the test through the queue
            self.q.put(exc)
        finally:
            self._ready.set()
            self.q.put(None)

    def next(self, timeout: float = 10, kinds: tuple[str, ...] = ("snapshot", "patch")) -> Message:
        deadline = time.time() + timeout
        while True:
            item = self.q.get(timeout=max(deadline - time.time(), 0.01))
            if item is None or isinstance(item, Exception):
                raise AssertionError(f"stream ended: {item!r}")
            if item.kind in kinds:
                return item

    def until(self, pred, timeout: float = 20) -> None:
        deadline = time.time() + timeout
        while not (self.live.state is not None and pred(self.live.state)):
            self.next(timeout=max(deadline - time.time(), 0.01), kinds=("snapshot", "patch", "comment"))

    def close(self) -> None:
        self._stop.set()
        self._client.close()


def run_events(run_id: str, n_tasks: int = 3, seq0: int = 1) -> list[dict[str, Any]]:
    """A tiny complete run as wire events (scripted: every task passes)."""
    ids = [f"t{i}" for i in range(n_tasks)]
    out: list[dict[str, Any]] = [
        {"type": "run_started", "run_id": run_id, "models": [{"name": "m", "backend": "scripted"}],
         "datasets": [{"name": "d", "evaluator": "exact_match", "task_ids": ids}]},
        {"type": "model_started", "run_id": run_id, "model": "m", "backend": "scripted", "ordinal": 1, "total": 1},
        {"type": "dataset_started", "run_id": run_id, "model": "m", "dataset": "d", "task_ids": ids},
    ]
    for t in ids:
        ref = {"run_id": run_id, "model": "m", "dataset": "d", "task_id": t, "attempt": 1}
        out += [{"type": "task_started", **ref, "prompt": f"prompt {t}"},
                {"type": "stage", **ref, "stage": "streaming", "at_s": 0.1},
                {"type": "token", **ref, "kind": "visible", "text": f"answer {t}", "n_tokens": 2},
                {"type": "task_finished", **ref, "verdict": "PASS", "final": True}]
    out.append({"type": "run_finished", "run_id": run_id, "status": "finished"})
    for i, e in enumerate(out):
        e["seq"] = seq0 + i
    return out


__all__ = ["LiveServer", "StreamReader", "run_events", "TOKEN", "ROOT"]
