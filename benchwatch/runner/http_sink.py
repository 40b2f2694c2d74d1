"""The runner's HTTP sink: publishes events to the live server without ever slowing the run.

`emit` only appends to a bounded in-memory buffer (O(1), under a lock); a background thread POSTs batches to
`/api/benchmark/telemetry/events`, retrying with exponential back-off while the server is down, slow or
restarting. Under pressure (the buffer full) token deltas are dropped first: they are only the streaming text,
the full answer is in the store. A state-changing event is never dropped silently: if even those overflow, the
oldest go with a logged warning and the next batch asks the server to `resync` (rebuild the run from the
store, which holds every result). A batch the server did take but whose reply was lost is re-sent; the server
skips events it already folded (same run_id, seq not above the last one).

It posts at most every `flush_interval_s` (150 ms): with llama.cpp using every core, each wake-up of this thread
stalls the model's threads, and posting every 50 ms cost ~10% of tokens/s on 2 cores
(bench/bench_monitor_overhead.py); the page still updates ~7 times a second. A batch holds at most `batch_max`
(128) events: the server folds one batch at a time, and a bigger one kept everyone else's events (a telemetry
sample, another client's POST) waiting behind it (64 tasks in flight: batches of up to 500 events held the fold
for 60 ms).
"""
from __future__ import annotations

import collections
import itertools
import logging
import re
import threading
import time
from typing import Any

import httpx

from ..endpoints import INGEST as INGEST_PATH
from ..events import STATE_CHANGING, Event, to_json_text

log = logging.getLogger(__name__)


BATCH_MAX = 128  # events a POST holds at most (see above)


