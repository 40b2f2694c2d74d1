"""Bad ingest bodies that need a real socket, against the real `benchwatch serve` (gunicorn + gevent): a malformed
or truncated chunked body, a body nested 10,000 levels deep, NaN and a lone surrogate. Each is a 400 naming the
place, never a 500; the live state is unchanged and a new SSE stream still opens with a valid snapshot."""
from __future__ import annotations

import json
import socket

import pytest

from tests.integration.live_server import TOKEN, LiveServer, StreamReader, run_events

PATH = "/api/benchmark/telemetry/events"


def _raw(port: int, head: bytes, body: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[-1]


def _head(extra: str) -> bytes:
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nConnection: close\r\n{extra}\r\n").encode()


CHUNKED = _head("Transfer-Encoding: chunked\r\n")
CASES = [
    ("chunk-size-not-hex", CHUNKED, b"zz\r\n[]\r\n0\r\n\r\n", "body: could not be read"),
    ("chunk-longer-than-said", CHUNKED, b"2\r\n[1, 2, 3]\r\n0\r\n\r\n", "body: could not be read"),
    ("chunked-truncated", CHUNKED, b"10\r\n[{\"type\"", "body: could not be read"),
    ("deep-10000", None, b"[" * 10000 + b"]" * 10000, "body: nested too deeply"),
    ("nan", None, b'[{"type": "token", "run_id": "r-live", "seq": 999, "model": "m", "dataset": "d", '
                  b'"task_id": "t2", "attempt": 1, "kind": "visible", "text": "x", "n_tokens": 1, "tps": NaN}]',
     "event[0] (type='token'): field 'tps': not a finite number"),
    ("surrogate", None, b'[{"type": "task_started", "run_id": "r-live", "seq": 999, "model": "m", "dataset": "d", '
                        b'"task_id": "t2", "attempt": 1, "prompt": "\\ud800"}]',
     "event[0] (type='task_started'): field 'prompt': not valid Unicode"),
]


def _run_state(server) -> dict:
    """The live state less the host's samples (the 1 Hz sampler adds one every second)."""
    return {k: v for k, v in server.state()["state"].items() if k not in ("telemetry", "server")}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = LiveServer(tmp_path_factory.mktemp("bad"))
    assert srv.post(run_events("r-live", n_tasks=3)[:-2]).status_code == 200
    yield srv
    srv.stop()


@pytest.mark.parametrize("case, head, body, words", [pytest.param(*c, id=c[0]) for c in CASES])
def test_bad_body_on_a_real_socket_is_400_and_changes_nothing(server, case, head, body, words):
    before = _run_state(server)
    if head is None:
        head = _head(f"Content-Length: {len(body)}\r\n")
    status, reply = _raw(server.port, head, body)
    assert status == 400, reply[:300]
    assert words in json.loads(reply)["error"]
    assert _run_state(server) == before
    # Every new stream still opens with a snapshot that is valid JSON.
    reader = StreamReader(server.url)
    try:
        msg = reader.next(timeout=10)
        assert msg.kind == "snapshot" and msg.data["state"]["run"]["id"] == "r-live"  # parsed as JSON
    finally:
        reader.close()
    assert server.health()["ok"]
