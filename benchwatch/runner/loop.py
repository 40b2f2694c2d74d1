"""The run loop: walks models x datasets x tasks, opens each model's backend, runs its tasks one after another
or through N slots (slots.py), and publishes the run's events. One task's attempts live in attempt.py."""
from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .. import events as ev
from ..backends import Backend, BackendError, make_backend
from ..config import Config, DatasetConfig, ModelConfig
from ..datasets import Task, load_dataset
from ..evaluators import Evaluator, get_evaluator
from ..store import Store
from .attempt import TaskAttempts
from .committer import Committer
from .sinks import SafeFanout, Sink
from .slots import RateLimiter, run_slots

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    run_id: str
    status: str
    counts: dict[str, int]


class Runner(TaskAttempts):
    def __init__(self, cfg: Config, store: Store, sinks: list[Sink] | None = None,
                 backend_factory: Callable[[ModelConfig], Backend] = make_backend,
                 clock: Callable[[], float] = time.monotonic, config_path: str | None = None):
        self.cfg, self.store, self.clock = cfg, store, clock
        self.out = SafeFanout(list(sinks or []))
        self.backend_factory = backend_factory
        self.config_path = config_path
        self.stop_requested = threading.Event()
        self.run_id = ""
        # Continues across resumed sessions: a microsecond clock base keeps seq increasing per run_id.
        self._seq = time.time_ns() // 1000
        self._emit_lock = threading.Lock()  # seq order = emit order, with several slots emitting
        self._local = threading.local()  # the attempt each slot (thread) is running
        self._limiter: RateLimiter | None = None
        self._slots = 1  # attempts in flight at most for the model being run
        # With several slots: the thread that commits and announces results (committer.py), and what to do when
        # a result cannot be stored (stop the run). None: each attempt commits and announces its own.
        self._committer: Committer | None = None
        self._on_store_failure: Callable[[BaseException], None] | None = None
        self._backend_state: dict[str, str] = {}  # model -> last published connection state

    @property
    def _current(self) -> tuple[str, str, str, int] | None:
        return getattr(self._local, "current", None)

    @_current.setter
    def _current(self, value: tuple[str, str, str, int] | None) -> None:
        self._local.current = value

    # ---- events
    def emit(self, cls: type, **fields: Any) -> None:
        """Publish an event now; or, from a slot whose last result is not announced yet, after that result
        (committer.py: a slot's events stay in its own order)."""
        backlog = getattr(self._local, "backlog", None)
        committer = self._committer
        if committer is not None and backlog is not None and backlog.waiting:
            event = cls(run_id=self.run_id, seq=0, **fields)  # made now: its time is the moment it happened
            committer.then(lambda: self._publish(event), backlog)  # the slot's next events queue behind it too
            return
        self.emit_now(cls, **fields)

    def emit_now(self, cls: type, **fields: Any) -> None:
        """Publish an event now, whatever the calling slot has waiting."""
        with self._emit_lock:
            self._seq += 1
            self.out.emit(cls(run_id=self.run_id, seq=self._seq, **fields))

    def _publish(self, event: Any) -> None:
        with self._emit_lock:
            self._seq += 1
            self.out.emit(event.model_copy(update={"seq": self._seq}))

    def _task_event(self, cls: type, **fields: Any) -> None:
        model, dataset, task_id, attempt = self._current  # type: ignore[misc]
        self.emit(cls, model=model, dataset=dataset, task_id=task_id, attempt=attempt, **fields)

    # ---- the run
    def plan(self) -> list[tuple[DatasetConfig, list[Task]]]:
        return [(d, load_dataset(d, self.cfg.base_dir)) for d in self.cfg.datasets]

    def run(self, resume_run_id: str | None = None) -> RunOutcome:
        datasets = self.plan()  # bad datasets fail here, before a run row exists
        evaluators = {d.name: get_evaluator(d.evaluator, d.options) for d, _ in datasets}
        if self.cfg.sandbox == "require":  # refuse before a run row exists (EvaluatorError: the CLI's config error)
            for d, _ in datasets:
                evaluators[d.name].require_full_isolation(d.name)
        for evaluator in evaluators.values():  # evaluators that call a model of the config (llm_judge)
            evaluator.bind(self.cfg.models, self.cfg.runner, self.backend_factory)
        done: dict[tuple[str, str, str], str] = {}
        attempts_made: dict[tuple[str, str, str], int] = {}
        if resume_run_id:
            self.run_id = resume_run_id
            done = self.store.final_verdicts(resume_run_id)
            attempts_made = self.store.attempts_made(resume_run_id)
            self.store.set_run_status(resume_run_id, "running")
        else:
            host = {"hostname": platform.node(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()}
            self.run_id = self.store.create_run(self.cfg.model_dump(mode="json"), self.config_path, host)
        plan = ev.RunPlan(models=[ev.PlanModel(name=m.name, backend=m.backend,
                                               concurrency=self.cfg.concurrency_for(m))
                                  for m in self.cfg.benchmarked_models],
                          datasets=[ev.PlanDataset(name=d.name, evaluator=d.evaluator, task_ids=[t.id for t in ts])
                                    for d, ts in datasets],
                          cooling_s=self.cfg.runner.cooling_s)
        self.store.save_plan(self.run_id, plan)  # stored with the run: a restarted server rebuilds from it
        self._seq += 1
        self.out.emit(plan.run_started(
            self.run_id, self._seq, resumed=bool(resume_run_id), config=self.cfg.model_dump(mode="json"),
            done=[ev.DoneTask(model=m, dataset=d, task_id=t, verdict=v) for (m, d, t), v in done.items()]))
        status, detail = "finished", ""
        rate = self.cfg.runner.max_requests_per_s
        self._limiter = RateLimiter(rate, self.clock) if rate else None
        try:
            for ordinal, mcfg in enumerate(self.cfg.benchmarked_models, start=1):
                self._run_model(mcfg, ordinal, datasets, evaluators, done, attempts_made)
        except KeyboardInterrupt:
            status, detail = "interrupted", "stopped by the user (Ctrl-C)"
        except Exception as exc:  # the harness itself failed: keep what is stored, say why
            log.exception("run failed")
            status, detail = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            for evaluator in evaluators.values():
                evaluator.close()
            self.store.set_run_status(self.run_id, status, detail)
            self.emit(ev.RunFinished, status=status, detail=detail)
            self.out.close()
        counts: dict[str, int] = {}
        for v in self.store.final_verdicts(self.run_id).values():
            counts[v] = counts.get(v, 0) + 1
        return RunOutcome(self.run_id, status, counts)

    def _run_model(self, mcfg: ModelConfig, ordinal: int, datasets: list[tuple[DatasetConfig, list[Task]]],
                   evaluators: dict[str, Evaluator], done: dict[tuple[str, str, str], str],
                   attempts_made: dict[tuple[str, str, str], int]) -> None:
        slots = self._slots = self.cfg.concurrency_for(mcfg)
        self.emit(ev.ModelStarted, model=mcfg.name, backend=mcfg.backend, ordinal=ordinal,
                  total=len(self.cfg.benchmarked_models), concurrency=slots)
        backend: Backend | None = None
        try:
            if mcfg.backend == "embedded":
                self.emit(ev.BackendState, model=mcfg.name, state="loading", detail="loading the GGUF model")
            try:
                backend = self.backend_factory(mcfg)
            except BackendError as exc:
                backend = None
                self._set_backend_state(mcfg.name, "disconnected", str(exc))
            if backend is not None:
                self._check_connection(mcfg.name, backend)
            if slots > 1:
                self.out.in_background(True)  # the slots hand events over; one thread delivers them in order
                try:
                    run_slots(self, slots, mcfg, backend, datasets, evaluators, done, attempts_made)
                finally:
                    self.out.in_background(False)
            else:
                for dcfg, tasks in datasets:
                    self.emit(ev.DatasetStarted, model=mcfg.name, dataset=dcfg.name, task_ids=[t.id for t in tasks])
                    for task in tasks:
                        key = (mcfg.name, dcfg.name, task.id)
                        if key in done:
                            continue
                        self._run_task(mcfg, backend, dcfg, task, evaluators[dcfg.name], attempts_made.get(key, 0))
                    self.emit(ev.DatasetFinished, model=mcfg.name, dataset=dcfg.name)
        finally:
            if backend is not None:
                backend.close()
        self.emit(ev.ModelFinished, model=mcfg.name)

    # ---- connection state (published on change: at start, when an attempt cannot reach the backend, on recovery)
    def _set_backend_state(self, model: str, state: str, detail: str) -> None:
        if self._backend_state.get(model) != state:
            self._backend_state[model] = state
            self.emit(ev.BackendState, model=model, state=state, detail=detail)

    def _check_connection(self, model: str, backend: Backend) -> tuple[str, str]:
        try:
            state, detail = backend.connect(self.cfg.runner.connect_timeout_s)
        except BackendError as exc:
            state, detail = "disconnected", str(exc)
        self._set_backend_state(model, state, detail)
        return state, detail
