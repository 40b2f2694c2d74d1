"""The reference backend: answers every task with its reference answer, streamed like a model.

It checks a dataset and its evaluator before any GPU time is spent: a run on it must be 100 % PASS. The answer
is HumanEval's canonical solution (a code task's `expected`), the first gold answer of a list, or `expected`
as text. The runner hands it the task with `set_task` before each attempt.

Options (config `options`): token_delay_s (pause between streamed pieces; default 0).
"""
from __future__ import annotations

import json
import re
import threading
import time
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field

from ..config import ModelConfig
from ..datasets import Task
from .base import Backend, BackendError, GenParams, Item, Message, Stats, Text, render_messages


class ReferenceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token_delay_s: float = Field(default=0.0, ge=0)


def reference_answer(task: Task) -> str:
    expected: Any = task.expected
    if expected is None:
        raise BackendError(f"task {task.id}: no reference answer ('expected' is empty)")
    if isinstance(expected, list):
        if not expected:
            raise BackendError(f"task {task.id}: no reference answer ('expected' is an empty list)")
        expected = expected[0]
    if isinstance(expected, str):
        return expected
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        return str(expected)
    return json.dumps(expected)


class ReferenceBackend(Backend):
    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.token_delay_s = ReferenceOptions.model_validate(cfg.options).token_delay_s
        self._slot = threading.local()  # the task handed over by each runner slot (thread)

    @property
    def task(self) -> Task | None:
        return getattr(self._slot, "task", None)

    def connect(self, timeout_s: float = 0.0) -> tuple[str, str]:
        return "connected", "reference answers (no model behind it)"

    def render_prompt(self, messages: list[Message]) -> str:
        return render_messages(messages)

    def set_task(self, task: Task | None) -> None:
        self._slot.task = task

    def stream(self, messages: list[Message], params: GenParams) -> Iterator[Item]:
        task = self.task
        if task is None or task.prompt != messages[-1]["content"]:
            raise BackendError("reference backend: the runner did not hand over this prompt's task")
        answer = reference_answer(task)
        # Word-sized pieces that join back to the exact answer (code indentation included).
        pieces = [p for p in re.split(r"(?<=\s)(?=\S)", answer) if p]
        for piece in pieces:
            yield Text(piece, kind="visible")
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
        yield Stats(prompt_tokens=len(messages[-1]["content"].split()), completion_tokens=len(pieces),
                    server={"backend": "reference"})

    def close(self) -> None:
        self.set_task(None)
