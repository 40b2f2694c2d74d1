"""Concurrency: a model's tasks flow through N slots, and an optional cap on the request rate.

Each slot is a thread that takes the next task in plan order (across the model's datasets) and runs it with the
runner's own attempt code: cooling before each task, retries waiting their back-off in the slot, a 429/503 with
Retry-After waited in the slot. A slot hands each result to one committing thread (committer.py), which stores
it and only then announces it, and goes on to its next task. The thread that called `run_slots` only waits; a
Ctrl-C there stops every slot: each in-flight request's socket is cut, the attempts are abandoned (nothing stored
for them; results already handed over are stored) and the run ends interrupted. `--resume` runs the rest.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from .. import events as ev
from ..backends import http as http_transport
from .committer import Committer

if TYPE_CHECKING:
    from .loop import Runner

log = logging.getLogger(__name__)
STOP_GRACE_S = 5.0  # how long Ctrl-C waits for slots to let go (a slot in an evaluator may take this long)


class RateLimiter:
    """At most `rate` requests per second across every slot: each request gets the next free send time, spaced
    1/rate apart (no bursts). A slot waits for its time in the Cooling stage."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / rate
        self.clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for this request's send time; False if `stop` was set meanwhile."""
        with self._lock:
            now = self.clock()
            at = max(now, self._next)
            self._next = at + self.interval
        wait = at - now
        return not (wait > 0 and stop.wait(wait))


def run_slots(runner: "Runner", n: int, mcfg: Any, backend: Any, datasets: list[tuple[Any, list[Any]]],
              evaluators: dict[str, Any], done: dict[tuple[str, str, str], str],
              attempts_made: dict[tuple[str, str, str], int]) -> None:
    """Run one model's remaining tasks with up to `n` in flight. Dataset events keep the sequential meaning:
    `dataset_started` when the first task of a dataset is taken (earlier datasets first), `dataset_finished`
    when its last task has its final verdict."""
    queue = [(dcfg, task) for dcfg, tasks in datasets for task in tasks
             if (mcfg.name, dcfg.name, task.id) not in done]
    left = {dcfg.name: 0 for dcfg, _ in datasets}
    for dcfg, _ in queue:
        left[dcfg.name] += 1
    order = [dcfg for dcfg, _ in datasets]
    task_ids = {dcfg.name: [t.id for t in tasks] for dcfg, tasks in datasets}
    started: set[str] = set()
    lock = threading.Lock()
    cursor = iter(queue)
    failures: list[BaseException] = []

    def start_through(name: str | None) -> None:
        """Announce every dataset up to `name` (all when None) not yet started; finish those with nothing left."""
        for dcfg in order:
            if dcfg.name not in started:
                started.add(dcfg.name)
                # Now, not behind the taking slot's last result: other slots may start its tasks at once.
                runner.emit_now(ev.DatasetStarted, model=mcfg.name, dataset=dcfg.name, task_ids=task_ids[dcfg.name])
                if left[dcfg.name] == 0:
                    runner.emit_now(ev.DatasetFinished, model=mcfg.name, dataset=dcfg.name)
            if dcfg.name == name:
                return

    def slot() -> None:
        while not runner.stop_requested.is_set():
            with lock:
                item = next(cursor, None)
                if item is None:
                    return
                dcfg, task = item
                start_through(dcfg.name)
            key = (mcfg.name, dcfg.name, task.id)
            try:
                runner._run_task(mcfg, backend, dcfg, task, evaluators[dcfg.name], attempts_made.get(key, 0))
            except KeyboardInterrupt:
                return
            except BaseException as exc:  # the harness failed: stop every slot, the run ends failed
                fail(exc)
                return
            with lock:
                left[dcfg.name] -= 1
                if left[dcfg.name] == 0:  # after the results of all its tasks, every one handed over by now
                    committer.then(lambda name=dcfg.name: runner.emit(ev.DatasetFinished, model=mcfg.name,
                                                                      dataset=name))

    def fail(exc: BaseException) -> None:
        failures.append(exc)
        runner.stop_requested.set()
        http_transport.abort_all(f"run stopped: {type(exc).__name__}: {exc}")

    committer = runner._committer = Committer(runner.store)
    runner._on_store_failure = fail  # a result the store refused: the run stops and fails, nothing announced
    threads = [threading.Thread(target=slot, name=f"benchwatch-slot-{i + 1}", daemon=True)
               for i in range(min(n, len(queue)))]
    try:
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.25)  # short joins: Ctrl-C reaches this thread between them
        except KeyboardInterrupt:
            stop_slots(runner, threads)
            raise
    finally:
        # Every result handed over is stored and announced before the run goes on or ends (a Ctrl-C included:
        # attempts that were complete keep their results).
        committer.close()
        runner._committer = runner._on_store_failure = None
    if failures:
        raise failures[0]
    if runner.stop_requested.is_set():  # SIGTERM's handler set it in a slot-less moment
        raise KeyboardInterrupt
    with lock:
        start_through(None)  # datasets with nothing left to run still get their started/finished events


def stop_slots(runner: "Runner", threads: list[threading.Thread]) -> None:
    """Ctrl-C: every slot lets go of its attempt (cut sockets, cooling and back-off waits end)."""
    runner.stop_requested.set()
    cut = http_transport.abort_all("stopped by the user (Ctrl-C)")
    log.info("stopping %d slot(s); %d request(s) cut", len(threads), cut)
    deadline = time.monotonic() + STOP_GRACE_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
