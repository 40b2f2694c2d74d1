"""One host sample: CPU %, open FDs of this process, disk MB/s (read + write), GPU % and temperature."""
from __future__ import annotations

import time
from typing import Any, Callable

import psutil

from ..events import HOST_METRICS
from .nvml import NvmlReader

METRICS = HOST_METRICS  # what a sample holds: the host's part of events.TELEMETRY_METRICS


class HostSampler:
    def __init__(self, nvml: NvmlReader | None = None, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.nvml = nvml or NvmlReader()
        self._proc = psutil.Process()
        psutil.cpu_percent(None)  # prime: the first call measures nothing and returns 0.0
        self._disk_prev = self._disk_bytes()

    def _disk_bytes(self) -> tuple[float, int | None, str | None]:
        try:
            io = psutil.disk_io_counters()
        except Exception as exc:
            return self.clock(), None, f"disk counters unreadable: {exc}"
        if io is None:
            return self.clock(), None, "no disk I/O counters on this host"
        return self.clock(), io.read_bytes + io.write_bytes, None

    def _disk_mbps(self) -> tuple[float | None, str | None]:
        prev_t, prev_b, _ = self._disk_prev
        now_t, now_b, why = self._disk_prev = self._disk_bytes()
        if now_b is None:
            return None, why
        if prev_b is None or now_t <= prev_t:
            return None, "first disk sample (a rate needs two)"
        return round(max(now_b - prev_b, 0) / (now_t - prev_t) / 1e6, 3), None

    def sample(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        unavailable: dict[str, str] = {}
        try:
            values["cpu_pct"] = psutil.cpu_percent(None)
        except Exception as exc:
            values["cpu_pct"], unavailable["cpu_pct"] = None, f"CPU load unreadable: {exc}"
        try:
            values["fds"] = self._proc.num_fds()
        except Exception as exc:  # AccessDenied, or a platform without num_fds
            values["fds"], unavailable["fds"] = None, f"open FDs unreadable: {exc}"
        values["disk_mbps"], why = self._disk_mbps()
        if why:
            unavailable["disk_mbps"] = why
        try:
            gpu, gpu_why = self.nvml.read()
        except Exception as exc:  # never let the GPU take the other metrics down
            gpu, gpu_why = {"gpu_pct": None, "gpu_temp_c": None}, {"gpu_pct": str(exc), "gpu_temp_c": str(exc)}
        values.update(gpu)
        unavailable.update(gpu_why)
        values["unavailable"] = unavailable
        return values

    def close(self) -> None:
        self.nvml.close()
