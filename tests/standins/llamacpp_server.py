"""Not a stand-in: starts llama-cpp-python's own OpenAI-compatible server (`python -m llama_cpp.server`, a real
third-party server) on a free loopback port, serving a GGUF (the embedded SmolLM2 by default)."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchwatch.processes import stop_process
from tests.services import free_port


class LlamaCppServer:
    def __init__(self, gguf: Path, log_path: Path, n_threads: int = 1, n_ctx: int = 2048, seed: int = 42):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = log_path
        self.cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
                    "--port", str(self.port), "--n_threads", str(n_threads), "--n_ctx", str(n_ctx),
                    "--seed", str(seed)]  # verbose (the default): llama.cpp prints its own timers per request
        self.proc: subprocess.Popen | None = None

    def start(self, ready_s: float = 90.0) -> "LlamaCppServer":
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + ready_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server not ready after {ready_s:g} s: {self.log_path.read_text()[-2000:]}")

    def warm_up(self) -> None:
        """One short completion: the server's first request pays one-off set-up costs."""
        httpx.post(f"{self.url}/chat/completions", timeout=120.0, json={
            "model": "warm-up", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})

    def pause(self) -> None:
        """SIGSTOP: the process stays, its socket accepts, nothing answers (a real stall)."""
        assert self.proc
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a paused server can't act on SIGTERM
            stop_process(self.proc)
        self._log.close()
