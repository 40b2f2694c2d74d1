"""The common part of the stand-in model servers: a threaded HTTP/1.1 server on a loopback port that streams
chunked responses and can misbehave on purpose (stall, malformed chunk, truncated stream, die mid-answer).

The stand-in "model" answers the built-in arithmetic prompts correctly ("What is A plus B?"), so a run through
it gets real PASS verdicts from the real evaluator.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

_OPS: dict[str, Callable[[int, int], int]] = {"plus": lambda a, b: a + b, "minus": lambda a, b: a - b,
                                              "times": lambda a, b: a * b}


def arithmetic_answer(prompt: str) -> str:
    m = re.search(r"(-?\d+)\s+(plus|minus|times)\s+(-?\d+)", prompt)
    return f"The answer is {_OPS[m.group(2)](int(m.group(1)), int(m.group(3)))}" if m else "I do not know"


def words(text: str) -> list[str]:
    """Split text into token-like pieces that join back to the text (one streamed chunk per piece)."""
    return re.findall(r"\s*\S+", text)


@dataclass
class Behaviour:
    """How the stand-in answers one request."""
    thinking: str = ""            # reasoning, streamed before the answer
    think_tags: bool = False      # put the reasoning in the content inside <think>…</think> instead
    answer: str | None = None     # default: the arithmetic answer to the prompt
    delay_s: float = 0.0          # between chunks
    first_delay_s: float = 0.0    # before the first chunk (after the response headers)
    fault: str | None = None      # stall | malformed | truncated | die | error | not_found | pushback
    fault_after: int = 1          # chunks sent before the fault
    stall_s: float = 30.0
    status: int = 429             # pushback: the HTTP status (429 Too Many Requests or 503 Service Unavailable)
    retry_after: str | None = "0.2"  # pushback: the Retry-After header (seconds or an HTTP date; None: absent)


class StandinServer:
    """Subclasses implement `handle(handler, method, path, body)`."""

    def __init__(self, port: int = 0):
        self.port = port
        self.behaviours: dict[str, Behaviour | list[Behaviour]] = {}
        self.requests: list[dict[str, Any]] = []
        self.calls: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.in_flight = 0       # requests being answered right now (every request gets its own thread)
        self.max_in_flight = 0   # the most seen at once

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- life cycle
    def start(self) -> "StandinServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _dispatch(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                self.close_connection = True
                with outer._lock:
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    outer.handle(self, method, self.path, body)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass
                finally:
                    with outer._lock:
                        outer.in_flight -= 1

            def do_GET(self) -> None:
                self._dispatch("GET")

            def do_POST(self) -> None:
                self._dispatch("POST")

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._stopping.clear()
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: new connections are refused; stalled answers are released."""
        self._stopping.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def restart(self) -> None:
        self.start()

    # ---- behaviour per request
    def behaviour(self, model: str) -> Behaviour | None:
        with self._lock:
            call = self.calls.get(model, 0)
            self.calls[model] = call + 1
        b = self.behaviours.get(model)
        if isinstance(b, list):
            return b[min(call, len(b) - 1)]
        return b

    def record(self, path: str, body: Any, headers: Any) -> None:
        with self._lock:
            self.requests.append({"path": path, "body": body, "headers": dict(headers)})

    # ---- writing
    def send_json(self, h: BaseHTTPRequestHandler, status: int, obj: Any,
                  headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def start_stream(self, h: BaseHTTPRequestHandler, content_type: str) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.flush()

    @staticmethod
    def chunk(h: BaseHTTPRequestHandler, data: bytes) -> None:
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        h.wfile.flush()

    @staticmethod
    def end_stream(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()

    def cut(self, h: BaseHTTPRequestHandler) -> None:
        """Drop the connection without finishing the chunked body."""
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def stream_pieces(self, h: BaseHTTPRequestHandler, b: Behaviour, pieces: list[bytes], malformed: bytes) -> bool:
        """Write the pieces with the behaviour's delays and fault; False if the stream was cut short."""
        if b.first_delay_s and self._stopping.wait(b.first_delay_s):
            return False
        for i, piece in enumerate(pieces):
            if b.fault and i == b.fault_after:
                if b.fault == "stall":
                    self._stopping.wait(b.stall_s)
                    self.cut(h)
                    return False
                if b.fault == "malformed":
                    self.chunk(h, malformed)
                    continue
                if b.fault == "truncated":
                    self.cut(h)
                    return False
                if b.fault == "die":  # the whole server goes down mid-answer: no longer listening when the
                    self.stop()         # client sees the cut (a quick retry must find it refused, not half-down)
                    self.cut(h)
                    return False
            self.chunk(h, piece)
            if b.delay_s and i + 1 < len(pieces):
                time.sleep(b.delay_s)
        return True

    def pushback(self, h: BaseHTTPRequestHandler, b: Behaviour, obj: Any) -> None:
        """A server that is overloaded or rate-limited: 429 / 503 with Retry-After (when the behaviour has one)."""
        self.send_json(h, b.status, obj, {"Retry-After": b.retry_after} if b.retry_after is not None else None)

    def handle(self, h: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> None:
        raise NotImplementedError
