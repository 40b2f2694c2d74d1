"""Streamed HTTP requests for the remote backends, with every per-task timeout enforced at the socket.

httpx gives us the bytes as they arrive (no buffering between the socket and our clock) and a connect timeout.
A read timeout alone cannot express "first token within N s, whole answer within M s", so a watchdog (one
thread for every request in flight) holds the two deadlines and, when one passes, shuts the socket down: the blocked read returns at once and the
attempt ends as ERROR with the reason. Each request opens its own connection so the watchdog always knows the
socket (httpcore's trace hook hands it over at connect time); on a LAN that costs well under a millisecond.
"""
from __future__ import annotations

import email.utils
import heapq
import json
import socket
import threading
import time
import weakref
from typing import Any, Callable, Iterator

import httpx

from .base import BackendError, BackendThrottled, BackendUnavailable, GenParams

RETRY_AFTER_MAX_S = 600.0  # a server asking for a longer wait is waited this long, then asked again

# Every watchdog whose request is under way: Ctrl-C cuts them all at once (abort_all), so no slot stays blocked
# in a read while the run stops.
_LIVE: "weakref.WeakSet[Watchdog]" = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def abort_all(reason: str) -> int:
    """Cut the socket of every request in flight in this process; returns how many were cut."""
    with _LIVE_LOCK:
        dogs = list(_LIVE)
    for dog in dogs:
        dog.abort(reason)
    return len(dogs)


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


class _Deadlines:
    """One thread holds every request's deadlines (a heap), so a request in flight costs no thread of its own:
    with hundreds of attempts in flight (runner.concurrency) a thread and a condition per request cost more CPU
    than the rest of the attempt. Entries of finished requests are dropped when their time comes."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, "Watchdog"]] = []
        self._cond = threading.Condition()
        self._count = 0
        self._thread: threading.Thread | None = None

    def add(self, when: float, dog: "Watchdog") -> None:
        with self._cond:
            self._count += 1
            heapq.heappush(self._heap, (when, self._count, dog))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="benchwatch-http-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][2] is dog:  # a new earliest deadline: wake the thread to wait less
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                when, _, dog = self._heap[0]
                left = when - dog.clock()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
            dog._expired(when)


_DEADLINES = _Deadlines()


class Watchdog:
    """Two deadlines from the moment the request starts: first token, then the whole answer."""

    def __init__(self, params: GenParams, clock: Callable[[], float] = time.monotonic):
        self.params, self.clock = params, clock
        t0 = clock()
        self.first_deadline = t0 + min(params.first_token_timeout_s, params.total_timeout_s)
        self.total_deadline = t0 + params.total_timeout_s
        self.reason: str | None = None
        self._sock: socket.socket | None = None
        self._first_seen = False
        self._done = False
        self._lock = threading.Lock()
        with _LIVE_LOCK:
            _LIVE.add(self)
        _DEADLINES.add(self.first_deadline, self)

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            if self.reason:  # a deadline passed while connecting
                self._cut()

    def token(self) -> None:
        """The first token (of any kind) arrived: from now on only the total deadline applies."""
        self._first_seen = True

    def stop(self) -> None:
        self._done = True
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def abort(self, reason: str) -> None:
        """Stop this request now (Ctrl-C): cut its socket; the read in progress returns at once."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            self._cut()

    def _expired(self, when: float) -> None:
        """Called by the deadline thread when one of this request's deadlines has come."""
        if self._done or self.reason:
            return
        p = self.params
        if when == self.first_deadline and self.first_deadline < self.total_deadline:
            if self._first_seen:
                _DEADLINES.add(self.total_deadline, self)
                return
            reason = (f"timed out: no token within {p.first_token_timeout_s:g} s of sending the request "
                      "(runner.first_token_timeout_s)")
        else:
            reason = f"timed out: answer not complete after {p.total_timeout_s:g} s (runner.task_timeout_s)"
        with self._lock:
            if self.reason is None:
                self.reason = reason
            self._cut()

    def _cut(self) -> None:
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv (close() would not)
            except OSError:
                pass


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
    # No keep-alive: each request opens its own connection so its socket is known to the watchdog.
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), follow_redirects=True)


def describe_transport_error(exc: Exception, where: str, params: GenParams) -> BackendError:
    """A readable reason for an httpx failure; connection failures become BackendUnavailable."""
    if isinstance(exc, httpx.ConnectTimeout):
        return BackendUnavailable(f"cannot reach {where}: no connection within {params.connect_timeout_s:g} s "
                                  "(runner.connect_timeout_s)")
    if isinstance(exc, httpx.ConnectError):
        why = str(exc) or type(exc).__name__
        if "refused" in why.lower():
            why = "connection refused (is the server running?)"
        return BackendUnavailable(f"cannot reach {where}: {why}")
    if isinstance(exc, httpx.ReadTimeout):
        return BackendError(f"timed out: {where} sent nothing for {params.total_timeout_s:g} s "
                            "(runner.task_timeout_s)")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return BackendUnavailable(f"{where} closed the connection mid-answer (truncated stream: {exc})")
    return BackendError(f"{where}: {type(exc).__name__}: {exc}")


class StreamedRequest:
    """POST a JSON body and iterate the response's lines as they arrive, under the per-task deadlines.

    `on_status(status, body)` turns an HTTP error status into the backend's own BackendError. Call `token()`
    when the first token is seen. Iterating raises BackendError with a readable reason on any failure.
    """

    def __init__(self, client: httpx.Client, url: str, body: dict[str, Any], params: GenParams, where: str,
                 on_status: Callable[[int, str], BackendError], headers: dict[str, str] | None = None):
        self.client, self.url, self.body, self.params = client, url, body, params
        self.where, self.on_status, self.headers = where, on_status, headers or {}
        self.dog: Watchdog | None = None

    def token(self) -> None:
        if self.dog:
            self.dog.token()

    def _trace(self, name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.complete" and self.dog:
            stream = info.get("return_value")
            self.dog.attach(stream.get_extra_info("socket") if stream is not None else None)

    def lines(self) -> Iterator[str]:
        p = self.params
        # The watchdog owns first-token and total deadlines; the read timeout is only a backstop.
        timeout = httpx.Timeout(connect=p.connect_timeout_s, read=p.total_timeout_s + 1.0,
                                write=p.connect_timeout_s, pool=p.connect_timeout_s)
        self.dog = dog = Watchdog(p)
        try:
            with self.client.stream("POST", self.url, json=self.body, headers=self.headers, timeout=timeout,
                                    extensions={"trace": self._trace}) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    wait = retry_after_s(resp.headers.get("retry-after"))
                    if resp.status_code in (429, 503) and wait is not None:
                        raise BackendThrottled(f"{self.where} answered HTTP {resp.status_code} with Retry-After: "
                                               f"{resp.headers.get('retry-after')} (throttled)", wait)
                    raise self.on_status(resp.status_code, resp.text)
                for line in _lines(resp.iter_bytes()):
                    if dog.reason:
                        break
                    yield line
            if dog.reason:
                raise BackendError(dog.reason)
        except httpx.HTTPError as exc:
            if dog.reason:  # our watchdog cut the socket: say why, not how the read failed
                raise BackendError(dog.reason) from None
            raise describe_transport_error(exc, self.where, p) from None
        finally:
            dog.stop()


def _lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Lines of a streamed body (LF or CRLF), decoded as UTF-8 once complete. Cheaper per chunk than httpx's
    iter_lines (a text decoder and a line decoder per chunk), which counts with hundreds of streams in flight."""
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
