"""Streamed HTTP requests for the remote backends, with every per-task timeout enforced by the waiting slot.

The streams run on one I/O thread (an asyncio loop with one aiohttp session, its HTTP parser in C) and the slot
that asked reads the bytes from a queue. With hundreds of requests in flight this costs about half the CPU per
request of a blocking client per thread, and each piece is stamped when the loop reads it, not when a slot thread
gets to it (bench/bench_concurrency.py, docs/measuring.md). The slot waits on its queue with the deadline that
applies (the first token within N s, the whole answer within M s): when it passes, the request is cancelled (its
connection closed) and the attempt ends as ERROR with the reason. Ctrl-C cancels every request in flight (abort_all).
Each request opens its own connection, so a cancelled one leaves nothing behind in a pool.

Small requests (connection checks) stay on httpx: `make_client` and `get_json`.
"""
from __future__ import annotations

import asyncio
import atexit
import email.utils
import errno
import functools
import json
import queue
import ssl
import threading
import time
import urllib.parse
import urllib.request
import weakref
from typing import Any, Callable, Iterator

import aiohttp
import httpx

from .base import BackendError, BackendThrottled, BackendUnavailable, GenParams, Text

RETRY_AFTER_MAX_S = 600.0  # a server asking for a longer wait is waited this long, then asked again

# Every request under way: Ctrl-C cancels them all at once (abort_all), so no slot stays waiting while the run stops.
_LIVE: "weakref.WeakSet[StreamedRequest]" = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def abort_all(reason: str) -> int:
    """Cancel every request in flight in this process; returns how many were cancelled."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for req in live:
        req.abort(reason)
    return len(live)


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP date (RFC 9110 10.2.3); None when absent or
    unreadable. Capped at RETRY_AFTER_MAX_S, never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if secs != secs:  # NaN
        return None
    return min(max(secs, 0.0), RETRY_AFTER_MAX_S)


class _IOThread:
    """One daemon thread running an asyncio loop and one aiohttp session for every stream of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None

    def submit(self, coro_fn: Callable[[aiohttp.ClientSession], Any]) -> "asyncio.Future[Any]":
        """Run `coro_fn(session)` on the I/O loop; returns its concurrent future."""
        with self._lock:
            if self._loop is None or not self._loop.is_running():
                self._start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(self._with_session(coro_fn), loop)  # type: ignore[arg-type]

    async def _with_session(self, coro_fn: Callable[[aiohttp.ClientSession], Any]) -> Any:
        if self._session is None:
            # force_close: one connection per request (a cancelled one closes its own); limit 0: no cap on
            # connections (runner.concurrency is the cap). The proxy is looked up once per host (_proxy_for),
            # not by aiohttp's trust_env, which reads the environment and ~/.netrc on a worker thread per request.
            connector = aiohttp.TCPConnector(limit=0, force_close=True, ssl=_ssl_context())
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(_request_sent)
            trace.on_request_chunk_sent.append(_request_sent)
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False,
                                                  trace_configs=[trace])
        return await coro_fn(self._session)

    def close(self) -> None:
        """Close the session (at exit: its connections end cleanly, and aiohttp has nothing to warn about)."""
        with self._lock:
            loop, session, self._session = self._loop, self._session, None
        if loop is not None and session is not None and loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(session.close(), loop).result(2.0)
            except Exception:  # noqa: BLE001 - at exit, a close that fails costs nothing
                pass

    def _start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._session = None
        started = threading.Event()
        loop = self._loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        threading.Thread(target=run, name="benchwatch-http-io", daemon=True).start()
        started.wait()


_IO = _IOThread()
atexit.register(_IO.close)
_SSL: ssl.SSLContext | None = None


async def _request_sent(_session: Any, ctx: Any, _params: Any) -> None:
    """aiohttp's trace hook, just before the request's head and body are written: when it left."""
    req = ctx.trace_request_ctx
    if isinstance(req, StreamedRequest):
        req.sent = time.monotonic()


@functools.lru_cache(maxsize=64)
def _proxy_for(url: str) -> str | None:
    """The proxy for `url` from HTTP_PROXY / HTTPS_PROXY / NO_PROXY (as httpx and curl read them), or None."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass_environment(parts.hostname or ""):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


def _ssl_context() -> ssl.SSLContext:
    """The same CA bundle as httpx (certifi), loaded once."""
    global _SSL
    if _SSL is None:
        try:
            import certifi
            _SSL = ssl.create_default_context(cafile=certifi.where())
        except ImportError:  # certifi comes with httpx; the system store otherwise
            _SSL = ssl.create_default_context()
    return _SSL


def json_object(text: str, where: str) -> dict[str, Any]:
    """One streamed chunk as a JSON object, or a BackendError naming the server and showing the chunk."""
    try:
        chunk = json.loads(text)
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        raise BackendError(f"malformed chunk from {where} (not a JSON object): {text[:200]!r}")
    return chunk


def make_client() -> httpx.Client:
    """The client for a backend's small requests (connection checks); streams go through StreamedRequest."""
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), follow_redirects=True)


