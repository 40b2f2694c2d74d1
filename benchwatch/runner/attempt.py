"""One task on one model: its attempts (retries), and each attempt's timing, streaming, evaluation, storing
and events. The Runner (loop.py) is built on this half; every time comes from the runner's one monotonic clock.

Per attempt: cooling pause -> prompt sent (Thinking: generating, nothing visible yet) -> first visible token
(Streaming; TTFT) -> Evaluating -> result row committed -> Done.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import events as ev
from .. import loadmetrics
from ..backends import Backend, BackendError, BackendThrottled, BackendUnavailable, GenParams, Stats, Text
from ..backends.base import render_messages
from ..backends.thinking import ThinkSplitter
from ..config import DatasetConfig, ModelConfig
from ..datasets import Task
from ..evaluators import Evaluator, Verdict
from .committer import SlotBacklog

THROTTLE_MAX = 20  # 429/503 + Retry-After answers waited through per attempt before it counts as an ERROR
# With N attempts in flight, each stream's token deltas are coalesced for at least N / this many seconds, so the
# whole run publishes about this many token events per second however many streams there are (one stream: the
# configured runner.coalesce_ms, as before).
TOKEN_EVENTS_PER_S = 200.0

log = logging.getLogger(__name__)


class TaskTimeout(BackendError):
    pass


@dataclass
class AttemptRecord:
    """Everything measured during one attempt (times in seconds from the attempt's start)."""
    prompt: str
    thinking: list[str] = field(default_factory=list)
    visible: list[str] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=dict)
    t_send: float | None = None
    t_first_any: float | None = None
    t_first_visible: float | None = None
    t_last_visible: float | None = None
    t_last_any: float | None = None
    t_end: float | None = None  # the stream's last byte
    throttled: int = 0  # 429/503 answers waited through
    first_visible_chunk_tokens: int = 0
    thinking_tokens: int = 0
    visible_tokens: int = 0
    stats: Stats | None = None

    @property
    def response(self) -> str:
        return "".join(self.visible)

    def tokens_per_s(self) -> float | None:
        """Visible tokens per second of streaming: tokens after the first visible chunk over the time from
        that chunk to the last one (the first chunk's own wait is TTFT, not speed)."""
        if self.t_first_visible is None or self.t_last_visible is None:
            return None
        span = self.t_last_visible - self.t_first_visible
        n = self.visible_tokens - self.first_visible_chunk_tokens
        return n / span if span > 0 and n > 0 else None

    def ms_since_send(self, t: float | None) -> float | None:
        return None if t is None or self.t_send is None else (t - self.t_send) * 1000.0


class Coalescer:
    """Batches token deltas of one kind for `window_s` so a token stream costs tens of events per second."""

    def __init__(self, window_s: float, flush: Callable[[str, str, int], None], clock: Callable[[], float]):
        self.window_s, self._flush, self.clock = window_s, flush, clock
        self.kind: str | None = None
        self.parts: list[str] = []
        self.n = 0
        self.since = 0.0

    def add(self, kind: str, text: str, n_tokens: int) -> None:
        if self.kind is not None and kind != self.kind:
            self.flush()
        if self.kind is None:
            self.kind, self.since = kind, self.clock()
        self.parts.append(text)
        self.n += n_tokens
        if self.clock() - self.since >= self.window_s:
            self.flush()

    def flush(self) -> None:
        if self.kind is not None and (self.parts or self.n):
            self._flush(self.kind, "".join(self.parts), self.n)
        self.kind, self.parts, self.n = None, [], 0


