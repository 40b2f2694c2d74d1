"""Model-graded answers: another model of the config (any backend) grades the answer against a rubric.

Options: `judge` (required: the name of a model in the config's `models`), `rubric` (a Jinja2 template; names
`prompt`, `answer`, `expected`, `meta`, `task_id`; default: grade against the reference answer), `format`
(`pass_fail`, the default: the judge ends with "VERDICT: PASS" or "VERDICT: FAIL"; or `score`: "SCORE: N" from 0
to `max_score`, PASS when N >= `threshold`), `max_score` (10), `threshold` (7), `max_tokens` (512, the judge's
own limit). The instruction that states the format is appended to the rubric, so a rubric only says what to
grade.

The judge's prompt, its reasoning (its whole reply), the parsed score or verdict and its own timings and tokens
go into the detail (`judge_*`), never into the graded model's figures. A judge that cannot be reached, fails,
answers nothing or answers in no parseable format makes the verdict ERROR (the runner retries it), never PASS.
"""
from __future__ import annotations

import re
import time
from typing import Any, Callable

import jinja2

from ..backends import Backend, BackendError, GenParams, Stats
from ..backends.thinking import ThinkSplitter
from ..config import ModelConfig, RunnerConfig
from ..datasets import Task
from .base import Evaluator, EvaluatorError, Verdict, register

DEFAULT_RUBRIC = """You are grading an answer to a question against the reference answer.

Question:
{{ prompt }}

Reference answer:
{{ expected }}

Answer to grade:
{{ answer }}

Is the answer correct and consistent with the reference? Minor differences in wording do not matter."""

FORMATS = {
    "pass_fail": "Explain your reasoning in a few sentences, then end with one line that is exactly "
                 "\"VERDICT: PASS\" or \"VERDICT: FAIL\".",
    "score": "Explain your reasoning in a few sentences, then end with one line that is exactly \"SCORE: N\", "
             "where N is a whole number from 0 (wrong) to {max_score} (fully correct).",
}
_VERDICT = re.compile(r"VERDICT\s*[:=]?\s*[*_`\"']*\s*(PASS|FAIL)\b", re.I)
_SCORE = re.compile(r"SCORE\s*[:=]?\s*[*_`\"']*\s*(-?\d+(?:\.\d+)?)(?:\s*/\s*\d+(?:\.\d+)?)?", re.I)


class JudgeError(Exception):
    """The judge failed: the verdict is ERROR."""


def parse_verdict(reply: str, fmt: str, max_score: float, threshold: float) -> tuple[str, float | None]:
    """(PASS | FAIL, score) from the judge's reply; the last statement counts. Raises JudgeError."""
    if fmt == "pass_fail":
        found = _VERDICT.findall(reply)
        if not found:
            raise JudgeError("the judge's reply has no 'VERDICT: PASS' or 'VERDICT: FAIL' line")
        return found[-1].upper(), None
    found = _SCORE.findall(reply)
    if not found:
        raise JudgeError("the judge's reply has no 'SCORE: N' line")
    score = float(found[-1])
    if not 0 <= score <= max_score:
        raise JudgeError(f"the judge's score {found[-1]} is outside 0..{max_score:g}")
    return ("PASS" if score >= threshold else "FAIL"), score