def describe_transport_error(exc: Exception, where: str, params: GenParams) -> BackendError:
    """A readable reason for an httpx or aiohttp failure; connection failures become BackendUnavailable."""
    if isinstance(exc, (httpx.ConnectTimeout, aiohttp.ConnectionTimeoutError)):
        return BackendUnavailable(f"cannot reach {where}: no connection within {params.connect_timeout_s:g} s "
                                  "(runner.connect_timeout_s)")
    if isinstance(exc, (httpx.ConnectError, aiohttp.ClientConnectorError)):
        why = str(exc) or type(exc).__name__
        refused = isinstance(getattr(exc, "os_error", None), ConnectionRefusedError) or \
            getattr(getattr(exc, "os_error", None), "errno", None) == errno.ECONNREFUSED
        if refused or "refused" in why.lower():
            why = "connection refused (is the server running?)"
        return BackendUnavailable(f"cannot reach {where}: {why}")
    if isinstance(exc, (httpx.ReadTimeout, aiohttp.SocketTimeoutError)):
        return BackendError(f"timed out: {where} sent nothing for {params.total_timeout_s:g} s "
                            "(runner.task_timeout_s)")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, aiohttp.ClientPayloadError,
                        aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return BackendUnavailable(f"{where} closed the connection mid-answer (truncated stream: {exc})")
    if isinstance(exc, aiohttp.ClientResponseError):  # not HTTP at all (a malformed status line or header)
        return BackendError(f"{where} did not answer in HTTP: {exc.message}")
    return BackendError(f"{where}: {type(exc).__name__}: {exc}")


