"""The process that sends every streamed request of a run and stamps each piece of the answer as it arrives.

Why a process of its own: with tens or hundreds of streams in flight the runner's threads (parsing, scoring,
storing, publishing) hold the interpreter most of the time, and a thread reading sockets in that same process waits
its turn before it can stamp what arrived: by tens of milliseconds at 64 in flight (docs/measuring.md). Here an
event loop does nothing but the HTTP exchanges and the stamps, on an interpreter of its own, and hands the runner
(benchwatch/backends/http.py) the bytes with their times. time.monotonic is the system-wide CLOCK_MONOTONIC on
Linux, so the stamps compare with the runner's own clock.

Of benchwatch it imports only transport_words, tls and gc_tuning (standard library and certifi), and beyond that
aiohttp and uvloop: it starts in a few hundred milliseconds and stays small.

The protocol, lists of tuples over one socket pair (multiprocessing.connection framing, pickled: both ends are
this program):
  runner -> worker  ("start", rid, url, body, headers, proxy, where, connect_s, batch_s)
                    ("token", rid)   the runner has the first token: later pieces may be handed over in batches
                    ("cancel", rid)  stop the request and close its connection; nothing more is sent about it
  worker -> runner  ("sent", rid, t)               the request was written to its connection
                    ("data", rid, [(bytes, t), ...])
                    ("status", rid, code, body, retry_after)   an HTTP error status; the runner words the error
                    ("end", rid)
                    ("error", rid, kind, message)  kind: "unavailable" (cannot reach, dropped) or "error"
It ends when the runner's end of the socket closes, however the runner ended.

    python -m benchwatch.stream_worker FD
"""
from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

from benchwatch import transport_words as words
from benchwatch.gc_tuning import freeze_long_lived
from benchwatch.tls import client_context


def describe(exc: Exception, where: str, connect_s: float) -> tuple[str, str]:
    """(kind, message) for a failed exchange: a reason a user can act on, naming the server and the setting."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "unavailable", words.no_connection(where, connect_s)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "unavailable", words.cannot_reach(where, str(exc) or type(exc).__name__,
                                                 isinstance(exc.os_error, ConnectionRefusedError))
    if isinstance(exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return "unavailable", words.truncated(where, exc)
    if isinstance(exc, aiohttp.ClientResponseError):  # not HTTP at all (a malformed status line or header)
        return "error", f"{where} did not answer in HTTP: {exc.message}"
    return "error", words.other(where, exc)


class _ReadStampingHandler(ResponseHandler):
    """aiohttp's protocol for one connection, which also notes when the answer's unread bytes were read from the
    socket: the time of the first read that added to the body since the reading coroutine last took it. With many
    streams in flight, one turn of the loop reads many sockets, and then resumes the coroutine of each in turn; a
    stamp taken when a coroutine resumes would be late by the turn's other reads and resumptions."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.body: aiohttp.StreamReader | None = None  # the answer being read on this connection
        self.taken = 0  # of its bytes, those the coroutine has taken
        self.unread_since: float | None = None

    def data_received(self, data: bytes) -> None:
        t = time.monotonic()
        super().data_received(data)
        body = self.body
        if body is not None and self.unread_since is None and body.total_bytes > self.taken:
            self.unread_since = t

    def watch(self, body: aiohttp.StreamReader | None) -> None:
        """Stamp the reads of this body from now on (None: of no body). Bytes that came with the response's head
        were read before anyone could note their time: the first take stamps them as it takes them."""
        self.body, self.taken, self.unread_since = body, body.total_bytes if body is not None else 0, None

    def take(self, now: float) -> float:
        """When the bytes the coroutine has just taken (all that had been read) began to be read."""
        t, self.unread_since = self.unread_since, None
        if self.body is not None:
            self.taken = self.body.total_bytes
        return now if t is None else t


