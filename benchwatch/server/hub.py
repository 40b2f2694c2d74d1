"""The hub: the SSE fan-out around one FoldLog (fold.py: the run state, its version counter, the patch ring,
dedupe and the speed meter, with no sockets or threads of its own), under one lock.

Every event (the runner's, the sampler's) is folded through the one reducer (state.apply). Each fold that
changes what the page sees bumps the version N and produces one pre-serialised `patch` message kept in a
bounded ring. A stream is a cursor into that ring: it wakes on a new version, writes everything past
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

import fcntl
import logging
import socket
import struct
import termios
import threading
import time
from typing import Any, Callable, Iterable, Iterator, TypeVar

from ..events import Event
from .fold import FoldLog, sse_message

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRY_MS = 3000
PING = b": ping\n\n"
STALL_BYTES = 16 * 1024  # unsent bytes on a stream's socket that count as "not reading" when they stay
__all__ = ["Hub", "Subscriber", "sse_message", "unsent_bytes", "RETRY_MS", "PING", "STALL_BYTES"]


def unsent_bytes(sock: Any) -> int | None:
    """Bytes the kernel still holds for this socket (not yet acknowledged by the peer), None if unknown."""
    try:
        fd = sock.fileno()
        if fd < 0:
            return None
        return struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except (OSError, AttributeError, ValueError):
        return None


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
        # Patch ids start from this server's start time (ms x 1000), not 0: a page that reconnects with an id
        # from a previous server (a restart while it was away) then always gets a fresh snapshot, never the
        # new server's patches taken for its own. (Reaching the next start's base would take 1,000 patches a ms.)
        self.log = FoldLog(state, ring_size=ring_size, version=int(time.time() * 1000) * 1000)
        self._subs: set[Subscriber] = set()
        self.max_streams = max_streams
        self.dropped_clients = 0
        self.foreign_events = 0  # events of a run other than the live one, skipped (bus.RebuildingFold)
        self._next_lag_check = 0.0
        self._ticker_s: float | None = None  # set by start_heartbeat

    # The FoldLog's fields, read as the hub's own (callers other than the hub hold no lock: a glance only).
    state = property(lambda self: self.log.state)
    version = property(lambda self: self.log.version)
    duplicates = property(lambda self: self.log.duplicates)
    bad_events = property(lambda self: self.log.bad_events)
    _ring = property(lambda self: self.log.ring)

    # ---- folding events
    def fold(self, events: Iterable[Event]) -> int:
        """Apply events in order; returns how many changed what the page sees. Events already folded (same
        run_id, seq not above the last one seen, e.g. a batch the sink re-sent after a lost reply) are skipped."""
        with self._cond:
            changed = self.log.fold(events)
            if changed:
                self._drop_laggards()
                self._wake_all()
        return changed

    def run_id(self) -> str | None:
        """The run this hub holds (None before any)."""
        with self._cond:
            run = self.log.state["run"]
            return run["id"] if run is not None else None

    def sample_speed(self) -> tuple[str | None, float | None, str | None]:
        """For the 1 Hz sampler, under the lock: (active run id or None, tps or None, why tps is None)."""
        with self._cond:
            run = self.log.state["run"]
            tps, why = self.log.speed.sample(self.log.state)
            return (run["id"] if run is not None and run["status"] == "running" else None), tps, why

    def read(self, fn: Callable[[dict[str, Any]], T]) -> T:
        """`fn(state)` under the lock: for readers outside the fold (the sampler's scrape target)."""
        with self._cond:
            return fn(self.log.state)

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
            self.log.reset(state)
            self._wake_all()

    def _drop_laggards(self) -> None:
        # Too slow: a cursor older than the ring's oldest message (it can't be served any more), or a write
        # blocked for longer than write_timeout_s (the client stopped reading). Checked at most 4x/s; the sampler's
        # 1 Hz fold makes sure it runs even when the runner is quiet.
        now = time.monotonic()
        if now < self._next_lag_check:
            return
        self._next_lag_check = now + 0.25
        oldest = self.log.oldest_kept()
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
        """What the page sees (a LiveState as data) and its version."""
        with self._cond:
            return self.log.view(), self.log.version

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
        return self.log.since(cursor)

    def _snapshot_message(self) -> bytes:
        return self.log.snapshot_message()

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
                            if self.log.after_reset():  # a reset: start over from a snapshot
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
