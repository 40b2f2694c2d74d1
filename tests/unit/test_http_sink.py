"""The HTTP sink's buffer policy against a dead port (no server): tokens go first, state events are never lost
silently, emit never blocks."""
from __future__ import annotations

import socket
import time

from benchwatch import events as ev
from benchwatch.runner.http_sink import HttpSink


def dead_url() -> tuple[str, socket.socket]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound but not listening: connection refused
    return f"http://127.0.0.1:{s.getsockname()[1]}", s


def token(i: int) -> ev.TokenDelta:
    return ev.TokenDelta(run_id="r", seq=i, model="m", dataset="d", task_id="t", attempt=1, kind="visible",
                         text="x", n_tokens=1)


def state_event(i: int) -> ev.DatasetFinished:
    return ev.DatasetFinished(run_id="r", seq=i, model="m", dataset="d")


def test_full_buffer_drops_token_deltas_first_and_state_events_loudly():
    url, s = dead_url()
    sink = HttpSink(url, "t", max_buffer=10, backoff_s=(5, 5))
    try:
        t0 = time.perf_counter()
        for i in range(5):
            sink.emit(state_event(i))
        for i in range(5, 20):
            sink.emit(token(i))
        assert sink.pending() <= 10 and sink.dropped_state == 0 and sink.dropped_tokens >= 5
        for i in range(20, 30):
            sink.emit(state_event(i))
        assert sink.dropped_state == 5 and sink._resync is True  # the server will rebuild from the store
        assert all(e.type == "dataset_finished" for _, e in sink._buf)
        assert time.perf_counter() - t0 < 0.5  # emit never waits on the network
    finally:
        t0 = time.perf_counter()
        sink.close()
        assert time.perf_counter() - t0 < 2  # a dead server doesn't hold the end of the run
        s.close()
