"""Run the real Runner (real store file, real evaluator) against a stand-in server, collecting events."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from benchwatch import events as ev
from benchwatch.config import parse_config
from benchwatch.runner import Runner
from benchwatch.runner.sinks import MemorySink
from benchwatch.store import Store


class CallbackSink(MemorySink):
    """Keeps events and calls `on_event(event)` (e.g. to bring a stand-in server back at a chosen moment)."""

    def __init__(self, on_event: Callable[[Any], None] | None = None):
        super().__init__()
        self.on_event = on_event

    def emit(self, event: Any) -> None:
        super().emit(event)
        if self.on_event:
            self.on_event(event)


def run(tmp_path: Path, models: list[dict[str, Any]], ids: list[str], on_event=None, store_class=Store,
        **runner: Any):
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = parse_config({
        "store": f"sqlite:///{tmp_path / 'bench.db'}",
        "runner": {"cooling_s": 0, "attempts": 2, "retry_backoff_s": 0, "coalesce_ms": 0, "max_tokens": 64,
                   "first_token_timeout_s": 5, "task_timeout_s": 10, "connect_timeout_s": 2, **runner},
        "models": models,
        "datasets": [{"name": "arith", "source": "builtin:arithmetic", "evaluator": "numeric", "ids": ids}],
    })
    store = store_class(cfg.store)
    sink = CallbackSink(on_event)
    outcome = Runner(cfg, store, [sink]).run()
    return outcome, store.results(outcome.run_id), sink.events


def states(events: list[Any], model: str | None = None) -> list[tuple[str, str]]:
    return [(e.state, e.detail) for e in events if isinstance(e, ev.BackendState) and model in (None, e.model)]
