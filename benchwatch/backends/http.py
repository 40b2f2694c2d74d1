"""Streamed HTTP requests for the remote backends, with every per-task timeout enforced by the waiting slot.

The streams are sent by a worker process (benchwatch/stream_worker.py: an asyncio loop with one aiohttp session,
its HTTP parser in C) that stamps when each request left and when each piece arrived, on an interpreter of its own:
with hundreds of requests in flight the runner's threads keep this process's interpreter busy, and a reader here
would stamp late (bench/bench_concurrency.py, docs/measuring.md). The slot that asked reads the stamped bytes from
a queue, with the deadline that applies (the first token within N s, the whole answer within M s): when it passes,
the request is cancelled (the worker closes its connection) and the attempt ends as ERROR with the reason. Ctrl-C
cancels every request in flight (abort_all). Each request opens its own connection, so a cancelled one leaves
nothing behind in a pool.

Small requests (connection checks) stay on httpx in this process: `make_client` and `get_json`.
"""
from __future__ import annotations

import atexit
import collections
import email.utils
import functools
import itertools
import json
import os
import queue
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import weakref
from multiprocessing.connection import Connection
from typing import Any, Callable, Iterator

import httpx

from .. import transport_words as words
from ..tls import client_context
from .base import BackendError, BackendThrottled, BackendUnavailable, GenParams, Text

RETRY_AFTER_MAX_S = 600.0  # a server asking for a longer wait is waited this long, then asked again
BATCH_MAX_S = 0.25  # pieces after the first token reach their slot at least this often (GenParams.batch_s)

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


def start_stream_worker() -> None:
    """Start the stream worker process now (a remote backend does when it is made), so that its start-up overlaps
    the connection check instead of delaying the first task."""
    _WORKER.ensure()


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