class StreamedRequest:
    """POST a JSON body and iterate the response's lines as they arrive, under the per-task deadlines.

    `on_status(status, body)` turns an HTTP error status into the backend's own BackendError. Call `token()`
    when the first token is seen. Iterating raises BackendError with a readable reason on any failure.
    """

    def __init__(self, url: str, body: dict[str, Any], params: GenParams, where: str,
                 on_status: Callable[[int, str], BackendError], headers: dict[str, str] | None = None):
        self.url, self.body, self.params = url, body, params
        self.where, self.on_status, self.headers = where, on_status, headers or {}
        self.reason: str | None = None  # why the request was stopped (a deadline, Ctrl-C)
        self._first_seen = False
        self._queue: "queue.SimpleQueue[tuple[str, Any]]" = queue.SimpleQueue()
        self._future: Any = None
        self.sent: float | None = None  # when the request was written to its connection (time.monotonic)
        self.arrived: float | None = None  # when the bytes of the last line yielded came off the socket

    def piece(self, text: str, kind: str) -> Text:
        """A piece of the answer from the line just read, with this request's times (Text.sent, Text.arrived)."""
        return Text(text, kind=kind, arrived=self.arrived, sent=self.sent)  # type: ignore[arg-type]

    def token(self) -> None:
        """The first token (of any kind) arrived: from now on only the total deadline applies."""
        self._first_seen = True

    def abort(self, reason: str) -> None:
        """Stop this request now (Ctrl-C): the waiting slot wakes at once with `reason`."""
        if self.reason is None:
            self.reason = reason
        self._queue.put(("stopped", reason))
        if self._future is not None:
            self._future.cancel()  # on the I/O loop: closes the connection

    def lines(self) -> Iterator[str]:
        p = self.params
        t0 = time.monotonic()
        first_deadline = t0 + min(p.first_token_timeout_s, p.total_timeout_s)
        total_deadline = t0 + p.total_timeout_s
        with _LIVE_LOCK:
            _LIVE.add(self)
        self._future = _IO.submit(self._fetch)
        try:
            for line in _lines(self._chunks(first_deadline, total_deadline)):
                if self.reason:
                    break
                yield line
            if self.reason:
                raise BackendError(self.reason)
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            self._future.cancel()  # done already, or given up: never left reading

    def _chunks(self, first_deadline: float, total_deadline: float) -> Iterator[bytes]:
        """The body's bytes as the I/O thread hands them over; raises at a deadline or on a failure."""
        p = self.params
        while True:
            deadline = total_deadline if self._first_seen or first_deadline >= total_deadline else first_deadline
            try:
                kind, value = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                if deadline == total_deadline:
                    reason = f"timed out: answer not complete after {p.total_timeout_s:g} s (runner.task_timeout_s)"
                elif self._first_seen:
                    continue  # the first token came while we waited: the total deadline applies now
                else:
                    reason = (f"timed out: no token within {p.first_token_timeout_s:g} s of sending the request "
                              "(runner.first_token_timeout_s)")
                self.abort(reason)
                raise BackendError(reason) from None
            if kind == "data":
                for data, arrived in value:
                    self.arrived = arrived
                    yield data
            elif kind == "end":
                return
            elif kind == "stopped":
                raise BackendError(value)
            else:  # "error": a BackendError made on the I/O thread
                raise value

    async def _fetch(self, session: aiohttp.ClientSession) -> None:
        """On the I/O loop: send the request and hand what comes back to the slot, each piece stamped as it is
        read. Everything up to the first token goes at once; later pieces are handed over together at most every
        `_handover_s()`: the stamps keep their times, and a slot woken per token (hundreds of slots, tens of
        tokens each) kept every thread queueing for the interpreter, this loop included."""
        p, q, loop = self.params, self._queue, asyncio.get_running_loop()
        pending: list[tuple[bytes, float]] = []
        timer: asyncio.TimerHandle | None = None

        def hand_over() -> None:
            nonlocal pending, timer
            timer = None
            if pending:
                q.put(("data", pending))
                pending = []

        def put(kind: str, value: Any) -> None:
            if timer is not None:
                timer.cancel()
            hand_over()  # what was read comes before how it ended
            q.put((kind, value))

        # The slot owns the first-token and total deadlines; the read timeout is only a backstop.
        timeout = aiohttp.ClientTimeout(total=None, connect=p.connect_timeout_s, sock_read=p.total_timeout_s + 1.0)
        try:
            origin = urllib.parse.urlsplit(self.url)
            async with session.post(self.url, json=self.body, headers=self.headers, timeout=timeout,
                                    proxy=_proxy_for(f"{origin.scheme}://{origin.netloc}"),
                                    trace_request_ctx=self) as resp:
                if resp.status >= 400:
                    text = (await resp.read()).decode("utf-8", "replace")
                    wait = retry_after_s(resp.headers.get("retry-after"))
                    if resp.status in (429, 503) and wait is not None:
                        put("error", BackendThrottled(f"{self.where} answered HTTP {resp.status} with Retry-After: "
                                                     f"{resp.headers.get('retry-after')} (throttled)", wait))
                    else:
                        put("error", self.on_status(resp.status, text))
                    return
                async for data in resp.content.iter_any():
                    pending.append((data, time.monotonic()))
                    if not self._first_seen:  # until the slot has its first token: deadline, streaming stage
                        hand_over()
                    elif timer is None:
                        timer = loop.call_later(_handover_s(), hand_over)
            put("end", None)
        except asyncio.CancelledError:
            if timer is not None:
                timer.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - every failure reaches the slot as a readable reason
            put("error", describe_transport_error(exc, self.where, p))


def _handover_s() -> float:
    """How long later pieces of a stream may wait to be handed to their slot: 1 ms per stream in flight, at most
    0.25 s (the runner publishes a stream's tokens every N / 200 s anyway, runner/attempt.py), so about a
    thousand hand-overs a second in all, however many streams."""
    with _LIVE_LOCK:
        n = len(_LIVE)
    return min(0.25, n / 1000.0)


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Lines of a streamed body (LF or CRLF), decoded as UTF-8 once complete (a character split across reads
    stays whole)."""
    rest = b""
    for data in chunks:
        if b"\n" not in data:
            rest += data
            continue
        *complete, last = (rest + data).split(b"\n")
        rest = last
        for raw in complete:
            yield raw[:-1].decode("utf-8", "replace") if raw.endswith(b"\r") else raw.decode("utf-8", "replace")
    if rest:
        yield rest.decode("utf-8", "replace")


def get_json(client: httpx.Client, url: str, timeout_s: float, where: str,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """A small GET for connection checks: (status, parsed JSON or None). Raises BackendUnavailable."""
    try:
        resp = client.get(url, timeout=httpx.Timeout(timeout_s), headers=headers or {})
    except httpx.TimeoutException:
        raise BackendUnavailable(f"{where} did not answer {url} within {timeout_s:g} s "
                                 "(runner.connect_timeout_s)") from None
    except httpx.HTTPError as exc:
        raise describe_transport_error(exc, where, GenParams(1, 0.0, 0, connect_timeout_s=timeout_s,
                                                             total_timeout_s=timeout_s)) from None
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, None
