"""Event sinks: where the runner's events go. A sink must never block or break the run."""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import IO, Protocol

from ..events import Event, to_json

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
        line = json.dumps(to_json(event), ensure_ascii=False)
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
    """Send each event to every sink; a sink that raises is logged once and then skipped for that event only."""

    def __init__(self, sinks: list[Sink]):
        self.sinks = sinks
        self._warned: set[int] = set()

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception as exc:  # a broken sink must not stop the run
                if id(sink) not in self._warned:
                    self._warned.add(id(sink))
                    log.warning("event sink %s failed: %s", type(sink).__name__, exc)

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                log.warning("closing sink %s failed: %s", type(sink).__name__, exc)
