"""Model backends, chosen by the config's `backend` field. Imported lazily: a run pays only for what it uses."""
from __future__ import annotations

from ..config import ModelConfig
from .base import BACKENDS, Backend, BackendError, BackendThrottled, BackendUnavailable, GenParams, Stats, Text


def make_backend(cfg: ModelConfig) -> Backend:
    try:
        cls = BACKENDS.get(cfg.backend)
    except ModuleNotFoundError as exc:
        raise BackendError(f"backend {cfg.backend!r} is not available: {exc}") from None
    return cls(cfg)


__all__ = ["BACKENDS", "Backend", "BackendError", "BackendThrottled", "BackendUnavailable", "GenParams", "Stats",
           "Text", "make_backend"]
