"""SSE clients that stop reading while tokens stream, against the real `benchwatch serve` (gunicorn + gevent):
each costs a bounded send buffer in the kernel (not megabytes), and is dropped within the documented time after
the stream fills its receive buffer; a client that reads gets every token meanwhile.

Prints the figures it measured (kernel memory per stalled socket, time to drop) for docs/cli.md and the notes.
"""
from __future__ import annotations

import re
import socket
import subprocess
import time

import httpx

from benchwatch.server.stream import SEND_BUFFER_BYTES
from tests.integration.live_server import LiveServer, StreamReader, run_events

N_STALLED = 40
WRITE_TIMEOUT_S = 2.0
TEXT = "tok " * 256  # ~1 KB per token delta


def _server_socket_memory(port: int, peers: set[int]) -> list[tuple[int, int]]:
    """(sndbuf limit, bytes queued) of the server's side of each connection from a port in `peers`, from
    `ss -tm` (skmem tb: the send buffer's limit, w: memory queued for sending)."""
    out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True, timeout=10).stdout
    found = re.findall(r":(\d+)\s+skmem:\(r\d+,rb\d+,t\d+,tb(\d+),f\d+,w(\d+)", out)
    return [(int(tb), int(w)) for peer, tb, w in found if int(peer) in peers]


def _stalled_client(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /api/benchmark/telemetry/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    return s  # and never read from


def test_clients_that_stop_reading_cost_a_bounded_buffer_and_are_dropped_on_time(tmp_path):
    srv = LiveServer(tmp_path, "--write-timeout", str(WRITE_TIMEOUT_S))
    stalled: list[socket.socket] = []
    reader = None
    try:
        evs = run_events("r-slow", n_tasks=1)
        assert srv.post(evs[:4]).status_code == 200  # started, the task streaming
        ref = {k: evs[4][k] for k in ("run_id", "model", "dataset", "task_id", "attempt")}
        reader = StreamReader(srv.url)
        stalled = [_stalled_client(srv.port) for _ in range(N_STALLED)]
        peers = {s.getsockname()[1] for s in stalled}
        deadline = time.time() + 10
        while srv.health()["streams"] < N_STALLED + 1 and time.time() < deadline:
            time.sleep(0.05)
        assert srv.health()["streams"] == N_STALLED + 1
        t0 = time.time()
        seq, peak_total, peak_buf = 100, 0, 0
        dropped_at = None
        while time.time() - t0 < 60:
            batch = [{"type": "token", **ref, "seq": seq + i, "kind": "visible", "text": TEXT, "n_tokens": 256}
                     for i in range(20)]
            seq += 20
            assert srv.post(batch).status_code == 200
            mem = _server_socket_memory(srv.port, peers)
            peak_total = max(peak_total, sum(w for _, w in mem))
            peak_buf = max([peak_buf] + [tb for tb, _ in mem])
            if srv.health()["streams"] == 1:
                dropped_at = time.time() - t0
                break
            time.sleep(0.05)  # ~20 KB/s x 20 = 400 KB/s of token text: a fast model's stream, exaggerated
        assert dropped_at is not None, srv.health()
        # The kernel may charge up to twice SO_SNDBUF for bookkeeping; left to autotune it was 2.7 MB per socket.
        assert peak_buf <= 2 * SEND_BUFFER_BYTES + 4096, peak_buf
        # What is queued may pass the limit by the one packet the kernel always lets through (up to 64 KiB).
        assert peak_total <= N_STALLED * (2 * SEND_BUFFER_BYTES + 65536), peak_total
        health = srv.health()
        assert health["dropped_clients"] >= N_STALLED
        # The reader that kept reading got everything, up to the last token posted.
        final = httpx.get(f"{srv.url}/api/benchmark/state", timeout=10).json()["state"]
        reader.until(lambda st: st["current"] == final["current"], timeout=30)
        print(f"\n{N_STALLED} stalled SSE clients: dropped {dropped_at:.1f} s after tokens began to stream "
              f"(write_timeout {WRITE_TIMEOUT_S:g} s); server-side send buffer per socket at most "
              f"{peak_buf / 1024:.0f} KiB; queued in all at peak {peak_total / 1024:.0f} KiB "
              f"({peak_total / N_STALLED / 1024:.0f} KiB per stalled client)")
        assert dropped_at < 20
    finally:
        for s in stalled:
            s.close()
        if reader is not None:
            reader.close()
        srv.stop()
