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


def test_a_bad_event_is_skipped_and_the_rest_delivered_to_a_real_ingest():
    """One event that can't be sent (a lone surrogate in its text) and one the server refuses (its run was
    never started: 409 naming event[i]) are dropped alone, logged; the sink's thread goes on and delivers the
    rest, so the monitor never shows the run "running" forever."""
    import threading

    from werkzeug.serving import make_server

    from benchwatch.server import create_app

    app = create_app(store=None, token="tok", start_sampler=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink = HttpSink(f"http://127.0.0.1:{server.server_port}", "tok", flush_interval_s=0.01)
    try:
        run = [ev.RunStarted(run_id="r", seq=1, models=[ev.PlanModel(name="m", backend="scripted")],
                             datasets=[ev.PlanDataset(name="d", evaluator="exact_match", task_ids=["t"])]),
               ev.DatasetStarted(run_id="r", seq=2, model="m", dataset="d", task_ids=["t"]),
               ev.TaskStarted(run_id="r", seq=3, model="m", dataset="d", task_id="t", attempt=1, prompt="p"),
               ev.TokenDelta(run_id="r", seq=4, model="m", dataset="d", task_id="t", attempt=1, kind="visible",
                             text="bad \ud800", n_tokens=1),
               ev.DatasetFinished(run_id="never-started", seq=5, model="m", dataset="d"),
               ev.TokenDelta(run_id="r", seq=6, model="m", dataset="d", task_id="t", attempt=1, kind="visible",
                             text="good", n_tokens=1),
               ev.RunFinished(run_id="r", seq=7, status="finished")]
        for e in run:
            sink.emit(e)
        deadline = time.time() + 10
        hub = app.extensions["benchwatch"].hub
        while time.time() < deadline and (hub.state["run"] or {}).get("status") != "finished":
            time.sleep(0.02)
        assert hub.state["run"]["status"] == "finished"
        assert hub.state["current"]["response"] == "good"
        assert sink.rejected == 2 and sink._thread.is_alive()
    finally:
        sink.close()
        server.shutdown()
