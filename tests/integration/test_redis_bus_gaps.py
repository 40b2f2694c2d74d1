"""The Redis bus where entries can go unread: a worker that starts before Redis is up, a reader that lags when
Redis restarts without persistence. The bus runs in this process against a real redis-server (tests/services.py);
the store is a real SQLite file holding the run, as the runner would have committed it before announcing it."""
from __future__ import annotations

import logging
import time

import pytest
import redis as redis_client

from benchwatch.events import parse_events
from benchwatch.server.bus import BusUnavailable, RebuildingFold, RedisBus
from benchwatch.server.hub import Hub
from benchwatch.server.rebuild import rebuilt_state
from benchwatch.state import initial_state
from tests.services import RedisServer, redis_server
from tests.unit.test_rebuild import a_run_killed_during_its_third_model, add

pytestmark = pytest.mark.slow


def a_sample(seq: int):
    return parse_events([{"type": "telemetry", "run_id": "host", "seq": seq, "cpu_pct": 1.0}])


def done(hub: Hub) -> int:
    return hub.read(lambda s: s["counters"]["done"])


def wait(pred, timeout: float = 20) -> bool:
    deadline = time.time() + timeout
    while not pred() and time.time() < deadline:
        time.sleep(0.05)
    return pred()


def a_hub_showing(store, run_id) -> Hub:
    """A worker that has folded the run so far (9 of its 12 verdicts)."""
    hub = Hub(rebuilt_state(store, run_id, initial_state()))
    assert done(hub) == 9
    return hub


def the_rest_committed(store, run_id) -> None:
    for task in ("b", "c"):
        add(store, run_id, "m3", "d", task, "PASS")
    add(store, run_id, "m3", "e", "x", "FAIL")


def test_the_reader_has_its_place_before_the_first_batch_is_taken(tmp_path):
    """A batch this worker accepts right after it starts is folded: the reader's starting point was taken first
    (it used to be taken by the reader thread, which could run after the first request and skip that batch)."""
    with redis_server(tmp_path) as redis:
        bus = RedisBus(RebuildingFold(Hub(initial_state()), None), redis.url)
        bus.start()
        assert bus.last_id is not None
        bus.publish(a_sample(1))
        assert wait(lambda: bus.folded == 1), bus.status()


def test_redis_restarted_without_what_a_lagging_reader_had_not_read(tmp_path):
    store, run_id = a_run_killed_during_its_third_model(tmp_path)
    hub = a_hub_showing(store, run_id)
    with redis_server(tmp_path) as redis:
        bus = RedisBus(RebuildingFold(hub, store), redis.url)
        bus.start()
        with bus._lock:  # the reader stalls on its next fold, as a worker busy serving would
            bus.publish(a_sample(1))
            assert wait(lambda: bus.last_id != "0-0")  # it holds that entry, waiting for the lock
            the_rest_committed(store, run_id)
            for seq in (2, 3, 4):  # their announcements: taken by Redis, never read by this worker
                bus.publish(a_sample(seq))
            redis.stop()
            redis.start()  # the same port, empty
        assert wait(lambda: done(hub) == 12), (done(hub), bus.status())
        assert hub.read(lambda s: s["run"]["id"]) == run_id
        bus.publish(a_sample(5))  # and it reads on
        assert wait(lambda: bus.folded >= 2), bus.status()


def test_a_worker_started_while_redis_was_away_takes_nothing_it_would_not_read(tmp_path):
    store, run_id = a_run_killed_during_its_third_model(tmp_path)
    hub = a_hub_showing(store, run_id)
    redis = RedisServer(tmp_path)  # not started yet
    bus = RedisBus(RebuildingFold(hub, store), redis.url)
    bus.start()
    assert bus.last_id is None
    with pytest.raises(BusUnavailable, match="not reading it yet"):  # ingest answers 503: the runner resends
        bus.publish(a_sample(1))
    the_rest_committed(store, run_id)  # while Redis was away, other workers may have taken these
    redis.start()
    try:
        assert wait(lambda: bus.connected), bus.status()
        assert wait(lambda: done(hub) == 12), (done(hub), bus.status())
        bus.publish(a_sample(2))
        assert wait(lambda: bus.folded == 1), bus.status()
    finally:
        redis.stop()


def test_a_reconnection_that_missed_nothing_rebuilds_nothing(tmp_path, caplog):
    """The entry last read is still in the stream (the connection dropped, Redis kept its data): the reader goes
    on from it, and the live state is not replaced by the store's."""
    caplog.set_level(logging.INFO, logger="benchwatch.server.bus")
    store, run_id = a_run_killed_during_its_third_model(tmp_path)
    hub = a_hub_showing(store, run_id)
    with redis_server(tmp_path) as redis:
        bus = RedisBus(RebuildingFold(hub, store), redis.url)
        bus.start()
        bus.publish(a_sample(1))
        assert wait(lambda: bus.folded == 1)
        the_rest_committed(store, run_id)  # in the store, but no event about it: the state must not move
        # Redis drops every connection but this one (the reader's among them); it keeps its data.
        redis_client.Redis.from_url(redis.url).client_kill_filter(_type="normal", skipme=True)
        bus.publish(a_sample(2))
        assert wait(lambda: bus.folded == 2), bus.status()
        assert done(hub) == 9
        assert "reading on a new connection" in caplog.text and "nothing missed" in caplog.text
        assert "may have lost events" not in caplog.text


def test_a_server_that_refuses_client_names_still_carries_the_run(tmp_path, caplog):
    """A Redis user whose access rules deny CLIENT (managed servers do this): the worker can't tell a new
    connection, says so once, and reads and publishes as before."""
    with redis_server(tmp_path) as redis:
        admin = redis_client.Redis.from_url(redis.url)
        admin.acl_setuser("limited", enabled=True, passwords=["+secret"], keys=["*"], commands=["+@all", "-client"])
        limited_url = redis.url.replace("redis://", "redis://limited:secret@")
        bus = RedisBus(RebuildingFold(Hub(initial_state()), None), limited_url)
        bus.start()
        assert bus.last_id is not None
        for seq in (1, 2):
            bus.publish(a_sample(seq))
        assert wait(lambda: bus.folded == 2), bus.status()
        assert caplog.text.count("refuses CLIENT SETNAME/GETNAME") == 1
