"""With several slots, results are committed and announced by one thread of their own, so a slot goes on to its
next task as soon as its answer is scored.

A slot that waited for its result's commit waited behind every other slot for the interpreter: the committing
thread gives it up inside SQLite and takes its turn to get it back. At 256 in flight that wait was ~110 ms at
the median, at every task, between one answer and the next request (bench/bench_concurrency.py).

Still, nothing is announced before it is stored: a result's `task_finished` (and its `done` stage) is emitted by
this thread after the commit. And each slot's events stay in the order the slot made them: while a slot has a
result not yet announced, its later events (its next task's `task_started`, stages, tokens) queue here behind that
result and are emitted after it (`Runner.emit` routes them). So at most N tasks are ever between `task_started`
and `task_finished`, as without this thread.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

from ..store import Store

log = logging.getLogger(__name__)


class SlotBacklog:
    """How many of one slot's results and events were handed to the committer, and how many it is done with
    (announced, published). While any is waiting, the slot's next events are handed over too, so none overtakes
    another. Each counter is written by one thread only (the slot; the committer): no update can be lost."""

    __slots__ = ("handed", "done")

    def __init__(self) -> None:
        self.handed = 0
        self.done = 0

    @property
    def waiting(self) -> bool:
        return self.handed != self.done


class Committer:
    def __init__(self, store: Store):
        self.store = store
        self._queue: "queue.SimpleQueue[tuple[dict[str, Any] | None, Callable[..., None], SlotBacklog | None] | None]" \
            = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="benchwatch-commits", daemon=True)
        self._thread.start()

    def commit(self, row: dict[str, Any], announce: Callable[[BaseException | None], None],
               backlog: SlotBacklog) -> None:
        """Store `row`, then call `announce(None)`, or `announce(error)` when it could not be stored (in this
        thread), after everything handed over before. Counted in the handing slot's `backlog`."""
        backlog.handed += 1
        self._queue.put((row, announce, backlog))

    def then(self, call: Callable[[], None], backlog: SlotBacklog | None = None) -> None:
        """Call `call` (in this thread) once everything handed over before it is stored and announced; counted in
        the handing slot's `backlog`, if given."""
        if backlog is not None:
            backlog.handed += 1
        self._queue.put((None, call, backlog))

    def close(self) -> None:
        """Store and announce everything handed over, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            items = [first]
            while items[-1] is not None:  # everything handed over meanwhile goes in the same transaction
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            closing = items[-1] is None
            work = [item for item in items if item is not None]
            rows = [row for row, _, _ in work if row is not None]
            try:
                errors = iter(self.store.add_results(rows) if rows else [])
            except Exception as exc:  # the store itself failed: every row of the batch has that error
                errors = iter([exc] * len(rows))
            for row, call, backlog in work:
                try:
                    call(next(errors)) if row is not None else call()
                except Exception:  # one announcement failing must not keep the others from being made
                    log.exception("announcing a result failed")
                finally:
                    if backlog is not None:
                        backlog.done += 1
            if closing:
                return
