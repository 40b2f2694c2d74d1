"""A scripted backend: a stand-in for tests and the runner-overhead benchmark (no model behind it).

Options (config `options`): answers {task prompt substring or '*': text}, token_delay_s, first_token_delay_s,
fail_times (raise BackendError on the first N calls), chunk: characters per streamed piece.
"""
from __future__ import annotations

import time
from typing import Any, Iterator

from ..config import ModelConfig
from .base import BackendError, GenParams, Item, Message, Stats, Text, render_messages


class ScriptedBackend:
    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        o: dict[str, Any] = cfg.options
        self.answers: dict[str, str] = o.get("answers", {"*": "42"})
        self.token_delay_s = float(o.get("token_delay_s", 0.0))
        self.first_token_delay_s = float(o.get("first_token_delay_s", 0.0))
        self.fail_times = int(o.get("fail_times", 0))
        self.chunk = int(o.get("chunk", 4))
        self.calls = 0

    def connect(self) -> tuple[str, str]:
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
