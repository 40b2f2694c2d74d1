"""A STAND-IN for an Ollama server (no Ollama can run here), following Ollama's documented wire format:

- GET /api/version -> {"version": "..."}
- GET /api/ps -> {"models": [{"name", "model", "size", "expires_at", ...}]}: the models in memory (a model is
  "loaded" by its first chat request here, as Ollama loads on demand)
- POST /api/chat with "stream": true -> application/x-ndjson, one JSON object per line:
  {"model", "created_at", "message": {"role": "assistant", "content": "...", "thinking": "..."}, "done": false}
  then a final {"done": true, "done_reason": "stop", "total_duration", "load_duration", "prompt_eval_count",
  "prompt_eval_duration", "eval_count", "eval_duration"} (durations in nanoseconds)
- a model that isn't pulled: HTTP 404 {"error": "model 'NAME' not found"}
- a failure mid-answer: a line {"error": "..."}
Faults on purpose (see base.Behaviour): stall, malformed line, truncated stream, server dying mid-answer.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

from .base import Behaviour, StandinServer, arithmetic_answer, words

VERSION = "0.12.6-standin"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class StandinOllama(StandinServer):
    def __init__(self, port: int = 0):
        super().__init__(port)
        self.loaded: set[str] = set()
        self.load_s = 0.0  # simulated load time of a model's first request

    def handle(self, h: Any, method: str, path: str, body: Any) -> None:
        if method == "GET" and path == "/api/version":
            return self.send_json(h, 200, {"version": VERSION})
        if method == "GET" and path == "/api/ps":
            return self.send_json(h, 200, {"models": [
                {"name": m, "model": m, "size": 1 << 28, "digest": "0" * 64, "expires_at": _now(), "size_vram": 0}
                for m in sorted(self.loaded)]})
        if method == "POST" and path == "/api/chat":
            self.record(path, body, h.headers)
            return self.chat(h, body)
        self.send_json(h, 404, {"error": "404 page not found"})

    def chat(self, h: Any, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        b = self.behaviour(model)
        if b is None or b.fault == "not_found":
            return self.send_json(h, 404, {"error": f"model '{model}' not found"})
        if b.fault == "pushback":  # e.g. a proxy in front of Ollama, or OLLAMA_MAX_QUEUE reached (503)
            return self.pushback(h, b, {"error": "server busy, please try again later"})
        t0 = time.monotonic_ns()
        load_ns = 0
        if model not in self.loaded:
            time.sleep(self.load_s)
            load_ns = int(self.load_s * 1e9)
            self.loaded.add(model)
        prompt = body["messages"][-1]["content"]
        answer = b.answer if b.answer is not None else arithmetic_answer(prompt)
        lines: list[dict[str, Any]] = []
        if b.think_tags and b.thinking:
            lines += [{"content": t} for t in ["<think>", *words(b.thinking), "</think>"]]
        elif b.thinking:
            lines += [{"thinking": t, "content": ""} for t in words(b.thinking)]
        lines += [{"content": t} for t in words(answer)]
        msgs = [json.dumps({"model": model, "created_at": _now(), "message": {"role": "assistant", **m},
                            "done": False}).encode() + b"\n" for m in lines]
        if b.fault == "error":
            msgs.insert(b.fault_after, json.dumps({"error": "an error was encountered while running the model"})
                        .encode() + b"\n")
            b = Behaviour(**{**b.__dict__, "fault": None})
        self.start_stream(h, "application/x-ndjson")
        t_eval = time.monotonic_ns()
        if not self.stream_pieces(h, b, msgs, b"{\"model\": \"" + model.encode() + b"\", \"message\": {\n"):
            return
        end = time.monotonic_ns()
        prompt_tokens = sum(len(words(m["content"])) for m in body["messages"])
        final = {"model": model, "created_at": _now(), "message": {"role": "assistant", "content": ""},
                 "done_reason": "stop", "done": True, "total_duration": end - t0, "load_duration": load_ns,
                 "prompt_eval_count": prompt_tokens, "prompt_eval_duration": max(1, t_eval - t0 - load_ns),
                 "eval_count": len(lines), "eval_duration": max(1, end - t_eval)}
        self.chunk(h, json.dumps(final).encode() + b"\n")
        self.end_stream(h)
