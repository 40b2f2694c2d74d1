"""The live server for real: `benchwatch serve` (gunicorn + gevent) on a free loopback port, real SSE clients."""
from __future__ import annotations

import time

import httpx
import pytest

from benchwatch.patch import apply_ops
from tests.integration.live_server import LiveServer, StreamReader, run_events


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    srv = LiveServer(tmp, "--heartbeat", "0.5", "--ring-size", "64", "--write-timeout", "2", store=f"sqlite:///{tmp / 'bench.db'}")
    yield srv
    srv.stop()


def test_ingest_needs_the_token(server):
    before = server.state()["seq"]
    for token in (None, "wrong"):
        r = server.post(run_events("r-auth"), token=token)
        assert r.status_code == 401
        assert "token" in r.json()["error"]
    assert server.state()["seq"] == before


def test_malformed_event_is_400_naming_event_and_field_and_leaves_state(server):
    good = run_events("r-bad")
    server.post(good[:3])
    before = server.state()
    bad = good[3:6]
    del bad[1]["stage"]
    r = server.post(bad)
    assert r.status_code == 400
    msg = r.json()["error"]
    assert "event[1]" in msg and "stage" in msg and "'stage'" in msg
    after = server.state()
    assert after["state"]["current"] == before["state"]["current"]  # event[0] was not applied either
    assert server.post(run_events("r-bad")[3:6]).json()["changed"] == 3  # none was folded (nor is a duplicate)
    r = server.client.post("/api/benchmark/telemetry/events", content=b"not json",
                           headers={"Authorization": "Bearer test-token-123", "Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]


def test_oversized_body_is_413(server):
    r = server.client.post("/api/benchmark/telemetry/events", content=b"[" + b" " * (9 * 1024 * 1024) + b"]",
                           headers={"Authorization": "Bearer test-token-123", "Content-Type": "application/json"})
    assert r.status_code == 413


def test_no_run_stream_stays_open_with_run_null_and_headers(tmp_path):
    srv = LiveServer(tmp_path, "--heartbeat", "0.5")
    try:
        s = StreamReader(srv.url)
        assert s.status == 200
        h = s.response_headers
        assert h["content-type"].startswith("text/event-stream")
        assert h["cache-control"] == "no-cache" and h["x-accel-buffering"] == "no"
        snap = s.next()
        assert snap.kind == "snapshot" and snap.data["state"]["run"] is None and snap.id == snap.data["seq"]
        s.next(kinds=("comment",), timeout=5)  # heartbeat while nothing happens
        s.next(timeout=5)  # telemetry keeps arriving as patches (push on ["telemetry"])
        assert s.live.state["run"] is None and s.live.state["telemetry"]
        s.close()
    finally:
        srv.stop()


def test_snapshot_then_ordered_patches_with_ids(server):
    s = StreamReader(server.url)
    assert s.next().kind == "snapshot"
    server.post(run_events("r-order", n_tasks=4))
    s.until(lambda st: st["run"] and st["run"]["id"] == "r-order" and st["run"]["status"] == "finished")
    s.close()
    full = server.state()
    assert s.live.state["counters"] == full["state"]["counters"] == {
        "total": 4, "done": 4, "pass": 4, "fail": 0, "error": 0, "remaining": 0, "ok_pct": 100.0, "ko_pct": 0.0,
        "other_pct": 0.0}
    assert s.live.state["current"]["response"] == "answer t3"


def test_patch_ids_are_consecutive_and_replay_equals_state(server):
    s = StreamReader(server.url)
    snap = s.next()
    state, last = snap.data["state"], snap.id
    server.post(run_events("r-ids", n_tasks=2))
    deadline = time.time() + 20
    while time.time() < deadline:
        m = s.next()
        assert m.kind == "patch" and m.id == last + 1, (m.kind, m.id, last)
        state, last = apply_ops(state, m.data["ops"]), m.id
        if state["run"]["id"] == "r-ids" and state["run"]["status"] == "finished":
            break
    assert state["counters"] == server.state()["state"]["counters"]
    s.close()


def test_last_event_id_resume_and_fallback_to_snapshot(server):
    s = StreamReader(server.url)
    snap = s.next()
    s.close()
    server.post(run_events("r-resume", n_tasks=2))
    # resume: no snapshot, the missed patches from snap.id + 1 on, then live
    r = StreamReader(server.url, last_event_id=snap.id, state=snap.data["state"])
    first = r.next()
    assert first.kind == "patch" and first.id == snap.id + 1
    r.until(lambda st: st["run"] and st["run"]["id"] == "r-resume" and st["run"]["status"] == "finished")
    assert r.live.state["counters"] == server.state()["state"]["counters"]
    r.close()
    # too old (the ring keeps 64 patches): a fresh snapshot instead
    server.post(run_events("r-resume2", n_tasks=20))
    old = StreamReader(server.url, last_event_id=snap.id)
    assert old.next().kind == "snapshot"
    old.close()
    # an id from the future (another server's) also gets a snapshot
    fut = StreamReader(server.url, last_event_id=10**9)
    assert fut.next().kind == "snapshot"
    fut.close()


def test_resent_batch_is_folded_once(server):
    evs = run_events("r-dup", n_tasks=2)
    assert server.post(evs).status_code == 200
    before = server.state()["state"]["counters"]
    assert server.post(evs).status_code == 200  # a retry after a lost reply
    assert server.state()["state"]["counters"] == before


def test_stream_cap_gives_503_with_retry_after(tmp_path, write_config):
    cfg = write_config({"server": {"max_streams": 3}, "models": [{"name": "m", "backend": "scripted"}],
                        "datasets": [{"name": "d", "source": "builtin:facts"}]})
    srv = LiveServer(tmp_path, config=cfg)
    try:
        streams = [StreamReader(srv.url) for _ in range(3)]
        for st in streams:
            assert st.next().kind == "snapshot"
        r = httpx.get(srv.url + "/api/benchmark/telemetry/stream", timeout=5)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
        assert srv.health()["streams"] == 3  # and the server still answers
        streams[0].close()
        deadline = time.time() + 10
        while srv.health()["streams"] > 2 and time.time() < deadline:
            time.sleep(0.2)  # the heartbeat write notices the closed client
        extra = StreamReader(srv.url)
        assert extra.status == 200 and extra.next().kind == "snapshot"
        for st in streams[1:] + [extra]:
            st.close()
    finally:
        srv.stop()


def test_slow_client_is_dropped_while_others_get_everything(server):
    import socket

    fast = StreamReader(server.url)
    fast.next()
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: no receive-window autotuning
    slow.connect(("127.0.0.1", server.port))
    slow.sendall(b"GET /api/benchmark/telemetry/stream HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read
    time.sleep(0.5)
    dropped_before = server.health()["dropped_clients"]
    run_id = "r-slow"
    evs = run_events(run_id, n_tasks=1)
    server.post(evs[:5])  # up to the first task's streaming stage
    ref = {k: evs[4][k] for k in ("run_id", "model", "dataset", "task_id", "attempt")}
    seq = 1000
    for _ in range(4):  # ~8 MB through the stream: far past the slow socket's buffers
        batch = []
        for _ in range(10):
            seq += 1
            batch.append({"type": "token", **ref, "seq": seq, "kind": "visible",
                          "text": chr(97 + seq % 26) * 100_000, "n_tokens": 1})  # varied: a real change each
        assert server.post(batch).status_code == 200
    server.post([{**e, "seq": seq + 1 + i} for i, e in enumerate(evs[6:])])
    deadline = time.time() + 20
    while server.health()["dropped_clients"] == dropped_before and time.time() < deadline:
        time.sleep(0.2)
    assert server.health()["dropped_clients"] > dropped_before
    fast.until(lambda st: st["run"]["id"] == run_id and st["run"]["status"] == "finished", timeout=30)
    assert fast.live.state["counters"]["pass"] == 1  # the fast client saw every state change
    slow.close()
    fast.close()


def test_fd_count_returns_to_baseline_after_1000_stream_cycles(tmp_path):
    srv = LiveServer(tmp_path, "--heartbeat", "0.2")
    try:
        worker = srv.worker()

        def cycles(c: httpx.Client, n: int) -> None:
            for _ in range(n):
                with c.stream("GET", srv.url + "/api/benchmark/telemetry/stream",
                              headers={"Connection": "close"}) as r:
                    next(r.iter_raw())  # the retry hint + snapshot

        def settled() -> int:
            deadline = time.time() + 30
            while srv.health()["streams"] and time.time() < deadline:
                time.sleep(0.25)
            time.sleep(0.5)
            return worker.num_fds()

        with httpx.Client(timeout=10) as c:
            cycles(c, 20)  # warm-up: whatever the server opens once (libraries, /proc files) is open now
        baseline = settled()
        with httpx.Client(timeout=10) as c:
            cycles(c, 1000)
        settled()
        deadline = time.time() + 20
        while abs(worker.num_fds() - baseline) > 5 and time.time() < deadline:
            time.sleep(0.25)
        assert abs(worker.num_fds() - baseline) <= 5, (baseline, worker.num_fds())
        assert srv.health()["streams"] == 0
    finally:
        srv.stop()


def test_json_api_and_static_routes(server):
    assert server.client.get("/healthz").json()["ok"] is True
    assert server.client.get("/api/runs").json() == {"runs": []}
    assert server.client.get("/api/runs/nope").status_code == 404
    r = server.client.get("/docs/benchmark_monitor.html")
    assert r.status_code in (200, 404)  # the page is issue 4's file; the route is ours
    assert server.client.get("/js/nope.js").status_code == 404
