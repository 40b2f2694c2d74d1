"""The stream worker process (benchwatch/stream_worker.py) that sends every remote stream and stamps its pieces:
it must not outlive the runner, however the runner ends, and its own death must cost the requests in flight a
readable error, never a hang, with the next request served by a new worker. Against the OpenAI-compatible
STAND-IN server (tests/standins/openai_sse.py, real HTTP on loopback)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from benchwatch.backends import BackendError, GenParams, Text
from benchwatch.backends import http as transport
from benchwatch.backends.openai_compat import OpenAIBackend
from benchwatch.config import ModelConfig
from tests.standins.base import Behaviour
from tests.standins.openai_sse import StandinOpenAI

ROOT = Path(__file__).resolve().parents[2]
PROMPT = [{"role": "user", "content": "What is 2 plus 3?"}]


@pytest.fixture
def server():
    s = StandinOpenAI().start()
    yield s
    s.stop()


def backend(server) -> OpenAIBackend:
    return OpenAIBackend(ModelConfig(name="m", backend="openai", base_url=f"{server.url}/v1"))


def worker_pid() -> int:
    transport.start_stream_worker()
    return transport._WORKER._proc.pid  # type: ignore[union-attr]


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_worker_killed_mid_answer_fails_that_request_and_the_next_gets_a_new_one(server):
    server.behaviours["m"] = Behaviour(first_delay_s=0.1, delay_s=0.2)
    b = backend(server)
    pid = worker_pid()
    items = b.stream(PROMPT, GenParams(64, 0.0, 0, total_timeout_s=30))
    assert isinstance(next(i for i in items if isinstance(i, Text)), Text)  # streaming
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(BackendError, match=r"stream worker process ended \(exit code -9\)"):
        list(items)
    assert time.monotonic() - t0 < 2.0  # the slot hears of it at once, not at its deadline
    server.behaviours["m"] = Behaviour()
    answer = [i for i in b.stream(PROMPT, GenParams(64, 0.0, 0)) if isinstance(i, Text)]
    assert answer and worker_pid() != pid
    b.close()


def test_the_worker_ignores_ctrl_c_and_keeps_streaming(server):
    """Ctrl-C reaches the whole process group; the runner decides what stops (abort_all), not the worker."""
    server.behaviours["m"] = Behaviour(delay_s=0.05)
    b = backend(server)
    pid = worker_pid()
    items = b.stream(PROMPT, GenParams(64, 0.0, 0))
    next(items)
    os.kill(pid, signal.SIGINT)
    assert [i for i in items if isinstance(i, Text)]
    assert psutil.Process(pid).is_running() and worker_pid() == pid
    b.close()


def test_closing_the_link_ends_the_worker_at_once(server):
    """At exit the runner shuts its socket down: the worker sees the end at once (a bare close would not reach it
    while the reading thread sits in recv)."""
    link = transport._WorkerLink()
    link.ensure()
    pid = link._proc.pid  # type: ignore[union-attr]
    t0 = time.monotonic()
    link.close()
    assert gone_within(pid, 1.0) and time.monotonic() - t0 < 1.5


RUNNER = textwrap.dedent("""
    import sys, time
    from benchwatch.backends import GenParams
    from benchwatch.backends import http as transport
    from benchwatch.backends.openai_compat import OpenAIBackend
    from benchwatch.config import ModelConfig
    b = OpenAIBackend(ModelConfig(name="m", backend="openai", base_url=sys.argv[1]))
    items = b.stream([{"role": "user", "content": "What is 1 plus 1?"}], GenParams(64, 0.0, 0, total_timeout_s=60))
    next(items)
    print(transport._WORKER._proc.pid, flush=True)
    time.sleep(60)