class _WorkerLink:
    """The runner's end of benchwatch/stream_worker.py: starts the worker at the first stream (again after it
    died), sends it requests, and hands what comes back to each request's queue from one reading thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the connection, the process, the requests; never held across a send
        self._conn: Connection | None = None
        self._proc: subprocess.Popen | None = None
        self._requests: dict[int, tuple[StreamedRequest, Connection]] = {}  # in flight, and on which worker
        self._ids = itertools.count(1)
        # Messages for the worker, each with the connection it is meant for. Whichever slot finds no send under
        # way sends everything waiting; the others leave theirs and go on. A slot never waits for another's send
        # (a system call, made without the interpreter lock): at 256 in flight a lock held across it made about
        # one slot in two wait at each request.
        self._outbox: "collections.deque[tuple[Connection, tuple]]" = collections.deque()
        self._sending = threading.Lock()

    def ensure(self) -> None:
        """Start the worker if it is not running (it takes ~0.4 s to import aiohttp; nothing waits for it)."""
        with self._lock:
            if self._conn is None:
                self._spawn()

    def start(self, req: "StreamedRequest", *fields: Any) -> int:
        with self._lock:
            if self._conn is None:
                self._spawn()
            rid = next(self._ids)
            conn = self._conn
            self._requests[rid] = (req, conn)  # type: ignore[assignment]
        self._post(conn, ("start", rid, *fields))  # type: ignore[arg-type]
        return rid

    def tell(self, verb: str, rid: int) -> None:
        """A one-word message about a request ("token", "cancel"), dropped when it has already ended."""
        if rid not in self._requests:  # ended (the usual case for the cancel after an answer): no lock to take
            return
        with self._lock:
            entry = self._requests.pop(rid, None) if verb == "cancel" else self._requests.get(rid)
        if entry is not None:
            self._post(entry[1], (verb, rid))

    def _post(self, conn: Connection, message: tuple) -> None:
        self._outbox.append((conn, message))
        # Checked again after each send: a message left while this thread was sending goes out in the next turn.
        while self._outbox and self._sending.acquire(blocking=False):
            try:
                waiting = []
                while self._outbox:
                    waiting.append(self._outbox.popleft())
                for to, group in itertools.groupby(waiting, key=lambda item: item[0]):
                    try:
                        to.send([m for _, m in group])
                    except OSError:
                        pass  # closed at exit, or the worker died: the reading thread fails its requests
            finally:
                self._sending.release()

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        try:
            # -P: not the working directory first on sys.path, so a folder named like a module cannot shadow it
            proc = subprocess.Popen([sys.executable, "-P", "-m", "benchwatch.stream_worker", str(theirs.fileno())],
                                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, env=env)  # stderr stays: a crash shows there
        finally:
            theirs.close()
        conn = Connection(ours.detach())
        self._conn, self._proc = conn, proc
        threading.Thread(target=self._read, args=(conn, proc), name="benchwatch-streams", daemon=True).start()

    def _read(self, conn: Connection, proc: subprocess.Popen) -> None:
        try:
            while True:
                for message in conn.recv():
                    self._dispatch(message)
        except (EOFError, OSError):
            pass
        with self._lock:
            if self._conn is conn:
                self._conn = self._proc = None
            orphans = [rid for rid, (_, on) in self._requests.items() if on is conn]
            orphans = [self._requests.pop(rid)[0] for rid in orphans]
        try:
            code: int | None = proc.wait(1.0)  # its end of the socket closes as it dies: reap it, learn why
        except subprocess.TimeoutExpired:
            code = None
        how = f"exit code {code}" if code is not None else "its socket closed"
        why = BackendError(f"benchwatch's stream worker process ended ({how}): the request was lost; "
                           "a new worker serves the next one")
        for req in orphans:
            req._queue.put(("error", why))

    def _dispatch(self, message: tuple) -> None:
        verb, rid = message[0], message[1]
        entry = self._requests.get(rid)
        if entry is None:
            return  # cancelled meanwhile
        req = entry[0]
        if verb == "data":
            req._queue.put(("data", message[2]))
        elif verb == "sent":
            req.sent = message[2]
        else:
            # Without the lock: one dict operation is atomic, and only this thread iterates the dict (_read).
            self._requests.pop(rid, None)
            if verb == "end":
                req._queue.put(("end", None))
            elif verb == "status":
                req._queue.put(("status", message[2:]))
            else:
                kind, text = message[2], message[3]
                req._queue.put(("error", (BackendUnavailable if kind == "unavailable" else BackendError)(text)))

    def close(self) -> None:
        """At exit: close the socket (the worker ends on its own) and reap it."""
        with self._lock:
            conn, proc, self._conn, self._proc = self._conn, self._proc, None, None
        if conn is not None:
            # Shut the socket down first: that wakes our reading thread and ends the worker. A bare close does
            # neither while that thread is inside recv() on it.
            try:
                with socket.socket(fileno=os.dup(conn.fileno())) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the worker is gone already
            conn.close()
        if proc is not None:
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()

    def forget(self) -> None:
        """In a forked child: the worker belongs to the parent. Close our copy of its socket (so it still ends
        with the parent) and start a worker of our own if this process streams."""
        conn, self._conn, self._proc = self._conn, None, None
        self._lock, self._sending = threading.Lock(), threading.Lock()
        self._requests, self._outbox = {}, collections.deque()
        if conn is not None:
            conn.close()  # our copy only: no shutdown, which would end the parent's exchange too


_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_WORKER = _WorkerLink()
atexit.register(_WORKER.close)


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's threads: no request of theirs is its own, and a lock one of them
    held at the fork would never be released."""
    global _LIVE, _LIVE_LOCK
    _LIVE, _LIVE_LOCK = weakref.WeakSet(), threading.Lock()
    _WORKER.forget()


os.register_at_fork(after_in_child=_after_fork_in_child)


@functools.lru_cache(maxsize=64)
def _proxy_for(url: str) -> str | None:
    """The proxy for `url` from HTTP_PROXY / HTTPS_PROXY / NO_PROXY (as httpx and curl read them), or None."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass_environment(parts.hostname or ""):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


def json_object(text: str, where: str) -> dict[str, Any]:
    """One streamed chunk as a JSON object, or a BackendError naming the server and showing the chunk."""
    try:
        chunk = json.loads(text)
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        raise BackendError(f"malformed chunk from {where} (not a JSON object): {text[:200]!r}")
    return chunk


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client of this process: loading the CA bundle takes ~30 ms, once per process
    rather than once per model's backend."""
    return client_context()


def make_client() -> httpx.Client:
    """The client for a backend's small requests (connection checks); streams go through StreamedRequest."""
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), follow_redirects=True,
                        verify=_tls_context())


