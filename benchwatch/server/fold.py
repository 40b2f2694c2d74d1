"""The hub's logic without sockets, threads or greenlets: fold, dedupe, the patch ring, the speed meter.

`FoldLog` holds the reducer's state and the version N. Each fold that changes what the page sees bumps N and
keeps one pre-serialised SSE `patch` message (benchwatch.patch.diff of the page's view, state.view) in a
bounded ring, which streams read from and a reconnect with Last-Event-ID replays from. It also keeps the
server's own bookkeeping, which is not part of the live state:
- dedupe: the last `seq` folded per run, so a batch the runner re-sent after a lost reply is skipped;
- the speed meter: the streaming speed the 1 Hz sampler reports (see SpeedMeter).
The Hub (hub.py) wraps one FoldLog in its lock and adds the streams; everything here is tested alone.
"""
from __future__ import annotations

import collections
import itertools
import json
import logging
import time
from typing import Any, Callable, Iterable

from .. import state as reducer
from ..events import Event
from ..patch import diff

log = logging.getLogger(__name__)


def _dumps(obj: Any) -> str:
    # allow_nan=False: the page's JSON.parse refuses NaN; a state holding one must never reach a stream.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False)


def sse_message(kind: str, msg_id: int, data: Any) -> bytes:
    return f"id: {msg_id}\nevent: {kind}\ndata: {_dumps(data)}\n\n".encode()


RESET = b""  # a ring entry that marks a reset: nothing before its version can be replayed


class SpeedMeter:
    """The visible tokens/s the sampler reports once a second, from the run's live state.

    While a task streams, its current speed. An answer that streamed and finished between two samples (SmolLM2
    answers in ~0.2 s) is reported once with its final speed, or a 1 Hz sampler would show a model answering
    at 75 tok/s as producing nothing. Otherwise 0 (cooling, thinking, evaluating: no visible tokens flow).

    With several attempts in flight (the state's `slots.n` > 1, runner.concurrency) the figure is the aggregate
    across streams instead: output tokens of every stream since the previous sample, per second (the page's
    TPS chart says so in its title)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.finished = 0  # task_finished events folded
        self.last_tps: float | None = None
        self._seen = 0  # `finished` at the previous sample
        self.clock = clock
        self.tokens_out = 0  # output tokens of every stream (token events' n_tokens), for the aggregate
        self._tokens_seen: tuple[int, float] | None = None  # (tokens_out, clock) at the previous sample

    def note(self, event: Event) -> None:
        if event.type == "task_finished":
            self.finished += 1
            self.last_tps = event.tokens_per_s  # type: ignore[union-attr]
        elif event.type == "token":
            self.tokens_out += event.n_tokens  # type: ignore[union-attr]

    def _aggregate(self) -> float:
        count, now = self.tokens_out, self.clock()
        prev, self._tokens_seen = self._tokens_seen, (count, now)
        if prev is None or now <= prev[1] or count < prev[0]:
            return 0.0
        return round((count - prev[0]) / (now - prev[1]), 3)

    def sample(self, state: dict[str, Any]) -> tuple[float | None, str | None]:
        """(tps, None), or (None, why) when there is nothing to measure."""
        run, cur = state["run"], state["current"]
        if run is None or run["status"] != "running":
            self._tokens_seen = None
            return None, "no run active"
        if state["slots"]["n"] > 1:
            return self._aggregate(), None
        self._tokens_seen = None
        finished_since, self._seen = self.finished != self._seen, self.finished
        if cur is not None and cur.get("stage") == "streaming":
            return cur.get("tps") or 0.0, None
        if finished_since and self.last_tps:
            return self.last_tps, None
        return 0.0, None


class FoldLog:
    def __init__(self, state: dict[str, Any] | None = None, ring_size: int = 4096, version: int = 0):
        self.state = state if state is not None else reducer.initial_state()
        self.version = version
        self.ring: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=ring_size)
        self.last_seq: dict[str, int] = {}  # run_id -> the highest seq folded
        self.duplicates = 0
        self.bad_events = 0  # events the reducer failed on: skipped, logged, the fold goes on
        self.speed = SpeedMeter()
        self._chunk_cache: tuple[int, int, bytes] = (-1, -1, b"")  # (cursor, newest version, chunk)

    def view(self) -> dict[str, Any]:
        return reducer.view(self.state)

    def fold(self, events: Iterable[Event]) -> int:
        """Apply events in order; returns how many changed what the page sees. Events already folded (same
        run_id, seq not above the last one seen) are skipped and counted as duplicates."""
        changed = 0
        for event in events:
            if event.type != "telemetry" and event.seq <= self.last_seq.get(event.run_id, -1):
                self.duplicates += 1
                continue
            try:
                new = reducer.apply(self.state, event)
                ops = diff(reducer.view(self.state), reducer.view(new))
                message = sse_message("patch", self.version + 1, {"ops": ops}) if ops else b""
            except Exception:  # one bad event must not stop the fold, nor reach the state or a stream
                self.bad_events += 1
                log.exception("event %s seq %s of run %s not folded", event.type, event.seq, event.run_id)
                continue
            if event.type != "telemetry":
                self.last_seq[event.run_id] = event.seq
            self.speed.note(event)
            self.state = new
            if not ops:
                continue
            self.version += 1
            self.ring.append((self.version, message))
            changed += 1
        return changed

    def reset(self, state: dict[str, Any]) -> None:
        """Replace the whole state (a rebuild): the ring starts over from a reset marker, so every stream gets
        a fresh snapshot. The dedupe record stays: events folded before are still folded."""
        self.state = state
        self.version += 1
        self.ring.clear()
        self._chunk_cache = (-1, -1, b"")
        self.ring.append((self.version, RESET))

    def after_reset(self) -> bool:
        """The ring starts with a reset marker (a stream that can't replay gets a snapshot, not a drop)."""
        return bool(self.ring) and self.ring[0][1] == RESET

    def oldest_kept(self) -> int:
        """The oldest version the ring still holds once it is full (0 while it is not)."""
        return self.ring[0][0] if len(self.ring) == self.ring.maxlen else 0

    def since(self, cursor: int) -> bytes | None:
        """Messages after `cursor` in one chunk, or None when the ring no longer holds them all.

        Streams woken by the same fold usually share a cursor, so the chunk is built once per (cursor, version)
        and reused; it is taken from the ring's end (a deque is slow to index from the front)."""
        ring = self.ring
        if not ring or cursor + 1 < ring[0][0] or ring[0][1] == RESET and cursor < ring[0][0]:
            return None
        newest = ring[-1][0]
        cached = self._chunk_cache
        if cached[0] == cursor and cached[1] == newest:
            return cached[2]
        msgs = [msg for _, msg in itertools.islice(reversed(ring), max(newest - cursor, 0))]
        msgs.reverse()
        chunk = b"".join(msgs)
        self._chunk_cache = (cursor, newest, chunk)
        return chunk

    def snapshot_message(self) -> bytes:
        return sse_message("snapshot", self.version, {"state": self.view(), "seq": self.version})