""")


def test_the_worker_ends_with_a_runner_killed_mid_stream(server):
    server.behaviours["m"] = Behaviour(delay_s=0.5)
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, f"{server.url}/v1"], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        pid = int(runner.stdout.readline())  # type: ignore[union-attr]
        assert psutil.Process(pid).is_running()
        runner.kill()  # kill -9: no atexit, no clean-up of any kind
        runner.wait(10)
        assert gone_within(pid, 3.0), "the stream worker outlived its runner"
    finally:
        if runner.poll() is None:
            runner.kill()


def test_many_threads_streaming_at_once_each_get_their_own_answer(server):
    """Requests from many slots share one worker and one socket: each answer reaches the slot that asked."""
    server.behaviours["m"] = Behaviour(delay_s=0.01)
    results: dict[int, str] = {}

    def one(i: int) -> None:
        b = backend(server)
        text = "".join(x.text for x in b.stream([{"role": "user", "content": f"What is {i} plus 1?"}],
                                                 GenParams(64, 0.0, 0)) if isinstance(x, Text))
        results[i] = text
        b.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == list(range(24))
    assert all(str(i + 1) in results[i] for i in range(24)), results


def test_a_forked_child_streams_through_a_worker_of_its_own(server):
    """After fork the parent's worker stays the parent's: the child starts its own and both keep answering."""
    server.behaviours["m"] = Behaviour()
    parent_worker = worker_pid()
    child = os.fork()
    if child == 0:  # the child: report through the exit code only
        try:
            b = backend(server)
            ok = [i for i in b.stream(PROMPT, GenParams(64, 0.0, 0)) if isinstance(i, Text)]
            mine = transport._WORKER._proc.pid  # type: ignore[union-attr]
            os._exit(0 if ok and mine != parent_worker else 3)
        except BaseException:  # noqa: BLE001 - anything at all is a failure of the child
            os._exit(4)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    b = backend(server)
    assert [i for i in b.stream(PROMPT, GenParams(64, 0.0, 0)) if isinstance(i, Text)]
    assert worker_pid() == parent_worker
    b.close()


def test_closing_after_the_worker_died_and_telling_after_close_are_harmless(server):
    link = transport._WorkerLink()
    link.ensure()
    pid = link._proc.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)
    assert gone_within(pid, 2.0)
    link.close()
    link.tell("cancel", 12345)  # a slot finishing at exit, after the link closed
    link.tell("token", 12345)


@pytest.mark.parametrize("reply", [
    b"SSH-2.0-OpenSSH_9.6\r\n",                                  # another protocol on the port
    b"HTTP/1.1 200 OK\r\nContent-Type text/event-stream\r\n\r\n",  # a header without its colon
    b"\x00\xff" * 64,                                           # bytes
])
def test_a_server_that_does_not_answer_in_http_is_an_error_with_the_reason(reply):
    """A hostile or confused server on the model's port: the attempt is an ERROR saying so, and the worker
    serves the next request as before."""
    import socket as sockets
    listener = sockets.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_once() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(reply)
            time.sleep(0.2)

    t = threading.Thread(target=serve_once, daemon=True)
    t.start()
    b = OpenAIBackend(ModelConfig(name="m", backend="openai", base_url=f"http://127.0.0.1:{port}/v1"))
    pid = worker_pid()
    with pytest.raises(BackendError, match=rf"127\.0\.0\.1:{port}/v1 did not answer in HTTP: "):
        list(b.stream(PROMPT, GenParams(64, 0.0, 0, first_token_timeout_s=5, total_timeout_s=5)))
    t.join(5)
    listener.close()
    b.close()
    assert worker_pid() == pid and psutil.Process(pid).is_running()


class _KeepAliveServer:
    """A raw HTTP/1.1 server on loopback that keeps connections open, answering each request with a short
    OpenAI-style stream. Each connection answers its first `answer_first` requests, then closes as the next one
    arrives, without answering: what a server's idle timeout does when it fires just as a request comes. With
    `together`, no answer goes out before that many requests have arrived, so that many are in flight at once
    however slowly a loaded machine starts the client's threads (each needs a connection of its own)."""

    BODY = (b'data: {"choices":[{"index":0,"delta":{"content":"5"},"finish_reason":"stop"}]}\n\n'
            b"data: [DONE]\n\n")

    def __init__(self, answer_first: int, together: int = 0):
        import socket as sockets
        self.answer_first = answer_first
        self.together, self.arrived = together, threading.Condition()
        self.listener = sockets.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests_per_connection: list[int] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.requests_per_connection.append(0)
            threading.Thread(target=self._serve, args=(conn, len(self.requests_per_connection) - 1),
                             daemon=True).start()

    def _serve(self, conn, index: int) -> None:
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                self.requests_per_connection[index] += 1
                if self.requests_per_connection[index] > self.answer_first:
                    return  # closed as the request arrived, nothing answered
                with self.arrived:
                    self.arrived.notify_all()
                    self.arrived.wait_for(lambda: sum(self.requests_per_connection) >= self.together, timeout=10)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(self.BODY), self.BODY))

    def close(self) -> None:
        self.listener.close()


def _answer(b: OpenAIBackend) -> str:
    return "".join(i.text for i in b.stream(PROMPT, GenParams(64, 0.0, 0, first_token_timeout_s=5,
                                                                 total_timeout_s=5)) if isinstance(i, Text))


def test_connections_are_kept_open_between_requests():
    server = _KeepAliveServer(answer_first=10)
    b = OpenAIBackend(ModelConfig(name="m", backend="openai", base_url=f"http://127.0.0.1:{server.port}/v1"))
    try:
        assert [_answer(b) for _ in range(3)] == ["5", "5", "5"]
        assert server.requests_per_connection == [3]
    finally:
        b.close()
        server.close()


def test_a_kept_open_connection_the_server_closed_is_sent_again_once_on_a_new_one():
    """Every connection answers one request and is closed as the next arrives on it: each later request goes out
    on the kept-open connection, is dropped, and goes out once more on a new connection, which answers. No ERROR
    the model never earned, and no request sent more than twice."""
    server = _KeepAliveServer(answer_first=1)
    b = OpenAIBackend(ModelConfig(name="m", backend="openai", base_url=f"http://127.0.0.1:{server.port}/v1"))
    try:
        assert [_answer(b) for _ in range(3)] == ["5", "5", "5"]
        # The first request opens connection 0; the second is dropped on it and answered on a new one (1), which
        # closes after its answer; the third opens another (2) and is answered there.
        assert server.requests_per_connection == [2, 1, 1]
    finally:
        b.close()
        server.close()


def test_a_request_is_sent_at_most_twice_however_many_kept_open_connections_are_closed():
    """Three streams at once leave three kept-open connections; the server closes each as its next request
    arrives. The next request meets one of them, then goes out once more on a new connection, not on the next
    closed one in turn."""
    server = _KeepAliveServer(answer_first=1, together=3)
    b = OpenAIBackend(ModelConfig(name="m", backend="openai", base_url=f"http://127.0.0.1:{server.port}/v1"))
    try:
        def one() -> None:
            assert _answer(b) == "5"

        threads = [threading.Thread(target=one) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(server.requests_per_connection) == [1, 1, 1]
        assert _answer(b) == "5"
        assert sum(server.requests_per_connection) == 3 + 2  # dropped once, answered on a new connection
    finally:
        b.close()
        server.close()
