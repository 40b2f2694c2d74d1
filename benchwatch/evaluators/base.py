"""What an evaluator is (the Evaluator base class, its Verdict) and the registry that builds one by name."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..datasets import Task
from ..registry import Registry


@dataclass(frozen=True)
class Verdict:
    verdict: str  # PASS | FAIL | ERROR
    detail: dict[str, Any] = field(default_factory=dict)  # expected vs actual, score, threshold, limit...

    @property
    def passed(self) -> bool:
        return self.verdict == "PASS"


class Evaluator:
    """What every evaluator is: `evaluate` it must write; the optional capabilities below it may override, so the
    runner calls them on every evaluator instead of probing for them."""
    name: str

    def evaluate(self, task: Task, response: str) -> Verdict:
        raise NotImplementedError

    def require_full_isolation(self, dataset: str) -> None:
        """`sandbox: require`: raise EvaluatorError if this evaluator would run code without full isolation."""

    def bind(self, models: list[Any], runner: Any, factory: Any) -> None:
        """Called once before the run with the config's models, its runner section and the backend factory
        (an evaluator that calls a model of the config, such as llm_judge)."""

    def close(self) -> None:
        """Called once when the run ends, whatever its outcome."""


class EvaluatorError(ValueError):
    pass


# The built-in evaluator modules register themselves when the registry first looks a name up (imported then,
# not here: they import this module).
EVALUATORS: Registry[type] = Registry("evaluator", builtins=(
    "benchwatch.evaluators.text", "benchwatch.evaluators.numeric", "benchwatch.evaluators.extractive_qa",
    "benchwatch.evaluators.code_execution", "benchwatch.evaluators.multiple_choice",
    "benchwatch.evaluators.llm_judge"))
register = EVALUATORS.register


def get_evaluator(name: str, options: dict[str, Any] | None = None) -> Evaluator:
    try:
        cls = EVALUATORS.get(name)
    except KeyError as exc:
        raise EvaluatorError(exc.args[0]) from None
    for key, value in (options or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and _must_be_positive(key, value):
            raise EvaluatorError(f"evaluator {name!r}: option {key}: {value!r} must be above 0")
    try:
        return cls(dict(options or {}))
    except (TypeError, ValueError) as exc:  # ValueError: float('x') for a number option
        raise EvaluatorError(f"evaluator {name!r}: bad options {options}: {exc}") from None


def _must_be_positive(key: str, value: float) -> bool:
    """Limits (timeouts, sizes, counts) can't be negative or zero; tolerances can't be negative."""
    if key.endswith("_tol"):
        return value < 0
    return (key.endswith(("_s", "_mb", "_bytes")) or key.startswith("max_")) and value <= 0


def available() -> list[str]:
    return EVALUATORS.names()