class HttpSink:
    def __init__(self, url: str, token: str, *, max_buffer: int = 20_000, batch_max: int = BATCH_MAX,
                 flush_interval_s: float = 0.15, timeout_s: float = 5.0, backoff_s: tuple[float, float] = (0.2, 5.0),
                 close_timeout_s: float = 5.0, transport: httpx.BaseTransport | None = None):
        self.endpoint = url.rstrip("/") + INGEST_PATH
        self.max_buffer, self.batch_max, self.flush_interval_s = max_buffer, batch_max, flush_interval_s
        self.backoff_min, self.backoff_max = backoff_s
        self.close_timeout_s = close_timeout_s
        self._client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s,
                                    transport=transport)
        self._cond = threading.Condition()
        self._buf: collections.deque[tuple[int, Event]] = collections.deque()
        self._next = 0  # local index of the next buffered event
        self._resync = False
        self._closing = False
        self.sent = 0
        self.dropped_tokens = 0
        self.dropped_state = 0
        self.rejected = 0
        self.failures = 0
        self.server_up: bool | None = None
        self.last_error = ""
        self._thread = threading.Thread(target=self._loop, name="http-sink", daemon=True)
        self._thread.start()

    # ---- the runner's side: never blocks on the network
    def emit(self, event: Event) -> None:
        with self._cond:
            if len(self._buf) >= self.max_buffer:
                self._make_room(event)
                if len(self._buf) >= self.max_buffer:
                    return  # a token delta while only state-changing events are buffered: dropped (counted)
            self._buf.append((self._next, event))
            self._next += 1
            self._cond.notify()

    def _make_room(self, event: Event) -> None:
        tokens = sum(1 for _, e in self._buf if e.type not in STATE_CHANGING)
        if tokens:  # drop every buffered token delta at once: this scan is then rare
            self._buf = collections.deque(item for item in self._buf if item[1].type in STATE_CHANGING)
            self.dropped_tokens += tokens
            log.info("event buffer full: dropped %d token deltas (the store keeps every answer)", tokens)
        elif event.type in STATE_CHANGING:
            self._buf.popleft()
            self.dropped_state += 1
            self._resync = True
            if self.dropped_state == 1 or self.dropped_state % 1000 == 0:
                log.warning("event buffer full with the server unreachable: %d state-changing events dropped; "
                            "the server will rebuild this run from the store when it is back", self.dropped_state)
        else:
            self.dropped_tokens += 1

    # ---- the background thread
    def _loop(self) -> None:
        """Runs until close(); one bad event or an unexpected error is logged and skipped, never the end of it
        (a dead sink thread would leave the monitor showing the run "running" forever)."""
        while True:
            try:
                self._serve()
                return
            except Exception:
                log.exception("live server sink: unexpected error; carrying on")
                with self._cond:
                    if self._buf:  # whatever broke it goes; the rest is sent
                        self._buf.popleft()
                        self.rejected += 1
                    self._cond.wait(self.backoff_min)

    def _serve(self) -> None:
        delay = self.backoff_min
        while True:
            with self._cond:
                while not self._buf and not self._closing:
                    self._cond.wait()
                if not self._buf and self._closing:
                    return
                batch = list(itertools.islice(self._buf, self.batch_max))
                resync = self._resync
            ok = self._post(batch, resync)
            with self._cond:
                if isinstance(ok, int) and not isinstance(ok, bool):  # the server refused one event: drop it
                    index = batch[ok][0]
                    self._buf = collections.deque(item for item in self._buf if item[0] != index)
                    self.rejected += 1
                    continue
                if ok:
                    last = batch[-1][0]
                    while self._buf and self._buf[0][0] <= last:
                        self._buf.popleft()
                    if resync:
                        self._resync = False
                    delay = self.backoff_min
                    # Let events gather into one batch: a POST per flush interval, not per event, keeps the
                    # sink's wake-ups (which disturb a model using every core) few. emit()'s notify does not
                    # cut this short; a full batch or close() does.
                    deadline = time.monotonic() + self.flush_interval_s
                    while len(self._buf) < self.batch_max and not self._closing:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                else:
                    if self._closing:
                        return  # the run is over and the server is not taking events: don't hold the exit
                    self._cond.wait(delay)
                    delay = min(delay * 2, self.backoff_max)

    def _post(self, batch: list[tuple[int, Event]], resync: bool) -> bool | int:
        """True: delivered (or given up on); False: retry later; an int: the server refused that batch item
        alone (its index), the rest is sent again without it."""
        items = []
        for i, (_, e) in enumerate(batch):
            try:  # the JSON the server will parse: finite numbers, valid UTF-8
                items.append(to_json_text(e).encode("utf-8"))
            except (ValueError, TypeError) as exc:
                log.error("event %s (seq %s) can't be sent and is skipped: %s", e.type, e.seq, exc)
                return i
        body = b'{"events":[' + b",".join(items) + b"]" + (b',"resync":true' if resync else b"") + b"}"
        try:
            resp = self._client.post(self.endpoint, content=body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        if resp.status_code < 300:
            self.sent += len(batch)
            if self.server_up is False:
                log.warning("live server is back at %s; %d buffered events delivered", self.endpoint, len(batch))
            self.server_up = True
            return True
        if resp.status_code == 413 and self.batch_max > 1:
            self.batch_max = max(1, self.batch_max // 2)  # retried at once in smaller batches
            return False
        if resp.status_code in (400, 409):  # refused: say it loudly, don't retry it forever
            try:
                m = re.match(r"event\[(\d+)\]", str(resp.json().get("error", "")))
            except (ValueError, AttributeError):
                m = None
            if len(batch) > 1 and m and int(m.group(1)) < len(batch):
                log.error("live server refused one event: %s", resp.text[:500])
                return int(m.group(1))
            self.rejected += len(batch)
            log.error("live server refused %d events: %s", len(batch), resp.text[:500])
            return True
        return self._failed(f"HTTP {resp.status_code}: {resp.text[:200]}")

    def _failed(self, why: str) -> bool:
        self.failures += 1
        if self.server_up is not False or why != self.last_error:
            log.warning("live server unreachable (%s): events are buffered and retried; the run goes on", why)
        self.server_up, self.last_error = False, why
        return False

    def pending(self) -> int:
        with self._cond:
            return len(self._buf)

    def close(self) -> None:
        """Flush what is buffered, waiting at most close_timeout_s, and only while the server is answering."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(self.close_timeout_s if self.server_up is not False else 0.5)
        left = self.pending()
        if left:
            log.warning("live server: %d events not delivered (%s); every result is in the store",
                        left, self.last_error or "timed out")
        self._client.close()

    def stats(self) -> dict[str, Any]:
        return {"sent": self.sent, "pending": self.pending(), "dropped_tokens": self.dropped_tokens,
                "dropped_state": self.dropped_state, "rejected": self.rejected, "failures": self.failures}
