"""The `openai` backend: any OpenAI-compatible server (vLLM, llama.cpp's server, LM Studio, hosted APIs).

POST {base_url}/chat/completions with `stream: true`; the answer comes as server-sent events (`data: {json}`
lines, `data: [DONE]` at the end). `delta.content` may hold `<think>` tags (passed on raw for the runner's
ThinkSplitter); `delta.reasoning_content` (vLLM, llama.cpp, DeepSeek) and `delta.reasoning` (others) are
thinking. `stream_options.include_usage` asks for a last chunk with token counts where the server supports it.
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterator

from ..config import ModelConfig
from .base import Backend, BackendError, GenParams, Item, Message, Stats, render_messages
from .http import StreamedRequest, get_json, json_object, make_client, start_stream_worker


class OpenAIBackend(Backend):
    def __init__(self, cfg: ModelConfig):
        if not cfg.base_url:
            raise BackendError(f"model {cfg.name!r}: the openai backend needs models[].base_url "
                               "(e.g. http://127.0.0.1:8000/v1)")
        self.cfg = cfg
        self.base_url = cfg.base_url.rstrip("/")
        self.where = f"the server at {self.base_url}"
        self.client = make_client()
        start_stream_worker()

    def _headers(self) -> dict[str, str]:
        env = self.cfg.api_key_env
        if not env:
            return {}
        key = os.environ.get(env)
        if not key:
            raise BackendError(f"model {self.cfg.name!r}: environment variable {env} (models[].api_key_env) is "
                               "not set")
        return {"Authorization": f"Bearer {key}"}

    def connect(self, timeout_s: float = 10.0) -> tuple[str, str]:
        status, body = get_json(self.client, f"{self.base_url}/models", timeout_s, self.where,
                                self._headers())
        if status in (401, 403):
            raise BackendError(f"{self.where} refused the API key from {self.cfg.api_key_env} (HTTP {status})")
        if status == 200 and isinstance(body, dict) and isinstance(body.get("data"), list):
            ids = [m.get("id") for m in body["data"] if isinstance(m, dict)]
            return "connected", f"{self.where}: {len(ids)} model(s) served"
        return "connected", f"{self.where} is reachable (GET /models: HTTP {status})"

    def render_prompt(self, messages: list[Message]) -> str:
        return render_messages(messages)  # the server applies the model's chat template

    def request_body(self, messages: list[Message], params: GenParams) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.cfg.remote_name, "messages": messages, "stream": True,
                                "stream_options": {"include_usage": True}, "max_tokens": params.max_tokens,
                                "temperature": params.temperature, "seed": params.seed}
        for key, value in self.cfg.options.items():  # extra request fields; null removes one of ours
            if value is None:
                body.pop(key, None)
            else:
                body[key] = value
        return body

    def _status_error(self, status: int, text: str) -> BackendError:
        message = text.strip()[:300] or "no details"
        try:
            err = json.loads(text).get("error")
            message = err.get("message", message) if isinstance(err, dict) else (err or message)
        except (ValueError, AttributeError):
            pass
        hint = f": is {self.cfg.remote_name!r} the name the server knows (models[].model)?" if status == 404 else ""
        return BackendError(f"{self.where} answered HTTP {status}: {message}{hint}")

    def stream(self, messages: list[Message], params: GenParams) -> Iterator[Item]:
        req = StreamedRequest(f"{self.base_url}/chat/completions", self.request_body(messages, params),
                              params, self.where, self._status_error, self._headers())
        usage: dict[str, Any] = {}
        server: dict[str, Any] = {}
        finished = False
        for line in req.lines():
            if not line.startswith("data:"):
                continue  # blank separators, `event:`/`id:` fields and `:` keep-alive comments
            data = line[5:].strip()
            if data == "[DONE]":
                finished = True  # the body ends here; reading on to its end keeps the HTTP exchange clean
                continue
            chunk = json_object(data, self.where)
            if chunk.get("error"):
                err = chunk["error"]
                raise BackendError(f"{self.where} reported an error mid-answer: "
                                   f"{err.get('message', err) if isinstance(err, dict) else err}")
            if isinstance(chunk.get("usage"), dict):
                usage = chunk["usage"]
            if isinstance(chunk.get("timings"), dict):  # llama.cpp's own server reports its timers here
                server["timings"] = chunk["timings"]
            for choice in chunk.get("choices") or []:
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                thinking = delta.get("reasoning_content") or delta.get("reasoning") or ""
                content = delta.get("content") or ""
                if thinking or content:
                    req.token()
                if thinking:
                    yield req.piece(thinking, "thinking")  # one streamed chunk is one token on these servers
                if content:
                    yield req.piece(content, "raw")
                if choice.get("finish_reason"):
                    server["finish_reason"] = choice["finish_reason"]
        if not finished:
            raise BackendError(f"{self.where} ended the stream without `data: [DONE]` (truncated stream)")
        if usage:
            server["usage"] = usage
        yield Stats(prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"),
                    server=server)

    def close(self) -> None:
        self.client.close()
