"""Evaluators turn (task, response) into a verdict with its detail.

PASS / FAIL is the model's verdict; ERROR is for the harness or backend failing (the runner sets it).
Each evaluator is registered by name; `get_evaluator(name, options)` builds one from the config.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..datasets import Task


@dataclass(frozen=True)
class Verdict:
    verdict: str  # PASS | FAIL | ERROR
    detail: dict[str, Any] = field(default_factory=dict)  # expected vs actual, score, threshold, limit...

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"


class Evaluator(Protocol):
    name: str

    def evaluate(self, task: Task, response: str) -> Verdict: ...


class EvaluatorError(ValueError):
    pass


_REGISTRY: dict[str, Callable[[dict[str, Any]], Evaluator]] = {}


def register(name: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        _REGISTRY[name] = cls
        cls.name = name
        return cls
    return wrap


def get_evaluator(name: str, options: dict[str, Any] | None = None) -> Evaluator:
    _load_builtins()
    if name not in _REGISTRY:
        raise EvaluatorError(f"unknown evaluator {name!r}; available: {sorted(_REGISTRY)}")
    for key, value in (options or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and _must_be_positive(key, value):
            raise EvaluatorError(f"evaluator {name!r}: option {key}: {value!r} must be above 0")
    try:
        return _REGISTRY[name](dict(options or {}))
    except (TypeError, ValueError) as exc:  # ValueError: float('x') for a number option
        raise EvaluatorError(f"evaluator {name!r}: bad options {options}: {exc}") from None


def _must_be_positive(key: str, value: float) -> bool:
    """Limits (timeouts, sizes, counts) can't be negative or zero; tolerances can't be negative."""
    if key.endswith("_tol"):
        return value < 0
    return (key.endswith(("_s", "_mb", "_bytes")) or key.startswith("max_")) and value <= 0


def available() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    # Imported lazily so each evaluator module registers itself without import cycles.
    from . import text, numeric  # noqa: F401
    try:
        from . import extractive_qa  # noqa: F401
    except ImportError:
        pass
    try:
        from . import code_execution  # noqa: F401
    except ImportError:
        pass
