"""Event sinks: where the runner's events go. A sink must never block or break the run."""
from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import IO, Protocol

from ..events import Event, to_json_text

log = logging.getLogger(__name__)


class Sink(Protocol):
    def emit(self, event: Event) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """`--events-out FILE`: one JSON event per line, flushed per event so a killed run keeps its trail."""

    def __init__(self, path: str | Path, append: bool = True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] = self.path.open("a" if append else "w", encoding="utf-8")
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        line = to_json_text(event)
        with self._lock:
            self._f.write(line + "\n")
            self._f.flush()

    def close(self) -> None:
        with self._lock:
            self._f.close()


class MemorySink:
    """Keeps every event in a list (tests, and the demo's in-process view)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


class SafeFanout:
    """Send each event to every sink; a sink that raises is logged once and then skipped for that event only.

    With several slots in flight the events go through one delivery thread instead (`in_background(True)`),
    in the order they were emitted: a slot hands its event over and goes on, and never queues behind the others
    while a sink (the terminal display, a JSONL file) does its work. Turning it off again, or closing, first
    delivers everything handed over."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks
        self._warned: set[int] = set()
        self._queue: "queue.SimpleQueue[Event | None] | None" = None
        self._thread: threading.Thread | None = None

    def emit(self, event: Event) -> None:
        if self._queue is not None:
            self._queue.put(event)
        else:
            self._deliver(event)

    def in_background(self, on: bool) -> None:
        """Deliver from a thread of its own (on), or in the emitting thread once all handed over is out (off)."""
        if on and self._queue is None:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._drain, args=(self._queue,), name="benchwatch-events",
                                            daemon=True)
            self._thread.start()
        elif not on and self._queue is not None:
            self._queue.put(None)
            self._thread.join()  # type: ignore[union-attr]
            self._queue = self._thread = None

    def _drain(self, q: "queue.SimpleQueue[Event | None]") -> None:
        while (event := q.get()) is not None:
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception as exc:  # a broken sink must not stop the run
                if id(sink) not in self._warned:
                    self._warned.add(id(sink))
                    log.warning("event sink %s failed: %s", type(sink).__name__, exc)

    def close(self) -> None:
        self.in_background(False)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                log.warning("closing sink %s failed: %s", type(sink).__name__, exc)
