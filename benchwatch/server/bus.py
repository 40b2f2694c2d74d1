"""The event bus: how an accepted batch of events (the runner's, the sampler's) reaches the hub.

LocalBus (the default): one server process folds each batch itself, at once.

RedisBus (`server.bus: redis://HOST:PORT/DB`): ingest appends the batch to a Redis stream and every server worker
reads that stream in order and folds it into its own hub through the same reducer, so several gunicorn workers
(and runners posting to any of them) share one live view. A stream rather than pub/sub: a worker whose connection
drops carries on from the last entry it read and misses nothing, where pub/sub would lose what was published
meanwhile. The 1 Hz host sampler runs in one worker at a time (a lease in Redis), so samples are not doubled.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from ..events import Event, EventError, parse_events, to_json
from ..store import Store
from .hub import Hub
from .rebuild import rebuilt_state

log = logging.getLogger(__name__)
STREAM_KEY = "benchwatch:events"
SAMPLER_KEY = "benchwatch:sampler"
STREAM_MAXLEN = 100_000  # entries kept (about): over an hour of batches at the runner's pace
SAMPLER_LEASE_MS = 3000

# Keep the lease if we hold it, else take it if nobody does: one atomic step.
_LEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


class BusUnavailable(RuntimeError):
    """The bus can't take the batch now (Redis unreachable): ingest answers 503 and the runner retries."""


class RebuildingFold:
    """Folds accepted batches into the hub, each event into the run it belongs to. An event of a run this server
    doesn't hold (it restarted mid-run, or a worker joined late), or a batch the runner marked `resync`, first
    rebuilds that run's state from the store (rebuild.py), so the runner's next events land on a correct picture;
    but never while another run is live and running, and never for a run the store doesn't know: such events are
    skipped (counted in the hub's foreign_events, logged), they can't touch the live run's state. Ingest refuses
    the unknown-run case with 409 at the door already; this holds the rule for the Redis bus's entries too."""

    def __init__(self, hub: Hub, store: Store | None):
        self.hub, self.store = hub, store

    def __call__(self, events: list[Event], resync: bool = False) -> int:
        changed, pending = 0, []
        run = self.hub.read(lambda s: s["run"])
        live, running = (run["id"], run["status"] == "running") if run else (None, False)
        for i, e in enumerate(events):
            if e.type == "run_started":  # folded below, with what pending holds: the live run from here on
                live, running = e.run_id, True
            foreign = e.type not in ("run_started", "telemetry") and e.run_id != live
            if foreign or (resync and i == 0 and e.type != "run_started"):
                changed += self.hub.fold(pending)
                pending = []
                if foreign and live is not None and running:
                    self.hub.foreign_events += 1
                    log.warning("%s event of run %s skipped: run %s is live", e.type, e.run_id, live)
                    continue
                new = self._rebuilt(e.run_id)
                if new is not None:
                    log.info("rebuilt the state of run %s from the store", e.run_id)
                    self.hub.reset(new)
                    live, running = e.run_id, bool(new.get("run")) and new["run"]["status"] == "running"
                elif foreign:
                    self.hub.foreign_events += 1
                    log.warning("%s event of run %s skipped: the store has no such run", e.type, e.run_id)
                    continue
            if e.type == "run_finished" and e.run_id == live:
                running = False
            pending.append(e)
        return changed + self.hub.fold(pending)

    def rebuild_running(self) -> str | None:
        """At start: when the store's latest run is still running (this server went down while it ran), show it
        at once, rebuilt from the store, rather than wait for the runner's next event. Returns its id."""
        return self._rebuild_latest("it was running when this server started", only_running=True)

    def rebuild_after_gap(self) -> str | None:
        """The bus may have lost events this server never folded (Redis restarted without them, or this worker
        began reading after other workers had taken some): the store's latest run, rebuilt from the store, where
        the runner commits every result before it announces it. The events after the gap fold on top of it, and a
        final verdict the rebuilt state already holds is not counted twice (state.py). Returns the run's id."""
        holds_a_run = self.hub.read(lambda s: s["run"]) is not None
        return self._rebuild_latest("the event bus may have lost events", only_running=not holds_a_run)

    def _rebuild_latest(self, why: str, only_running: bool) -> str | None:
        if self.store is None:
            return None
        try:
            run_id = self.store.latest_run_id()
            run = self.store.get_run(run_id) if run_id else None
            if run is None or (only_running and run["status"] != "running"):
                return None
        except Exception:  # the store unreachable: serve anyway, the next event of an unknown run tries again
            log.exception("could not rebuild the latest run from the store (%s)", why)
            return None
        new = self._rebuilt(run_id)  # type: ignore[arg-type]
        if new is None:
            return None
        log.info("rebuilt the state of run %s from the store (%s)", run_id, why)
        self.hub.reset(new)
        return run_id

    def _rebuilt(self, run_id: str) -> dict[str, Any] | None:
        if self.store is None:
            return None
        try:
            return rebuilt_state(self.store, run_id, self.hub.snapshot()[0])
        except Exception:  # a stored config this version refuses, the store down: keep the live state as it is
            log.exception("could not rebuild run %s from the store", run_id)
            return None



