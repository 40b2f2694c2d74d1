"""The `ollama` backend: Ollama's native streaming chat API (POST /api/chat, one JSON object per line).

Each streamed line carries `message.content` (visible text, possibly with `<think>` tags: passed on raw for the
runner's ThinkSplitter) and, for reasoning models asked to `think`, `message.thinking`. The last line has
`done: true` and Ollama's own counts and durations (nanoseconds), stored beside our measurements.
Connection state: GET /api/version (is the server up?) and GET /api/ps (is the model in memory?).
"""
from __future__ import annotations

import json
from typing import Any, Iterator

from ..config import ModelConfig
from .base import Backend, BackendError, GenParams, Item, Message, Stats, render_messages
from .http import StreamedRequest, get_json, json_object, make_client, start_stream_worker

DEFAULT_URL = "http://127.0.0.1:11434"
SERVER_FIELDS = ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count",
                 "eval_duration", "done_reason")


class OllamaBackend(Backend):
    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg
        self.base_url = (cfg.base_url or DEFAULT_URL).rstrip("/")
        self.where = f"Ollama at {self.base_url}"
        self.client = make_client()
        start_stream_worker()

    # ---- connection state
    def connect(self, timeout_s: float = 10.0) -> tuple[str, str]:
        status, body = get_json(self.client, f"{self.base_url}/api/version", timeout_s, self.where)
        if status != 200 or not isinstance(body, dict):
            raise BackendError(f"{self.where} answered /api/version with HTTP {status}: is it an Ollama server?")
        version = body.get("version", "?")
        name = self.cfg.remote_name
        try:
            status, ps = get_json(self.client, f"{self.base_url}/api/ps", timeout_s, self.where)
        except BackendError:
            status, ps = 0, None
        if status == 200 and isinstance(ps, dict):
            loaded = {m.get("name") for m in ps.get("models") or []} | {m.get("model") for m in ps.get("models") or []}
            if name not in loaded and f"{name}:latest" not in loaded:
                return "loading", f"Ollama {version}: {name} is not in memory yet (loaded on the first request)"
            return "connected", f"Ollama {version}: {name} loaded"
        return "connected", f"Ollama {version}"

    def render_prompt(self, messages: list[Message]) -> str:
        return render_messages(messages)  # Ollama applies the model's template on the server

    # ---- one chat request
    def request_body(self, messages: list[Message], params: GenParams) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": params.temperature, "seed": params.seed,
                                   "num_predict": params.max_tokens}
        if "n_ctx" in self.cfg.model_fields_set:  # else the model's own default context length
            options["num_ctx"] = self.cfg.n_ctx
        options.update(self.cfg.options)
        body: dict[str, Any] = {"model": self.cfg.remote_name, "messages": messages, "stream": True,
                                "options": options}
        if self.cfg.think is not None:
            body["think"] = self.cfg.think
        if self.cfg.keep_alive is not None:
            body["keep_alive"] = self.cfg.keep_alive
        return body

    def _status_error(self, status: int, text: str) -> BackendError:
        message = _error_message(text)
        name = self.cfg.remote_name
        if status == 404:
            return BackendError(f"model {name!r} is not available on {self.where} ({message}): "
                                f"run `ollama pull {name}`")
        return BackendError(f"{self.where} answered HTTP {status}: {message}")

    def stream(self, messages: list[Message], params: GenParams) -> Iterator[Item]:
        req = StreamedRequest(f"{self.base_url}/api/chat", self.request_body(messages, params),
                              params, self.where, self._status_error)
        stats: Stats | None = None
        for line in req.lines():
            if not line.strip():
                continue
            chunk = json_object(line, self.where)
            if "error" in chunk:
                raise BackendError(f"{self.where} reported an error mid-answer: {chunk['error']}")
            msg = chunk.get("message") or {}
            thinking, content = msg.get("thinking") or "", msg.get("content") or ""
            if thinking or content:
                req.token()
            if thinking:
                yield req.piece(thinking, "thinking")  # Ollama streams one token per line
            if content:
                yield req.piece(content, "raw")
            if chunk.get("done"):
                server = {k: chunk[k] for k in SERVER_FIELDS if k in chunk}
                if chunk.get("eval_duration") and chunk.get("eval_count"):
                    server["eval_tokens_per_s"] = chunk["eval_count"] / chunk["eval_duration"] * 1e9
                stats = Stats(prompt_tokens=chunk.get("prompt_eval_count"), completion_tokens=chunk.get("eval_count"),
                              server=server)
        if stats is None:
            raise BackendError(f"{self.where} ended the stream before its final `done` line (truncated stream)")
        yield stats

    def close(self) -> None:
        self.client.close()


def _error_message(text: str) -> str:
    try:
        body = json.loads(text)
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])
    except ValueError:
        pass
    return text.strip()[:200] or "no details"
