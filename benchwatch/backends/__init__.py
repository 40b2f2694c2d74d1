"""Model backends, chosen by the config's `backend` field. Imported lazily: a run pays only for what it uses."""
from __future__ import annotations

import importlib

from ..config import ModelConfig
from .base import Backend, BackendError, BackendThrottled, BackendUnavailable, GenParams, Stats, Text

_MODULES = {
    "embedded": ("embedded", "EmbeddedBackend"),
    "scripted": ("scripted", "ScriptedBackend"),
    "ollama": ("ollama", "OllamaBackend"),
    "openai": ("openai_compat", "OpenAIBackend"),
    "reference": ("reference", "ReferenceBackend"),
}


def make_backend(cfg: ModelConfig) -> Backend:
    module_name, cls_name = _MODULES[cfg.backend]
    try:
        module = importlib.import_module(f"{__name__}.{module_name}")
    except ModuleNotFoundError as exc:
        raise BackendError(f"backend {cfg.backend!r} is not available: {exc}") from None
    return getattr(module, cls_name)(cfg)


__all__ = ["Backend", "BackendError", "BackendThrottled", "BackendUnavailable", "GenParams", "Stats", "Text", "make_backend"]
