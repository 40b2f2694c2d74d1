"""The hub: the server's run state, its version counter, and the SSE fan-out.

Every event (the runner's, the sampler's) is folded through the one reducer (state.apply). Each fold that
changes the state bumps the version N and produces one pre-serialised `patch` message (benchwatch.patch.diff)
kept in a bounded ring. A stream is a cursor into that ring: it wakes on a new version, writes everything past
its cursor in one chunk, and waits again. The ring is also what a reconnect with Last-Event-ID replays from.
A client whose cursor falls behind the ring's oldest message is too slow: it is dropped (its socket shut down so
a write blocked on it returns), never buffered without bound.

A client that stops reading is bounded in what it costs and dropped on time: its socket's send buffer is fixed
small (stream.py: SEND_BUFFER_BYTES, so the kernel can't grow it to megabytes), and a stream whose socket has held
at least STALL_BYTES unsent for write_timeout_s (the kernel's unsent-byte count, SIOCOUTQ), or whose write has
blocked that long, is dropped. Time to drop after a client stops reading: the time the stream takes to fill the
client's own receive buffer (its kernel's, ~128 KiB on Linux for a socket that never read) plus write_timeout_s.

Works with real threads (Werkzeug, tests) and with gevent's patched threading (gunicorn's gevent worker).
"""
from __future__ import annotations

import collections
import fcntl
import itertools
import json
import logging
import socket
import struct
import termios
import threading
import time
from typing import Any, Iterable, Iterator

from .. import state as reducer
from ..events import Event
from ..patch import diff

log = logging.getLogger(__name__)

RETRY_MS = 3000
PING = b": ping\n\n"
STALL_BYTES = 16 * 1024  # unsent bytes on a stream's socket that count as "not reading" when they stay


def _dumps(obj: Any) -> str:
    # allow_nan=False: the page's JSON.parse refuses NaN; a state holding one must never reach a stream.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)


def unsent_bytes(sock: Any) -> int | None:
    """Bytes the kernel still holds for this socket (not yet acknowledged by the peer), None if unknown."""
    try:
        fd = sock.fileno()
        if fd < 0:
            return None
        return struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except (OSError, AttributeError, ValueError):
        return None


def sse_message(kind: str, msg_id: int, data: Any) -> bytes:
    return f"id: {msg_id}\nevent: {kind}\ndata: {_dumps(data)}\n\n".encode()


