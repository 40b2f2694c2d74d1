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
        # The running model's own /metrics, when its config names one (docs/metrics.md: why here). Made at the
        # first such model: a server that never scrapes doesn't import the HTTP client and the parser at start.
        self.model_server: Any = None
        self._scraped_model: str | None = None
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

    def _model_server_sample(self) -> dict[str, Any] | None:
        from ..telemetry.model_server import active_target
        target = self.hub.read(active_target)
        model = target["model"] if target else None
        if model != self._scraped_model and self.model_server is not None:  # another model (or none) runs now:
            self.model_server.forget()  # its intervals start afresh
        self._scraped_model = model
        if target is None:
            return None
        if self.model_server is None:
            from ..telemetry.model_server import ModelServerScraper
            self.model_server = ModelServerScraper(timeout_s=min(0.8 * self.interval_s, 2.0))
        return self.model_server.sample(target["model"], target["url"], target["kind"], target["names"])

    def tick(self) -> ev.Telemetry | None:
        if self.bus is not None and not self.bus.holds_sampler():
            return None  # another worker samples this bus
        values = self.sampler.sample()
        unavailable = dict(values.pop("unavailable", {}))
        # The run's streaming speed is sampled with the host (the hub's speed meter, read under its lock) and
        # travels in the same event: with several workers on a bus, every one of them shows this one value.
        active, tps, why = self.hub.sample_speed()
        if why:
            unavailable["tps"] = why
        self._seq += 1
        event = ev.Telemetry(run_id=active or HOST_RUN_ID, seq=self._seq, tps=tps, unavailable=unavailable,
                             model_server=self._model_server_sample(),
                             **{k: values.get(k) for k in ev.HOST_METRICS})
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
