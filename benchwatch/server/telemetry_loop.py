"""The 1 Hz host sampler loop: each sample becomes a Telemetry event published on the bus and folded through the
reducer (streams see it as a push on ["telemetry"]) and, while a run is active, a row in the store's telemetry
table for reports. With several workers on a Redis bus, only the one holding the sampler lease samples."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .. import events as ev
from ..store import Store
from .bus import BusUnavailable
from .hub import Hub

log = logging.getLogger(__name__)
HOST_RUN_ID = "host"  # run_id of samples taken while no run is active (the reducer doesn't look at it)


class TelemetryLoop:
    def __init__(self, hub: Hub, store: Store | None, bus: Any = None, sampler: Any = None, interval_s: float = 1.0):
        self.hub, self.store, self.interval_s = hub, store, interval_s
        self.bus = bus
        if sampler is None:
            from ..telemetry import HostSampler
            sampler = HostSampler()
        self.sampler = sampler
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples = 0
        self.errors = 0
        self._seq = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        return {"samples": self.samples, "errors": self.errors, "interval_s": self.interval_s}

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a sampler bug must not end telemetry for good
                self.errors += 1
                log.exception("telemetry sample failed")
            next_at += self.interval_s
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (a suspended machine): don't burst to catch up
                next_at, delay = time.monotonic(), 0
            self._stop.wait(delay)

    _speed_seen = 0  # state.last_speed.n at the previous sample
    _tokens_seen: tuple[int, float] | None = None  # (state.slots.tokens_out, monotonic time) at the previous sample

    def _aggregate_tps(self, s: dict) -> float:
        """Concurrency > 1: output tokens of every stream since the previous sample, per second."""
        count, now = s.get("slots", {}).get("tokens_out", 0), time.monotonic()
        prev, self._tokens_seen = self._tokens_seen, (count, now)
        if prev is None or now <= prev[1] or count < prev[0]:
            return 0.0
        return round((count - prev[0]) / (now - prev[1]), 3)

    def _tps(self) -> tuple[float | None, str | None]:
        s = self.hub.state
        run, cur = s["run"], s["current"]
        if run is None or run["status"] != "running":
            self._tokens_seen = None
            return None, "no run active"
        if s.get("slots", {}).get("n", 1) > 1:
            return self._aggregate_tps(s), None
        speed = s["last_speed"]
        finished_since, self._speed_seen = speed["n"] != self._speed_seen, speed["n"]
        if cur is not None and cur.get("stage") == "streaming":
            return cur.get("tps") or 0.0, None
        if finished_since and speed["tps"]:
            # An answer streamed and finished between two samples (SmolLM2 answers in ~0.2 s): report its speed
            # once, or a 1 Hz sampler would show a model answering at 75 tok/s as producing nothing.
            return speed["tps"], None
        return 0.0, None  # cooling, thinking or evaluating: no visible tokens flow right now

    def tick(self) -> ev.Telemetry | None:
        if self.bus is not None and not self.bus.holds_sampler():
            return None  # another worker samples this bus
        values = self.sampler.sample()
        unavailable = dict(values.pop("unavailable", {}))
        tps, why = self._tps()
        if why:
            unavailable["tps"] = why
        run = self.hub.state["run"]
        active = run["id"] if run is not None and run["status"] == "running" else None
        self._seq += 1
        event = ev.Telemetry(run_id=active or HOST_RUN_ID, seq=self._seq, tps=tps, unavailable=unavailable,
                             **{k: values.get(k) for k in ("cpu_pct", "fds", "disk_mbps", "gpu_pct", "gpu_temp_c")})
        if self.bus is not None:
            try:
                self.bus.publish([event])
            except BusUnavailable:  # said once by the bus's reader; the next tick tries again
                self.errors += 1
                return None
        else:
            self.hub.fold([event])
        self.samples += 1
        if active and self.store is not None:
            row = event.model_dump(mode="json", exclude={"v", "type", "seq"})
            try:
                self.store.add_telemetry([row])
            except Exception as exc:
                self.errors += 1
                log.warning("telemetry not stored: %s", exc)
        return event
