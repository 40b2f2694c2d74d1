"""The runner: walks models x datasets x tasks, times each stage, evaluates, stores, and publishes events.

Per attempt: cooling pause -> prompt sent (Thinking: generating, nothing visible yet) -> first visible token
(Streaming; TTFT) -> Evaluating -> result row committed -> Done. Every time comes from one monotonic clock.

With `runner.concurrency` N > 1 (remote backends), a model's tasks flow in plan order through N slots, each a
thread running the same attempt code (slots.py); with 1, tasks run one after another in this thread, as before.
"""
from .loop import RunOutcome, Runner

__all__ = ["RunOutcome", "Runner"]