class LocalBus:
    """One process: fold at once. Returns how many events changed the state."""
    kind = "local"

    def __init__(self, fold: RebuildingFold):
        self.fold = fold
        self._lock = threading.Lock()  # one batch at a time: a rebuild and the fold after it must not interleave

    def start(self) -> None:
        self.fold.rebuild_running()  # a run the store says is running: on the page at once

    def publish(self, events: list[Event], resync: bool = False) -> int | None:
        with self._lock:
            return self.fold(events, resync)

    def holds_sampler(self) -> bool:
        return True

    def status(self) -> dict[str, Any]:
        return {"kind": self.kind}


class RedisBus(LocalBus):
    """Every worker appends to and reads from one Redis stream (see the module's docstring)."""
    kind = "redis"

    def __init__(self, fold: RebuildingFold, url: str, stream: str = STREAM_KEY):
        super().__init__(fold)
        import redis  # the 'redis' extra: imported only when a bus is configured

        self._errors = (redis.RedisError, OSError)
        self.url = _without_password(url)
        self.stream = stream
        # Publishing answers an HTTP request: fail fast. Reading blocks up to 1 s per XREAD: a longer timeout.
        self._writer = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        self._reader = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        self._lease = self._writer.register_script(_LEASE_SCRIPT)
        self.me = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.connected = False
        self.last_error = ""
        self.folded = 0
        self.last_id: str | None = None
        self._names_connections = True  # see _named

    def start(self) -> None:
        """Take a place in the stream before serving (so no batch this worker accepts falls before its reader's
        starting point), then rebuild what the store holds, then read. Where Redis is away now, the reader takes
        its place when it comes back and rebuilds then (_read_loop)."""
        try:
            self._take_place()
        except self._errors as exc:
            self.last_error = f"read: {exc}"
            log.warning("event bus %s unreachable at start (%s); the reader keeps trying", self.url, exc)
        super().start()
        threading.Thread(target=self._read_loop, name="bus-reader", daemon=True).start()

    def publish(self, events: list[Event], resync: bool = False) -> int | None:
        """Append the batch; the reader (of every worker, this one included) folds it. None: not folded yet."""
        if self.last_id is None:  # the batch could land before the reader's starting point and never be folded
            raise BusUnavailable(f"event bus {self.url}: this server is not reading it yet "
                                 f"({self.last_error or 'starting'}); send the batch again")
        payload = json.dumps({"resync": resync, "events": [to_json(e) for e in events]}, separators=(",", ":"))
        try:
            self._writer.xadd(self.stream, {"batch": payload}, maxlen=STREAM_MAXLEN, approximate=True)
        except self._errors as exc:
            self.last_error = f"publish: {exc}"
            raise BusUnavailable(f"event bus {self.url} unreachable ({exc}); the batch was not taken, "
                                 "send it again") from exc
        return None

    def holds_sampler(self) -> bool:
        try:
            return bool(self._lease(keys=[SAMPLER_KEY], args=[self.me, SAMPLER_LEASE_MS]))
        except self._errors:
            return False

    def status(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "connected": self.connected, "last_error": self.last_error,
                "folded_batches": self.folded, "last_id": self.last_id, "worker": self.me}

    def _take_place(self) -> None:
        """Start after the newest entry: what came before is in the store (the runner commits a result before it
        announces it), and the first event of a run this worker doesn't hold rebuilds it from there."""
        named, newest = self._reader.pipeline(transaction=False).client_setname(self.me) \
            .xrevrange(self.stream, count=1).execute(raise_on_error=False)
        if isinstance(newest, Exception):
            raise newest
        self._named(named)
        self.last_id = newest[0][0].decode() if newest else "0-0"

    def _named(self, reply: Any) -> bool:
        """Whether the server took or told the connection's name. A server whose access rules refuse CLIENT
        SETNAME / GETNAME can't tell a new connection: the reader reads on without the check (said once)."""
        if not isinstance(reply, Exception):
            return True
        if self._names_connections:
            self._names_connections = False
            log.warning("event bus %s refuses CLIENT SETNAME/GETNAME (%s): a worker can't notice entries lost "
                        "when Redis restarts without persistence", self.url, reply)
        return False

    def _continues(self, last_id: str) -> bool:
        """On a new connection: is the last entry this worker folded still in the stream? If not (Redis restarted
        without persistence, or trimmed the stream past this reader while it was away), entries may have gone
        unread, and only the store can say what they held. "0-0" (the stream was empty) can't be checked."""
        return last_id != "0-0" and bool(self._reader.xrange(self.stream, last_id, last_id))

    def _read_loop(self) -> None:
        backoff = 0.2
        while True:
            try:
                if self.last_id is None:  # Redis was away when this worker started: read from now on, and
                    self._take_place()    # take what was missed meanwhile from the store
                    with self._lock:
                        self.fold.rebuild_after_gap()
                last_id = self.last_id
                # Redis's client reconnects by itself, so a lost connection need not raise here. The reader names
                # its connection; a read that finds no name on it (asked in the same round trip) ran on a new one.
                name, reply = self._reader.pipeline(transaction=False).client_getname() \
                    .xread({self.stream: last_id}, count=200, block=1000).execute(raise_on_error=False)
                if isinstance(reply, Exception):
                    raise reply
                if self._named(name) and name != self.me:
                    if self._continues(last_id):
                        log.info("event bus %s: reading on a new connection, from %s: nothing missed", self.url,
                                 last_id)
                    else:
                        with self._lock:
                            self.fold.rebuild_after_gap()
                    self._named(self._reader.pipeline(transaction=False).client_setname(self.me)
                                .execute(raise_on_error=False)[0])
                if not self.connected:
                    log.info("event bus %s: reading from %s", self.url, last_id)
                self.connected, backoff = True, 0.2
                for _, entries in reply or []:
                    for entry_id, fields in entries:
                        self._fold_entry(entry_id.decode(), fields)
            except Exception as exc:  # Redis away, or anything else: this worker must never stop reading
                if not isinstance(exc, self._errors):
                    log.exception("event bus %s: reading failed", self.url)
                elif self.connected or not self.last_error.startswith("read"):
                    log.warning("event bus %s: %s; retrying (from %s)", self.url, exc, self.last_id)
                self.connected, self.last_error = False, f"read: {exc}"
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _fold_entry(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        self.last_id = entry_id
        try:
            body = json.loads(fields[b"batch"])
            events = parse_events(body["events"])
        except (KeyError, TypeError, ValueError, EventError) as exc:  # not ours, or damaged: skip just this one
            log.warning("event bus %s: entry %s skipped: %s", self.url, entry_id, exc)
            return
        try:
            with self._lock:
                self.fold(events, bool(body.get("resync")))
        except Exception:  # e.g. the store unreachable during a rebuild: this batch only, keep reading
            log.exception("event bus %s: entry %s not folded", self.url, entry_id)
            return
        self.folded += 1


def make_bus(hub: Hub, store: Store | None, url: str | None) -> LocalBus:
    """`url` is server.bus, already checked by the config schema."""
    fold = RebuildingFold(hub, store)
    return RedisBus(fold, url) if url else LocalBus(fold)


def check_bus(url: str) -> tuple[bool, str] | None:
    """(fatal, why) when the bus can't be used right now, for `serve` to say at start; None when it can. Runs in
    gunicorn's master before the workers patch the standard library for gevent, so it imports nothing of redis:
    it finds the package and tries a TCP connection."""
    if importlib.util.find_spec("redis") is None:
        return True, "server.bus needs the 'redis' package: pip install -e '.[redis]'"
    parts = urlsplit(url)
    if parts.scheme == "redis":
        try:
            socket.create_connection((parts.hostname or "localhost", parts.port or 6379), timeout=2).close()
        except OSError as exc:
            return False, (f"event bus {_without_password(url)} unreachable now ({exc}); the server keeps trying, "
                           "and ingest answers 503 meanwhile")
    return None


def _without_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
