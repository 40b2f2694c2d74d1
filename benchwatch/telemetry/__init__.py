"""Host telemetry: psutil for CPU / FDs / disk, NVML for the GPU. A metric that can't be read is None with a
reason (never a fake 0, never a crash) and is tried again later."""
from .sampler import HostSampler, METRICS

__all__ = ["HostSampler", "METRICS"]