class _StampingConnector(aiohttp.TCPConnector):
    """A connector whose connections are _ReadStampingHandler's. aiohttp has no public way to give it a protocol:
    this sets the factory it keeps; test_stream_worker_stamps checks that the stamps are the socket reads'."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._factory = functools.partial(_ReadStampingHandler, loop=self._loop)


class _Request:
    """One request's hand-over state: pieces read but not yet sent to the runner."""

    __slots__ = ("rid", "first_seen", "reused", "pending", "timer", "task")

    def __init__(self, rid: int) -> None:
        self.rid, self.first_seen, self.reused = rid, False, False
        self.pending: list[tuple[bytes, float]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task | None = None


class StreamWorker:
    def __init__(self, conn: Connection, loop: asyncio.AbstractEventLoop) -> None:
        self.conn, self.loop = conn, loop
        self.requests: dict[int, _Request] = {}
        self.outbox: list[tuple] = []
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(self._sent)
        trace.on_request_chunk_sent.append(self._sent)
        trace.on_connection_reuseconn.append(self._reused)
        # Connections are kept open between requests (HTTP/1.1 keep-alive, as the load-testing tools do): a new
        # TCP connection for every request cost this process and the server about a sixth of their CPU at 256
        # in flight. A request that ends early (cancelled, a deadline) closes its own: aiohttp returns only a
        # connection whose answer was read to its end. limit 0: no cap (runner.concurrency is the cap). The
        # runner looks the proxy up once per host and passes it.
        tls = client_context()
        self.session = aiohttp.ClientSession(connector=_StampingConnector(limit=0, ssl=tls),
                                             raise_for_status=False, trace_configs=[trace])
        # For the one resend of a request whose kept-open connection was closed under it: always a new connection.
        self.fresh = aiohttp.ClientSession(connector=_StampingConnector(limit=0, force_close=True, ssl=tls),
                                           raise_for_status=False, trace_configs=[trace])

    # -- to the runner: everything said in one loop iteration goes in one message

    def say(self, message: tuple) -> None:
        if not self.outbox:
            self.loop.call_soon(self._flush)
        self.outbox.append(message)

    def _flush(self) -> None:
        out, self.outbox = self.outbox, []
        try:
            self.conn.send(out)
        except OSError:  # the runner is gone
            os._exit(0)

    # -- from the runner (called on the loop by the reading thread)

    def handle(self, messages: list[tuple]) -> None:
        for message in messages:
            verb, rid = message[0], message[1]
            if verb == "start":
                req = self.requests[rid] = _Request(rid)
                req.task = self.loop.create_task(self.fetch(req, *message[2:]))
            elif verb == "token":
                if rid in self.requests:
                    self.requests[rid].first_seen = True
            elif verb == "cancel":
                req = self.requests.pop(rid, None)
                if req is not None and req.task is not None:
                    req.task.cancel()  # closes its connection

    async def _sent(self, _session: Any, ctx: Any, _params: Any) -> None:
        """aiohttp's trace hook, just before the request's head and body are written: when it left."""
        self.say(("sent", ctx.trace_request_ctx, time.monotonic()))

    async def _reused(self, _session: Any, ctx: Any, _params: Any) -> None:
        """aiohttp's trace hook: the request goes out on a kept-open connection."""
        req = self.requests.get(ctx.trace_request_ctx)
        if req is not None:
            req.reused = True

    async def _post(self, req: _Request, url: str, body: bytes, headers: dict[str, str], proxy: str | None,
                    timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        """The response's head. A server may close a kept-open connection at any moment (its idle timeout, or
        after every answer without saying so); when the request went out on such a connection and it was closed
        before any answer, it is sent once more, on a new connection (never more: a server that drops requests
        does not get each one many times)."""
        kwargs = {"data": body, "headers": {"Content-Type": "application/json", **headers}, "timeout": timeout,
                  "proxy": proxy, "trace_request_ctx": req.rid}
        req.reused = False
        try:
            return await self.session.post(url, **kwargs)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            if not req.reused:
                raise
        return await self.fresh.post(url, **kwargs)

    async def fetch(self, req: _Request, url: str, body: bytes, headers: dict[str, str], proxy: str | None,
                    where: str, connect_s: float, batch_s: float) -> None:
        """Send one request and hand back what comes, each piece stamped as it is read. Until the runner has its
        first token everything goes at once; later pieces wait at most `batch_s` to go together (fewer
        wake-ups for the runner's slots; the stamps keep their times)."""
        rid = req.rid

        def hand_over() -> None:
            req.timer = None
            if req.pending:
                self.say(("data", rid, req.pending))
                req.pending = []

        # The runner's slot owns the first-token and total deadlines (it cancels the request when one passes), so
        # no read timeout here: aiohttp would re-arm one on every read, for nothing.
        timeout = aiohttp.ClientTimeout(total=None, connect=connect_s, sock_read=None)
        try:
            resp = await self._post(req, url, body, headers, proxy, timeout)
            proto = resp.connection.protocol if resp.connection is not None else None
            reads = proto if isinstance(proto, _ReadStampingHandler) else None
            try:
                if resp.status >= 400:
                    text = (await resp.read()).decode("utf-8", "replace")
                    self.say(("status", rid, resp.status, text, resp.headers.get("retry-after")))
                    return
                if reads is not None:
                    reads.watch(resp.content)
                async for data in resp.content.iter_any():
                    now = time.monotonic()
                    req.pending.append((data, reads.take(now) if reads is not None else now))
                    if not req.first_seen:
                        hand_over()
                    elif req.timer is None:
                        req.timer = self.loop.call_later(batch_s, hand_over)
            finally:
                if reads is not None:
                    reads.watch(None)
                resp.release()  # back to the pool only when read to its end; otherwise closed
            if req.timer is not None:
                req.timer.cancel()
            hand_over()  # what was read comes before how it ended
            self.say(("end", rid))
        except asyncio.CancelledError:
            if req.timer is not None:
                req.timer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every failure reaches the runner as a readable reason
            if req.timer is not None:
                req.timer.cancel()
            hand_over()
            self.say(("error", rid, *describe(exc, where, connect_s)))
        finally:
            self.requests.pop(rid, None)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop (libuv's loop: a fraction of asyncio's own cost per read, which is most of this process's work)
    where it is installed, asyncio's own loop otherwise."""
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def main(fd: int) -> None:
    # Ctrl-C reaches the whole process group: the runner stops the requests it wants stopped, and this process
    # ends with the runner (end of file on the socket), never before it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    worker = loop.run_until_complete(_make(conn, loop))
    freeze_long_lived()  # the collector's passes were this process's longest stalls (see gc_tuning)

    def read_commands() -> None:
        try:
            while True:
                loop.call_soon_threadsafe(worker.handle, conn.recv())
        except (EOFError, OSError):
            os._exit(0)  # the runner closed its end or died: its requests die with it

    threading.Thread(target=read_commands, name="commands", daemon=True).start()
    loop.run_forever()


async def _make(conn: Connection, loop: asyncio.AbstractEventLoop) -> StreamWorker:
    return StreamWorker(conn, loop)  # aiohttp's session is made on its running loop


if __name__ == "__main__":
    main(int(sys.argv[1]))
