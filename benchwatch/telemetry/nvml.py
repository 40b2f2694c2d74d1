"""GPU utilisation and die temperature through NVML (the `nvidia-ml-py` package, imported as pynvml).

NVML is initialised once and kept; any call may raise (no library, no driver, no GPU, no permission, MIG, a
deprecated call). Then the metric is None with the reason, and initialisation is retried after `retry_s`.
Temperature uses nvmlDeviceGetTemperatureV where the library has it (the older call is deprecated from CUDA 13)
and falls back to nvmlDeviceGetTemperature. With several GPUs: mean utilisation, hottest die.
"""
from __future__ import annotations

import importlib
import logging
import time
from typing import Any, Callable

log = logging.getLogger(__name__)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"NVML: {text}"


class NvmlReader:
    def __init__(self, retry_s: float = 30.0, clock: Callable[[], float] = time.monotonic,
                 load: Callable[[], Any] | None = None):
        self.retry_s, self.clock = retry_s, clock
        self._load = load or (lambda: importlib.import_module("pynvml"))
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._failed_reason: str | None = None
        self._retry_at = 0.0

    def _ensure(self) -> str | None:
        """Initialise NVML once; returns a reason when it can't be used (yet)."""
        if self._nvml is not None:
            return None
        if self._failed_reason is not None and self.clock() < self._retry_at:
            return self._failed_reason
        try:
            nvml = self._load()
        except ImportError as exc:
            return self._fail(f"NVML library missing ({exc})")
        try:
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
            if count < 1:
                nvml.nvmlShutdown()
                return self._fail("NVML: no GPU found")
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, _NoPermission, ...
            return self._fail(_reason(exc))
        self._nvml, self._failed_reason = nvml, None
        return None

    def _fail(self, reason: str) -> str:
        if reason != self._failed_reason:
            log.info("GPU telemetry unavailable: %s (retrying every %g s)", reason, self.retry_s)
        self._failed_reason, self._retry_at = reason, self.clock() + self.retry_s
        return reason

    def _temperature(self, h: Any) -> float:
        nvml = self._nvml
        if hasattr(nvml, "nvmlDeviceGetTemperatureV"):
            try:
                t = nvml.nvmlDeviceGetTemperatureV(h, nvml.NVML_TEMPERATURE_GPU)
                return float(getattr(t, "temperature", t))
            except Exception as exc:
                if "NotSupported" not in type(exc).__name__ and "FunctionNotFound" not in type(exc).__name__ \
                        and "VersionMismatch" not in type(exc).__name__:
                    raise
        return float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))

    def read(self) -> tuple[dict[str, float | None], dict[str, str]]:
        """({gpu_pct, gpu_temp_c}, {metric: reason} for those that are None)."""
        values: dict[str, float | None] = {"gpu_pct": None, "gpu_temp_c": None}
        reason = self._ensure()
        if reason is not None:
            return values, {"gpu_pct": reason, "gpu_temp_c": reason}
        unavailable: dict[str, str] = {}
        try:
            utils = [float(self._nvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in self._handles]
            values["gpu_pct"] = round(sum(utils) / len(utils), 1)
        except Exception as exc:
            unavailable["gpu_pct"] = _reason(exc)
        try:
            values["gpu_temp_c"] = max(self._temperature(h) for h in self._handles)
        except Exception as exc:
            unavailable["gpu_temp_c"] = _reason(exc)
        if len(unavailable) == 2 and all("Uninitialized" in r or "GpuIsLost" in r or "DriverNotLoaded" in r
                                         for r in unavailable.values()):
            self.close()  # the driver went away: initialise again on a later sample
        return values, unavailable

    def close(self) -> None:
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass
        self._nvml, self._handles = None, []