def describe_transport_error(exc: Exception, where: str, params: GenParams) -> BackendError:
    """A readable reason for a failed small request (httpx); connection failures become BackendUnavailable.
    Streams are worded by the stream worker (benchwatch/stream_worker.py: describe), in the same words."""
    if isinstance(exc, httpx.ConnectTimeout):
        return BackendUnavailable(words.no_connection(where, params.connect_timeout_s))
    if isinstance(exc, httpx.ConnectError):
        return BackendUnavailable(words.cannot_reach(where, str(exc) or type(exc).__name__))
    if isinstance(exc, httpx.ReadTimeout):
        return BackendError(f"timed out: {where} sent nothing for {params.total_timeout_s:g} s "
                            "(runner.task_timeout_s)")
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return BackendUnavailable(words.truncated(where, exc))
    return BackendError(words.other(where, exc))


class StreamedRequest:
    """POST a JSON body and iterate the response's lines as they arrive, under the per-task deadlines.

    The stream worker process sends it and stamps each piece (benchwatch/stream_worker.py); this side waits for
    the pieces with the deadline that applies. `on_status(status, body)` turns an HTTP error status into the
    backend's own BackendError. Call `token()` when the first token is seen. Iterating raises BackendError with
    a readable reason on any failure.
    """

    def __init__(self, url: str, body: dict[str, Any], params: GenParams, where: str,
                 on_status: Callable[[int, str], BackendError], headers: dict[str, str] | None = None):
        self.url, self.body, self.params = url, body, params
        self.where, self.on_status, self.headers = where, on_status, headers or {}
        self.reason: str | None = None  # why the request was stopped (a deadline, Ctrl-C)
        self._first_seen = False
        self._queue: "queue.SimpleQueue[tuple[str, Any]]" = queue.SimpleQueue()
        self._rid: int | None = None  # its number with the stream worker
        self.sent: float | None = None  # when the request was written to its connection (time.monotonic)
        self.arrived: float | None = None  # when the bytes of the last line yielded came off the socket

    def piece(self, text: str, kind: str) -> Text:
        """A piece of the answer from the line just read, with this request's times (Text.sent, Text.arrived)."""
        return Text(text, kind=kind, arrived=self.arrived, sent=self.sent)  # type: ignore[arg-type]

    def token(self) -> None:
        """The first token (of any kind) arrived: from now on only the total deadline applies, and the worker
        may hand later pieces over in batches."""
        if not self._first_seen:
            self._first_seen = True
            if self._rid is not None:
                _WORKER.tell("token", self._rid)

    def abort(self, reason: str) -> None:
        """Stop this request now (Ctrl-C): the waiting slot wakes at once with `reason`."""
        if self.reason is None:
            self.reason = reason
        self._queue.put(("stopped", reason))
        if self._rid is not None:
            _WORKER.tell("cancel", self._rid)  # the worker closes its connection

    def lines(self) -> Iterator[str]:
        p = self.params
        t0 = time.monotonic()
        first_deadline = t0 + min(p.first_token_timeout_s, p.total_timeout_s)
        total_deadline = t0 + p.total_timeout_s
        with _LIVE_LOCK:
            _LIVE.add(self)
        origin = urllib.parse.urlsplit(self.url)
        self._rid = _WORKER.start(self, self.url, json.dumps(self.body).encode(), self.headers,
                                  _proxy_for(f"{origin.scheme}://{origin.netloc}"), self.where,
                                  p.connect_timeout_s, min(p.batch_s, BATCH_MAX_S))
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
            _WORKER.tell("cancel", self._rid)  # done already (then nothing is sent), or given up: never left reading

    def _chunks(self, first_deadline: float, total_deadline: float) -> Iterator[bytes]:
        """The body's bytes as the worker hands them over; raises at a deadline or on a failure."""
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
            elif kind == "status":
                raise self._status_error(*value)
            else:  # "error": the worker's reason, or the worker's end
                raise value

    def _status_error(self, status: int, text: str, retry_after: str | None) -> BackendError:
        wait = retry_after_s(retry_after)
        if status in (429, 503) and wait is not None:
            return BackendThrottled(f"{self.where} answered HTTP {status} with Retry-After: {retry_after} "
                                    "(throttled)", wait)
        return self.on_status(status, text)


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