@register("llm_judge")
class LLMJudge(Evaluator):
    def __init__(self, opts: dict[str, Any]):
        self.judge = opts.pop("judge", None)
        if not isinstance(self.judge, str) or not self.judge:
            raise TypeError("option 'judge' is required: the name of a model in the config's models")
        rubric = opts.pop("rubric", DEFAULT_RUBRIC)
        try:
            self.rubric = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(rubric)
        except jinja2.TemplateSyntaxError as exc:
            raise TypeError(f"rubric: template line {exc.lineno}: {exc.message}") from None
        self.format = opts.pop("format", "pass_fail")
        if self.format not in FORMATS:
            raise TypeError(f"format must be one of {sorted(FORMATS)}")
        self.max_score = float(opts.pop("max_score", 10))
        self.threshold = float(opts.pop("threshold", 7))
        if self.max_score <= 0 or not 0 <= self.threshold <= self.max_score:
            raise TypeError(f"need 0 <= threshold <= max_score and max_score > 0 "
                            f"(threshold {self.threshold:g}, max_score {self.max_score:g})")
        self.max_tokens = int(opts.pop("max_tokens", 512))
        if opts:
            raise TypeError(f"unknown option(s) {sorted(opts)} for llm_judge")
        self.model: ModelConfig | None = None
        self.runner: RunnerConfig | None = None
        self.factory: Callable[[ModelConfig], Backend] | None = None
        self.backend: Backend | None = None

    # The runner hands over the config's models and its backend factory before the run (see Runner.run).
    def bind(self, models: list[ModelConfig], runner: RunnerConfig, factory: Callable[[ModelConfig], Backend]) -> None:
        by_name = {m.name: m for m in models}
        if self.judge not in by_name:
            raise EvaluatorError(f"llm_judge: judge {self.judge!r} is not a model of the config; models: {sorted(by_name)}")
        self.model, self.runner, self.factory = by_name[self.judge], runner, factory

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def judge_prompt(self, task: Task, response: str) -> str:
        try:
            rubric = self.rubric.render(prompt=task.prompt, answer=response, expected=task.expected,
                                        meta=task.meta, task_id=task.id)
        except jinja2.UndefinedError as exc:
            raise JudgeError(f"rubric: {exc.message}") from None
        return rubric.rstrip() + "\n\n" + FORMATS[self.format].format(max_score=f"{self.max_score:g}")

    def evaluate(self, task: Task, response: str) -> Verdict:
        # Shown in this order on the monitor's Result panel: the judge's verdict first, its prompt last.
        head: dict[str, Any] = {"judge_model": self.judge}
        tail: dict[str, Any] = {"expected": task.expected, "answer": response.strip()[:500]}
        try:
            prompt = self.judge_prompt(task, response)
            tail["judge_prompt"] = prompt
            reply, usage = self._ask(prompt)
            tail.update(usage)
            head["judge_reasoning"] = reply.strip()
            verdict, score = parse_verdict(reply, self.format, self.max_score, self.threshold)
        except (JudgeError, BackendError) as exc:
            return Verdict("ERROR", {"reason": f"judge {self.judge!r} failed: {exc}", **head, **tail})
        head = {"judge_model": self.judge, "judge_verdict": verdict, **head}
        if score is not None:
            head.update(judge_score=score, max_score=self.max_score, threshold=self.threshold)
        return Verdict(verdict, {**head, **tail})

    def _ask(self, prompt: str) -> tuple[str, dict[str, Any]]:
        if self.model is None or self.runner is None or self.factory is None:
            raise JudgeError("the judge was not bound to the config's models (run it through the runner)")
        if self.backend is None:
            backend = self.factory(self.model)
            if hasattr(backend, "connect_timeout_s"):  # remote backends check their server under this limit
                backend.connect_timeout_s = self.runner.connect_timeout_s  # type: ignore[attr-defined]
            state, detail = backend.connect()
            if state == "disconnected":
                backend.close()
                raise JudgeError(f"cannot reach the judge: {detail}")
            self.backend = backend
        rc = self.runner
        params = GenParams(max_tokens=self.max_tokens, temperature=0.0, seed=rc.seed,
                           connect_timeout_s=rc.connect_timeout_s, first_token_timeout_s=rc.first_token_timeout_s,
                           total_timeout_s=rc.task_timeout_s)
        splitter, visible, thinking, stats = ThinkSplitter(), [], [], Stats()
        t0 = time.monotonic()
        first: float | None = None
        for item in self.backend.stream([{"role": "user", "content": prompt}], params):
            if isinstance(item, Stats):
                stats = item
                continue
            if time.monotonic() - t0 > rc.task_timeout_s:
                raise JudgeError(f"timed out after {rc.task_timeout_s:g} s (runner.task_timeout_s)")
            pieces = splitter.feed(item.text) if item.kind == "raw" else [(item.kind, item.text)]
            for kind, text in pieces:
                if kind == "thinking":
                    thinking.append(text)
                elif text:
                    first = first if first is not None else time.monotonic()
                    visible.append(text)
        for kind, text in splitter.flush():
            (thinking if kind == "thinking" else visible).append(text)
        reply = "".join(visible)
        usage = {"judge_latency_ms": round((time.monotonic() - t0) * 1000, 1),
                 "judge_ttft_ms": round((first - t0) * 1000, 1) if first is not None else None,
                 "judge_prompt_tokens": stats.prompt_tokens, "judge_completion_tokens": stats.completion_tokens}
        if thinking:
            usage["judge_thinking"] = "".join(thinking).strip()
        if not reply.strip():
            raise JudgeError("the judge answered nothing")
        return reply, usage


def judge_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every judge call of these result rows as a row of the judge's own model (dataset 'NAME (judge)',
    verdict: the judge's, ERROR where it failed), so the run's figures count the judge apart from the models
    it grades: calls, verdicts, TTFT and latency of the judge itself."""
    out = []
    for r in rows:
        d = r.get("detail") or {}
        if "judge_model" not in d:
            continue
        out.append({"model": d["judge_model"], "dataset": f"{r['dataset']} (judge)", "task_id": r.get("task_id"),
                    "final": True, "verdict": d.get("judge_verdict") or "ERROR", "ttft_ms": d.get("judge_ttft_ms"),
                    "latency_ms": d.get("judge_latency_ms"), "tokens_per_s": None,
                    "completion_tokens": d.get("judge_completion_tokens"),
                    # the load metrics (loadmetrics.py) of a judge call are not measured
                    "output_tokens": d.get("judge_completion_tokens"), "itl_ms": None, "tpot_ms": None,
                    "request_ms": d.get("judge_latency_ms")})
    return out
