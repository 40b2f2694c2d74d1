"""A STAND-IN OpenAI-compatible server for load benchmarks: one asyncio event loop in its own process, answering
every request in parallel (no limit) with a fixed, programmable timing: `ttft_ms` from the request's arrival to
the first token, then `tokens - 1` more tokens `gap_ms` apart (scheduled against the arrival time, so lateness
does not accumulate; the arrival is the kernel's receive time of the request's first bytes, SO_TIMESTAMPNS, so
this process's own delay in reading it does not count), then the usage chunk and `data: [DONE]`. The chunk
format is the one in openai_sse.py. Connections stay open between requests (HTTP/1.1 keep-alive, as serving
stacks keep them) unless the client sends `Connection: close`; POST /reset closes those waiting for their next
request.

The answer's last word is the arithmetic answer to "What is A plus B?" so a run gets real PASS verdicts.
Each request's actual write times (time.monotonic, comparable across processes on Linux) are kept, and
GET /stats returns how late the server itself was (the benchmark subtracts nothing: it reports both);
GET /timeline gives each prompt's arrival (kernel), read (this process) and first-token write times.

    python -m tests.standins.load_openai --port 0 --ttft-ms 300 --tokens 20 --gap-ms 25
prints `listening PORT` on stdout when ready.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import struct
import sys
import time

from benchwatch.gc_tuning import freeze_long_lived
from benchwatch.stream_worker import new_event_loop
from tests.standins.base import arithmetic_answer

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value, which Python 3.11's socket module lacks


def realtime_ahead() -> float:
    """How far CLOCK_REALTIME (the kernel's receive stamps) is ahead of CLOCK_MONOTONIC (everyone's stamps here),
    read between two monotonic readings so that the gap between the calls does not count."""
    before = time.monotonic()
    now = time.time()
    return now - (before + time.monotonic()) / 2


class KernelStampedConnection:
    """One accepted connection, read by this process itself (the loop's reader callback and `recvmsg`) so that every
    read carries the time its bytes reached this machine's kernel (SO_TIMESTAMPNS). A request's answer is scheduled
    from that time, not from when this process got around to reading it: with hundreds of requests arriving at once,
    and the benchmark's client on the same two cores, this process reads them one after another and sometimes only
    once a core is free, and an answer timed from that read would come late by this server's own delay, which is
    not the client's measurement error. `reader` is an asyncio.StreamReader fed here; the connection itself is the
    writer (write, drain, close, is_closing)."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop):
        self.sock, self.loop = sock, loop
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:  # not Linux: requests are timed from when this process reads them
            pass
        self.reader = asyncio.StreamReader(limit=2 ** 16, loop=loop)
        self.arrived: float | None = None  # kernel arrival of the next request's first bytes (time.monotonic)
        self.read_at: float | None = None  # when this process read them
        self.unsent = bytearray()
        self.flushed: asyncio.Future | None = None
        self.closed = False
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(1 << 16, 64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancillary = b"", []
        if not data:
            self.reader.feed_eof()
            self.close()
            return
        if self.arrived is None:
            self.read_at = self.arrived = time.monotonic()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    self.arrived = min(self.read_at, sec + nsec / 1e9 - realtime_ahead())
        self.reader.feed_data(data)

    def next_request(self) -> None:
        self.arrived = self.read_at = None

    def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("the connection is closed")
        if not self.unsent:
            try:
                sent = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self.close()
                raise ConnectionResetError(str(exc)) from exc
            data = data[sent:]
            if not data:
                return
            self.loop.add_writer(self.sock.fileno(), self._writable)
        self.unsent += data

    def _writable(self) -> None:
        try:
            sent = self.sock.send(self.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close()
            if self.flushed is not None and not self.flushed.done():
                self.flushed.set_exception(ConnectionResetError(str(exc)))
            return
        del self.unsent[:sent]
        if not self.unsent:
            self.loop.remove_writer(self.sock.fileno())
            if self.flushed is not None and not self.flushed.done():
                self.flushed.set_result(None)

    async def drain(self) -> None:
        if self.unsent:
            self.flushed = self.loop.create_future()
            await self.flushed
        elif self.closed:
            raise ConnectionResetError("the connection is closed")

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())
        if self.unsent:
            self.loop.remove_writer(self.sock.fileno())
        self.sock.close()
        self.reader.feed_eof()
        if self.flushed is not None and not self.flushed.done():
            self.flushed.set_exception(ConnectionResetError("the connection is closed"))


class LoadServer:
    def __init__(self, ttft_ms: float, tokens: int, gap_ms: float):
        self.ttft_s, self.tokens, self.gap_s = ttft_ms / 1000.0, tokens, gap_ms / 1000.0
        self.late_first: list[float] = []  # seconds the first token was written after its scheduled time
        self.late_any: list[float] = []
        # prompt -> (when its request reached the kernel, when this process read it, when its first token was
        # written), GET /timeline: with the client's own stamps they split a TTFT error into the request's way
        # here, this server, and the way back.
        self.timeline: dict[str, tuple[float, float, float]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0
        self.idle: set[KernelStampedConnection] = set()  # kept-open connections waiting for their next request

    async def handle(self, conn: KernelStampedConnection) -> None:
        """Requests on one connection, one after another (HTTP/1.1 keep-alive), until the client closes it or asks
        for `Connection: close`."""
        reader, writer = conn.reader, conn
        try:
            while True:
                self.idle.add(writer)  # between requests: /reset may close it
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                finally:
                    self.idle.discard(writer)
                if not await self._one(head, conn):
                    break
                conn.next_request()  # what comes next is the next request's
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as exc:  # a request this stand-in does not understand: say so on stderr
            print(f"load stand-in: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            writer.close()

    async def _one(self, head: bytes, conn: KernelStampedConnection) -> bool:
        """Answer one request (its head read); False when the connection is to close after it."""
        reader, writer = conn.reader, conn
        arrived, read_at = conn.arrived or time.monotonic(), conn.read_at or time.monotonic()
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        length, chunked, keep = 0, False, True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.strip().lower() == "close":
                keep = False
        raw = await self._chunked(reader) if chunked else (await reader.readexactly(length) if length else b"")
        body = json.loads(raw) if raw else {}
        if method == "GET" and path.startswith("/v1/models"):
            await self._json(writer, {"object": "list", "data": [{"id": "load", "object": "model"}]})
        elif method == "GET" and path == "/stats":
            await self._json(writer, self.stats())
        elif method == "GET" and path == "/timeline":
            await self._json(writer, self.timeline)
        elif method == "POST" and path == "/reset":
            self.reset()
            await self._json(writer, {"reset": True})
        elif method == "POST" and path == "/v1/chat/completions":
            await self._chat(writer, body, arrived, read_at)
        else:
            await self._json(writer, {"error": {"message": "not found"}}, 404)
        return keep

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        out = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                return out
            out += data[:-2]

    async def _json(self, writer: KernelStampedConnection, obj: object, status: int = 200) -> None:
        data = json.dumps(obj).encode()
        writer.write(b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"\r\n%s" % (status, len(data), data))
        await writer.drain()

    async def _chat(self, writer: KernelStampedConnection, body: dict, arrived: float, read_at: float) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            prompt = body["messages"][-1]["content"]
            if isinstance(prompt, list):  # content parts ({"type": "text", "text": ...}), as some clients send
                prompt = " ".join(p.get("text", "") for p in prompt if isinstance(p, dict))
            answer = arithmetic_answer(prompt).split()[-1]
            words = ["tok "] * (self.tokens - 1) + [answer]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            await writer.drain()
            # Each token is written by a timer callback at its due time (the next one scheduled from there):
            # cheaper than a coroutine sleeping and waking per token, and this process shares the benchmark's cores
            # with the client it measures. Only the content differs from chunk to chunk.
            head = json.dumps({"id": "load", "object": "chat.completion.chunk", "model": body.get("model", "load"),
                               "choices": [{"index": 0, "delta": {"content": "\0"}, "finish_reason": None}]})
            before, after = (part.encode() for part in head.split('"\\u0000"'))
            loop = asyncio.get_running_loop()
            done = loop.create_future()

            def token(i: int) -> None:
                due = arrived + self.ttft_s + i * self.gap_s
                try:
                    self._frame(writer, b"data: " + before + json.dumps(words[i]).encode() + after + b"\n\n")
                except Exception as exc:  # the client hung up
                    if not done.done():
                        done.set_exception(exc)
                    return
                written = time.monotonic()
                late = written - due
                self.late_any.append(late)
                if i == 0:
                    self.late_first.append(late)
                    self.timeline[prompt] = (arrived, read_at, written)
                if i + 1 < len(words):  # a delay from now, not call_at: the loop's clock is as of its last wake-up
                    loop.call_later(due + self.gap_s - time.monotonic(), token, i + 1)
                elif not done.done():
                    done.set_result(None)

            loop.call_later(arrived + self.ttft_s - time.monotonic(), token, 0)
            await done
            usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(words),
                     "total_tokens": len(prompt.split()) + len(words)}
            self._frame(writer, b"data: " + json.dumps({"id": "load", "object": "chat.completion.chunk",
                                                        "model": body.get("model", "load"), "choices": [],
                                                        "usage": usage}).encode() + b"\n\n")
            self._frame(writer, b"data: [DONE]\n\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            self.served += 1
        finally:
            self.in_flight -= 1

    @staticmethod
    def _frame(writer: KernelStampedConnection, data: bytes) -> None:
        """One piece of the chunked body."""
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))

    def stats(self) -> dict:
        def q(xs: list[float], p: float) -> float | None:
            return statistics.quantiles(xs, n=100)[int(p) - 1] * 1000 if len(xs) >= 2 else None
        return {"served": self.served, "max_in_flight": self.max_in_flight,
                "late_first_ms_p50": q(self.late_first, 50), "late_first_ms_p99": q(self.late_first, 99),
                "late_any_ms_p50": q(self.late_any, 50), "late_any_ms_p99": q(self.late_any, 99)}

    def reset(self) -> None:
        """A new measurement: counts cleared, and kept-open connections closed, so that the client opens its
        connections as a run of its own would."""
        for writer in list(self.idle):
            writer.close()
        self.late_first.clear()
        self.late_any.clear()
        self.timeline.clear()
        self.max_in_flight = self.served = 0


async def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ttft-ms", type=float, default=300.0)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--gap-ms", type=float, default=25.0)
    args = ap.parse_args(argv)
    server = LoadServer(args.ttft_ms, args.tokens, args.gap_ms)

    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", args.port), backlog=4096)
    listener.setblocking(False)
    tasks: set[asyncio.Task] = set()

    def accept() -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            task = loop.create_task(server.handle(KernelStampedConnection(sock, loop)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    loop.add_reader(listener.fileno(), accept)
    freeze_long_lived()  # as benchwatch's own processes: a collector pass made every token of that moment late
    print(f"listening {listener.getsockname()[1]}", flush=True)
    await loop.create_future()  # until the process is stopped


if __name__ == "__main__":
    try:
        # uvloop as the stream worker has it (its timers and polling; the sockets are read and written here): the
        # stand-in shares the benchmark machine's cores with the client it measures.
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