class Subscriber:
    __slots__ = ("cursor", "sock", "dropped", "opened_at", "writing_since", "stalled_since")

    def __init__(self, sock: Any = None):
        self.cursor = 0
        self.writing_since = 0.0  # monotonic time the current write began; 0 when not writing
        self.stalled_since = 0.0  # monotonic time its socket began holding STALL_BYTES unsent; 0 when not
        self.sock = sock
        self.dropped = False
        self.opened_at = time.monotonic()

    def drop(self) -> None:
        """Too slow: mark it and shut its socket so a write blocked on a full buffer returns at once."""
        self.dropped = True
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Hub:
    def __init__(self, state: dict[str, Any] | None = None, ring_size: int = 4096, max_streams: int = 1000,
                 write_timeout_s: float = 10.0):
        self.write_timeout_s = write_timeout_s
        self._cond = threading.Condition(threading.Lock())  # guards state, version, ring and the stream set
        # Wake-up: one Event per state version, replaced on every change. Waiting on it costs a stream nothing
        # per publish beyond its own wake-up (a Condition allocates a waiter lock per wait and per notify).
        self._changed = threading.Event()
        self.state = state if state is not None else reducer.initial_state()
        # Patch ids start from this server's start time (ms x 1000), not 0: a page that reconnects with an id
        # from a previous server (a restart while it was away) then always gets a fresh snapshot, never the
        # new server's patches taken for its own. (Reaching the next start's base would take 1,000 patches a ms.)
        self.version = int(time.time() * 1000) * 1000
        self._ring: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=ring_size)
        self._subs: set[Subscriber] = set()
        self.max_streams = max_streams
        self.dropped_clients = 0
        self.duplicates = 0
        self.foreign_events = 0  # events of a run other than the live one, skipped (bus.fold_with_rebuild)
        self.bad_events = 0  # events the reducer failed on: skipped, logged, the loop goes on
        self._next_lag_check = 0.0
        self._chunk_cache: tuple[int, int, bytes] = (-1, -1, b"")  # (cursor, newest version, chunk)
        self._ticker_s: float | None = None  # set by start_heartbeat

    # ---- folding events
    def fold(self, events: Iterable[Event]) -> int:
        """Apply events in order; returns how many changed the state. Events already folded (same run_id, seq
        not above the last one seen, e.g. a batch the sink re-sent after a lost reply) are skipped."""
        changed = 0
        with self._cond:
            for event in events:
                if event.type != "telemetry" and event.seq <= self.state["last_seq"].get(event.run_id, -1):
                    self.duplicates += 1
                    continue
                try:
                    new = reducer.apply(self.state, event)
                    ops = [op for op in diff(self.state, new) if op[1][:1] != ["last_seq"]]
                    message = sse_message("patch", self.version + 1, {"ops": ops}) if ops else b""
                except Exception:  # one bad event must not stop the fold, nor reach the state or a stream
                    self.bad_events += 1
                    log.exception("event %s seq %s of run %s not folded", event.type, event.seq, event.run_id)
                    continue
                self.state = new
                if not ops:
                    continue
                self.version += 1
                self._ring.append((self.version, message))
                changed += 1
            if changed:
                self._drop_laggards()
                self._wake_all()
        return changed

    def start_heartbeat(self, interval_s: float) -> None:
        """Wake every stream each `interval_s`: an idle one then writes its `: ping`. One ticker for all streams
        lets each stream wait without a timeout of its own (a per-wait timer costs a stream on every wake)."""
        def tick() -> None:
            while True:
                time.sleep(interval_s)
                try:
                    with self._cond:
                        self._drop_laggards()
                        self._wake_all()
                except Exception:  # keep ticking: a stream's heartbeat depends on it
                    log.exception("SSE heartbeat tick failed")
        self._ticker_s = interval_s
        threading.Thread(target=tick, name="sse-heartbeat", daemon=True).start()

    def _wake_all(self) -> None:
        woken, self._changed = self._changed, threading.Event()
        woken.set()

    def reset(self, state: dict[str, Any]) -> None:
        """Replace the whole state (a rebuild): every stream gets a fresh snapshot, the ring starts over."""
        with self._cond:
            self.state = state
            self.version += 1
            self._ring.clear()
            self._chunk_cache = (-1, -1, b"")
            self._ring.append((self.version, b""))  # marker: nothing before this version can be replayed
            self._wake_all()

    def _drop_laggards(self) -> None:
        # Too slow: a cursor older than the ring's oldest message (it can't be served any more), or a write
        # blocked for longer than write_timeout_s (the client stopped reading). Checked at most 4x/s; the sampler's
        # 1 Hz fold makes sure it runs even when the runner is quiet.
        now = time.monotonic()
        if now < self._next_lag_check:
            return
        self._next_lag_check = now + 0.25
        oldest = self._ring[0][0] if len(self._ring) == self._ring.maxlen else 0
        for sub in self._subs:
            if sub.dropped:
                continue
            if sub.cursor < oldest - 1:
                self._drop(sub, "fell behind the ring")
            elif sub.writing_since and now - sub.writing_since > self.write_timeout_s:
                self._drop(sub, f"a write blocked for over {self.write_timeout_s:g} s")
            elif sub.sock is not None:
                unsent = unsent_bytes(sub.sock)
                if unsent is None or unsent < STALL_BYTES:
                    sub.stalled_since = 0.0
                elif not sub.stalled_since:
                    sub.stalled_since = now
                elif now - sub.stalled_since > self.write_timeout_s:
                    self._drop(sub, f"{unsent} bytes unsent for over {self.write_timeout_s:g} s")

    def _drop(self, sub: Subscriber, why: str) -> None:
        self.dropped_clients += 1
        log.info("SSE client dropped: %s", why)
        sub.drop()

    def snapshot(self) -> tuple[dict[str, Any], int]:
        with self._cond:
            return self.state, self.version

    # ---- streams
    @property
    def stream_count(self) -> int:
        return len(self._subs)

    def stream_stats(self) -> dict[str, Any]:
        """For /healthz: how far behind the slowest stream is (versions) and its longest blocked write (s)."""
        now = time.monotonic()
        subs = list(self._subs)
        return {"max_lag": max((self.version - s.cursor for s in subs), default=0),
                "max_write_block_s": round(max((now - s.writing_since for s in subs if s.writing_since),
                                               default=0.0), 3)}

    def open_stream(self, sock: Any = None) -> Subscriber | None:
        """Register a stream, or None when the cap is reached (the route answers 503 + Retry-After)."""
        with self._cond:
            if len(self._subs) >= self.max_streams:
                return None
            sub = Subscriber(sock)
            self._subs.add(sub)
            return sub

    def close_stream(self, sub: Subscriber) -> None:
        with self._cond:
            self._subs.discard(sub)

    def _since(self, cursor: int) -> bytes | None:
        """Messages after `cursor` in one chunk, or None when the ring no longer holds them all.

        Streams woken by the same fold usually share a cursor, so the chunk is built once per (cursor, version)
        and reused; it is taken from the ring's end (a deque is slow to index from the front)."""
        if not self._ring or cursor + 1 < self._ring[0][0] or self._ring[0][1] == b"" and cursor < self._ring[0][0]:
            return None
        newest = self._ring[-1][0]
        cached = self._chunk_cache
        if cached[0] == cursor and cached[1] == newest:
            return cached[2]
        msgs = [msg for _, msg in itertools.islice(reversed(self._ring), max(newest - cursor, 0))]
        msgs.reverse()
        chunk = b"".join(msgs)
        self._chunk_cache = (cursor, newest, chunk)
        return chunk

    def _snapshot_message(self) -> bytes:
        return sse_message("snapshot", self.version, {"state": self.state, "seq": self.version})

    def stream(self, sub: Subscriber, last_event_id: int | None, heartbeat_s: float) -> Iterator[bytes]:
        """The body of one SSE response: retry hint, snapshot (or replay), then patches and heartbeats."""
        try:
            with self._cond:
                replay = None
                if last_event_id is not None and 0 <= last_event_id <= self.version:
                    replay = b"" if last_event_id == self.version else self._since(last_event_id)
                first = replay if replay is not None else self._snapshot_message()
                sub.cursor = self.version
            sub.writing_since = time.monotonic()
            yield f"retry: {RETRY_MS}\n\n".encode() + first
            sub.writing_since = 0.0
            while True:
                with self._cond:
                    idle = sub.cursor == self.version and not sub.dropped
                    changed = self._changed  # set by the next fold, even one between here and the wait
                if idle:  # with the ticker running, its wake-up is the heartbeat (at most heartbeat_s apart)
                    changed.wait(None if self._ticker_s is not None and self._ticker_s <= heartbeat_s
                                 else heartbeat_s)
                with self._cond:
                    if sub.dropped:
                        return
                    if sub.cursor == self.version:
                        chunk = PING
                    else:
                        chunk = self._since(sub.cursor)
                        if chunk is None:
                            if self._ring and self._ring[0][1] == b"":  # a reset: start over from a snapshot
                                chunk = self._snapshot_message()
                            else:
                                self._drop(sub, "fell behind the ring")
                                return
                        sub.cursor = self.version
                sub.writing_since = time.monotonic()
                yield chunk  # returns once the server has written it to the socket
                sub.writing_since = 0.0
        finally:
            self.close_stream(sub)