class TaskAttempts:
    """The attempt half of the Runner: it reads the Runner's config, store, clock and emitters."""

    def _messages(self, dcfg: DatasetConfig, task: Task) -> list[dict[str, str]]:
        system = task.system or dcfg.system_prompt or self.cfg.runner.system_prompt
        msgs = [{"role": "system", "content": system}] if system else []
        return msgs + [{"role": "user", "content": task.prompt}]

    def _run_task(self, mcfg: ModelConfig, backend: Backend | None, dcfg: DatasetConfig, task: Task,
                  evaluator: Evaluator, attempts_before: int) -> None:
        rc = self.cfg.runner
        attempt = attempts_before
        while attempt < max(rc.attempts, attempts_before + 1):
            attempt += 1
            final_allowed = attempt >= rc.attempts
            verdict = self._attempt(mcfg, backend, dcfg, task, evaluator, attempt, final_allowed)
            if verdict != "ERROR" or final_allowed:
                return

    def _attempt(self, mcfg: ModelConfig, backend: Backend | None, dcfg: DatasetConfig, task: Task,
                 evaluator: Evaluator, attempt: int, last_attempt: bool) -> str:
        rc = self.cfg.runner
        messages = self._messages(dcfg, task)
        self._current = (mcfg.name, dcfg.name, task.id, attempt)
        try:
            prompt = backend.render_prompt(messages) if backend else render_messages(messages)
        except Exception as exc:  # a template that fails to render is the harness's error
            prompt = render_messages(messages) + f"\n\n(prompt rendering failed: {exc})"
        rec = AttemptRecord(prompt=prompt)
        started_wall = time.time()
        t0 = self.clock()
        at = lambda: self.clock() - t0  # noqa: E731 - seconds since this attempt began

        def stage(name: str, now: float | None = None) -> None:
            now = at() if now is None else now
            for s in rec.stages.values():
                if s[1] < 0:
                    s[1] = now
            rec.stages[name] = [now, -1.0]
            self._task_event(ev.StageChanged, stage=name, at_s=round(now, 6))

        self._task_event(ev.TaskStarted, prompt=prompt)
        stage("cooling")
        cooling = rc.cooling_s + (rc.retry_backoff_s * 2 ** (attempt - 2) if attempt > 1 else 0.0)
        if cooling > 0 and self.stop_requested.wait(cooling):
            raise KeyboardInterrupt
        verdict: Verdict
        error: str | None = None
        try:
            if backend is None:
                raise BackendError(f"model {mcfg.name!r}: backend not connected")
            if self._backend_state.get(mcfg.name) == "disconnected":  # check again before each attempt
                state, detail = self._check_connection(mcfg.name, backend)
                if state == "disconnected":
                    raise BackendUnavailable(detail)
            backend.set_task(task)  # a backend answering from the task itself (reference) keeps it
            while True:
                if self._limiter is not None and not self._limiter.acquire(self.stop_requested):
                    raise KeyboardInterrupt
                stage("thinking")
                try:
                    self._generate(backend, messages, rec, at, stage)
                    break
                except BackendThrottled as exc:
                    # The server pushed back before answering: wait in this slot and send the same attempt
                    # again; not a model failure, not an attempt used up.
                    rec.throttled += 1
                    if rec.throttled > THROTTLE_MAX or self.stop_requested.is_set():
                        raise BackendError(f"{exc}; still throttled after {THROTTLE_MAX} waits") from None
                    rec.thinking, rec.visible, rec.thinking_tokens, rec.visible_tokens = [], [], 0, 0
                    rec.t_first_any = rec.t_first_visible = rec.t_last_visible = rec.t_last_any = None
                    stage("throttled")
                    if self.stop_requested.wait(exc.retry_after_s):
                        raise KeyboardInterrupt from None
            stage("evaluating")
            try:
                verdict = evaluator.evaluate(task, rec.response)
            except Exception as exc:  # the evaluator failing is the harness's ERROR, not the model's FAIL
                error = f"evaluator {dcfg.evaluator} failed: {type(exc).__name__}: {exc}"
                verdict = Verdict("ERROR", {"reason": error})
            if verdict.verdict == "ERROR" and error is None:  # an evaluator's own ERROR (a judge that failed)
                error = str(verdict.detail.get("reason") or f"evaluator {dcfg.evaluator} returned ERROR")
        except BackendError as exc:
            if self.stop_requested.is_set():  # Ctrl-C cut this request: abandon the attempt, store nothing
                raise KeyboardInterrupt from None
            error = str(exc) or type(exc).__name__
            if isinstance(exc, BackendUnavailable):
                self._set_backend_state(mcfg.name, "disconnected", error)
            if "evaluating" not in rec.stages:
                stage("evaluating")
            verdict = Verdict("ERROR", {"reason": error, "partial_response": rec.response[-500:]})
        final = verdict.verdict != "ERROR" or last_attempt
        end = at()
        for s in rec.stages.values():
            if s[1] < 0:
                s[1] = end
        rec.stages["done"] = [end, end]
        st = rec.stats or Stats()
        load = loadmetrics.attempt_metrics(rec.t_send, rec.t_first_any, rec.t_last_any, rec.t_end,
                                           rec.thinking_tokens + rec.visible_tokens, st.completion_tokens)
        server_stats = dict(st.server)
        if rec.throttled:
            server_stats["throttled"] = rec.throttled
        row = {
            "run_id": self.run_id, "model": mcfg.name, "backend": mcfg.backend, "dataset": dcfg.name,
            "task_id": task.id, "attempt": attempt, "prompt": prompt, "thinking": "".join(rec.thinking),
            "response": rec.response, "expected": task.expected, "verdict": verdict.verdict, "final": final,
            "detail": verdict.detail, "error": error, "stages": {k: [round(a, 6), round(b, 6)] for k, (a, b) in rec.stages.items()},
            "ttft_ms": rec.ms_since_send(rec.t_first_visible), "first_token_ms": rec.ms_since_send(rec.t_first_any),
            "latency_ms": rec.ms_since_send(end if rec.t_send is not None else None),
            "prompt_tokens": st.prompt_tokens, "completion_tokens": st.completion_tokens,
            "thinking_tokens": rec.thinking_tokens, "visible_tokens": rec.visible_tokens,
            "tokens_per_s": rec.tokens_per_s(), "backend_stats": server_stats, **load,
            "started_at": started_wall, "finished_at": time.time(),
        }
        model, dataset, task_id, attempt = self._current  # type: ignore[misc]
        ref = {"model": model, "dataset": dataset, "task_id": task_id, "attempt": attempt}
        finished = {"verdict": verdict.verdict, "final": final, "detail": _jsonable(verdict.detail), "error": error,
                    "ttft_ms": row["ttft_ms"], "first_token_ms": row["first_token_ms"],
                    "latency_ms": row["latency_ms"], "tokens_per_s": row["tokens_per_s"],
                    "completion_tokens": st.completion_tokens, "stages": row["stages"],
                    "output_tokens": load["output_tokens"], "itl_ms": load["itl_ms"], "tpot_ms": load["tpot_ms"]}

        def announce() -> None:
            self.emit(ev.StageChanged, **ref, stage="done", at_s=round(end, 6))
            self.emit(ev.TaskFinished, **ref, **finished)

        if self._committer is None:
            self.store.add_result(row)  # durable before announced
            announce()
        else:  # the committer stores it, then announces it; this slot goes on (committer.py)
            self._hand_to_committer(row, announce)
        return verdict.verdict

    def _hand_to_committer(self, row: dict[str, Any], announce: Callable[[], None]) -> None:
        backlog = getattr(self._local, "backlog", None)
        if backlog is None:
            backlog = self._local.backlog = SlotBacklog()
        on_failure = self._on_store_failure

        def stored(error: BaseException | None) -> None:
            if error is None:
                announce()
            elif on_failure is not None:  # not stored, so not announced: the run stops, as for a slot's error
                on_failure(error)

        self._committer.commit(row, stored, backlog)  # type: ignore[union-attr]

    def _generate(self, backend: Backend, messages: list[dict[str, str]], rec: AttemptRecord,
                  at: Callable[[], float], stage: Callable[..., None]) -> None:
        rc = self.cfg.runner
        window = rc.coalesce_ms / 1000.0
        if self._slots > 1:
            window = max(window, self._slots / TOKEN_EVENTS_PER_S)
        params = GenParams(max_tokens=rc.max_tokens, temperature=rc.temperature, seed=rc.seed,
                           connect_timeout_s=rc.connect_timeout_s, first_token_timeout_s=rc.first_token_timeout_s,
                           total_timeout_s=rc.task_timeout_s, batch_s=window)
        splitter = ThinkSplitter()

        def publish(kind: str, text: str, n: int) -> None:
            self._task_event(ev.TokenDelta, kind=kind, text=text, n_tokens=n,
                             tps=round(rec.tokens_per_s(), 3) if rec.tokens_per_s() else None)

        coalescer = Coalescer(window, publish, self.clock)

        def take(kind: str, text: str, n_tokens: int, now: float) -> None:
            if rec.t_first_any is None:
                rec.t_first_any = now
            if n_tokens:
                rec.t_last_any = now
            if kind == "thinking":
                rec.thinking.append(text)
                rec.thinking_tokens += n_tokens
            else:
                if rec.t_first_visible is None:
                    rec.t_first_visible = now
                    rec.first_visible_chunk_tokens = n_tokens
                    coalescer.flush()
                    stage("streaming", now)
                rec.visible.append(text)
                rec.visible_tokens += n_tokens
                rec.t_last_visible = now
            coalescer.add(kind, text, n_tokens)

        # A transport that sends and reads on its own thread stamps when the request left and when each piece
        # came off the socket (Text.sent / Text.arrived, time.monotonic): with many streams in flight this slot
        # gets there later, and that wait is the runner's, not the server's. Taken when the runner's clock is
        # that same clock (a test's fake clock keeps its own times).
        origin = self.clock() - at() if self.clock is time.monotonic else None
        rec.t_send = at()
        stream = backend.stream(messages, params)
        try:
            for item in stream:
                now = at()
                if origin is not None and isinstance(item, Text) and item.arrived is not None:
                    if item.sent is not None and rec.t_first_any is None:
                        rec.t_send = min(max(item.sent - origin, rec.t_send), now)
                    now = min(now, max(item.arrived - origin, rec.t_send))
                if self.stop_requested.is_set():
                    raise KeyboardInterrupt
                if now - rec.t_send > rc.task_timeout_s:
                    raise TaskTimeout(f"timed out: no complete answer after {rc.task_timeout_s:g} s "
                                      f"(runner.task_timeout_s)")
                if isinstance(item, Stats):
                    rec.stats = item
                    continue
                if rec.t_first_any is None and now - rec.t_send > rc.first_token_timeout_s:
                    raise TaskTimeout(f"timed out: first token after {now - rec.t_send:.1f} s, over "
                                      f"{rc.first_token_timeout_s:g} s (runner.first_token_timeout_s)")
                if rec.t_first_any is None and (item.text or item.n_tokens):
                    rec.t_first_any = now  # a token of any kind, a bare <think> tag included
                    model = self._current[0]  # type: ignore[index]
                    if self._backend_state.get(model) != "connected":  # e.g. the model finished loading
                        self._set_backend_state(model, "connected", "answering")
                if item.kind == "raw":
                    pieces = splitter.feed(item.text)
                    for i, (kind, text) in enumerate(pieces):  # the chunk's tokens go to its last piece
                        take(kind, text, item.n_tokens if i == len(pieces) - 1 else 0, now)
                    if not pieces:  # a tag alone: count its token where the splitter now is
                        rec.thinking_tokens += item.n_tokens if splitter.inside else 0
                elif item.text or item.n_tokens:
                    take(item.kind, item.text, item.n_tokens, now)
            rec.t_end = at()
            for kind, text in splitter.flush():
                take(kind, text, 0, rec.t_end)
        finally:
            coalescer.flush()
            close = getattr(stream, "close", None)
            if close:
                close()


def _jsonable(detail: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(detail, default=str))
