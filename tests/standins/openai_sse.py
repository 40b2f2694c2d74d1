"""A STAND-IN for an OpenAI-compatible server, following the chat completions streaming format:

- GET /v1/models -> {"object": "list", "data": [{"id": ..., "object": "model"}]}
- POST /v1/chat/completions with "stream": true -> text/event-stream of `data: {chunk}` events, each chunk
  {"id", "object": "chat.completion.chunk", "created", "model", "choices": [{"index": 0, "delta": {...},
  "finish_reason": null}]}; the delta carries "role" first, then "reasoning_content" (thinking) or "content";
  a last choice with "finish_reason": "stop"; with stream_options.include_usage a chunk with "choices": [] and
  "usage" {"prompt_tokens", "completion_tokens", "total_tokens"}; then `data: [DONE]`.
- an unknown model: 404 {"error": {"message", "type": "invalid_request_error", "code": "model_not_found"}}
- a wrong API key (when `api_key` is set): 401.
- pushback (fault "pushback"): 429 {"error": {"type": "rate_limit_exceeded"}} or 503, with Retry-After.
Every request is answered in its own thread, so any number are served in parallel (`max_in_flight` says how many
were at once); delays are per behaviour.
The real third-party server test uses llama-cpp-python's server; this one exists for the faults.
"""
from __future__ import annotations

import json
import time
from typing import Any

from .base import StandinServer, arithmetic_answer, words


class StandinOpenAI(StandinServer):
    api_key: str | None = None

    def handle(self, h: Any, method: str, path: str, body: Any) -> None:
        if self.api_key and h.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.send_json(h, 401, {"error": {"message": "Incorrect API key provided.",
                                                     "type": "invalid_request_error", "code": "invalid_api_key"}})
        if method == "GET" and path == "/v1/models":
            return self.send_json(h, 200, {"object": "list", "data": [
                {"id": m, "object": "model", "owned_by": "standin"} for m in self.behaviours]})
        if method == "POST" and path == "/v1/chat/completions":
            self.record(path, body, h.headers)
            return self.chat(h, body)
        self.send_json(h, 404, {"error": {"message": f"not found: {path}", "type": "invalid_request_error"}})

    def chat(self, h: Any, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        b = self.behaviour(model)
        if b is None or b.fault == "not_found":
            return self.send_json(h, 404, {"error": {"message": f"The model `{model}` does not exist.",
                                                     "type": "invalid_request_error", "code": "model_not_found"}})
        if b.fault == "pushback":
            return self.pushback(h, b, {"error": {"message": "Rate limit reached, retry later.",
                                                  "type": "rate_limit_exceeded" if b.status == 429 else "overloaded"}})
        prompt = body["messages"][-1]["content"]
        answer = b.answer if b.answer is not None else arithmetic_answer(prompt)
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if b.think_tags and b.thinking:
            deltas += [{"content": t} for t in ["<think>", *words(b.thinking), "</think>"]]
        elif b.thinking:
            deltas += [{"reasoning_content": t} for t in words(b.thinking)]
        deltas += [{"content": t} for t in words(answer)]
        created = int(time.time())

        def event(obj: dict[str, Any]) -> bytes:
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return event({"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": created,
                          "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        events = [chunk(d) for d in deltas] + [chunk({}, "stop")]
        if (body.get("stream_options") or {}).get("include_usage"):
            n_prompt = sum(len(words(m["content"])) for m in body["messages"])
            events.append(event({"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": created,
                                 "model": model, "choices": [], "usage": {
                                     "prompt_tokens": n_prompt, "completion_tokens": len(deltas) - 1,
                                     "total_tokens": n_prompt + len(deltas) - 1}}))
        events.append(b"data: [DONE]\n\n")
        self.start_stream(h, "text/event-stream")
        if self.stream_pieces(h, b, events, b"data: {\"id\": \"chatcmpl-standin\", \"choices\": [\n\n"):
            self.end_stream(h)
