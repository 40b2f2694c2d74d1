"""A scripted backend: a stand-in for tests and the runner-overhead benchmark (no model behind it).

Options (config `options`): answers {task prompt substring or '*': text}, token_delay_s, first_token_delay_s,
fail_times (raise BackendError on the first N calls), chunk: characters per streamed piece.
"""
from __future__ import annotations

import time
from typing import Iterator

from pydantic import BaseModel, ConfigDict, Field

from ..config import ModelConfig
from .base import Backend, BackendError, GenParams, Item, Message, Stats, Text, render_messages


class ScriptedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, str] = Field(default_factory=lambda: {"*": "42"})
    token_delay_s: float = Field(default=0.0, ge=0)
    first_token_delay_s: float = Field(default=0.0, ge=0)
    fail_times: int = Field(default=0, ge=0)
    chunk: int = Field(default=4, ge=1)


class ScriptedBackend(Backend):
    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        o = ScriptedOptions.model_validate(cfg.options)
        self.answers: dict[str, str] = o.answers
        self.token_delay_s = o.token_delay_s
        self.first_token_delay_s = o.first_token_delay_s
        self.fail_times = o.fail_times
        self.chunk = o.chunk
        self.calls = 0

    def connect(self, timeout_s: float = 0.0) -> tuple[str, str]:
        return "connected", "scripted stand-in"

    def render_prompt(self, messages: list[Message]) -> str:
        return render_messages(messages)

    def _answer(self, prompt: str) -> str:
        for key, text in self.answers.items():
            if key != "*" and key in prompt:
                return text
        return self.answers.get("*", "")

    def stream(self, messages: list[Message], params: GenParams) -> Iterator[Item]:
        self.calls += 1
        if self.calls <= self.fail_times:
            raise BackendError(f"scripted failure {self.calls} of {self.fail_times}")
        answer = self._answer(messages[-1]["content"])
        if self.first_token_delay_s:
            time.sleep(self.first_token_delay_s)
        pieces = [answer[i:i + self.chunk] for i in range(0, len(answer), self.chunk)]
        for piece in pieces:
            yield Text(piece)
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
        yield Stats(prompt_tokens=len(messages[-1]["content"]) // 4, completion_tokens=len(pieces))

    def close(self) -> None:
        pass
