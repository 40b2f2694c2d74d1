"""Scale-out: two gunicorn workers share one live view through a real Redis server (Debian's redis-server on a
loopback port, tests/services.py). The runner posts to whichever worker the kernel hands its connection; every
SSE client, on either worker, ends with the store's picture. Redis taken away mid-run loses nothing."""
from __future__ import annotations

import threading
import time

import pytest
import redis as redis_client

from benchwatch.config import load_config
from benchwatch.runner import Runner
from benchwatch.runner.http_sink import HttpSink
from benchwatch.store import Store
from tests.integration.live_server import TOKEN, LiveServer, StreamReader, run_events
from tests.integration.test_server_runs import counters_from_store, scripted_config
from tests.services import redis_server

pytestmark = pytest.mark.slow


def readers_on_both_workers(url: str, tries: int = 40) -> list[StreamReader]:
    """Open streams until both workers serve at least one (the kernel picks the worker per connection)."""
    readers: list[StreamReader] = []
    for _ in range(tries):
        readers.append(StreamReader(url))
        if len({r.response_headers.get("x-benchwatch-worker") for r in readers}) == 2:
            return readers
    pids = {r.response_headers.get("x-benchwatch-worker") for r in readers}
    for r in readers:
        r.close()
    raise AssertionError(f"{tries} streams all landed on worker(s) {pids}")


def without_telemetry(state: dict) -> dict:
    # Host samples taken before a worker started reading are not in its window: compare the run itself.
    return {k: v for k, v in state.items() if k != "telemetry"}


def test_two_workers_share_one_live_view(tmp_path, write_config):
    cfg_path = scripted_config(write_config, limit=10, token_delay_s=0.03)
    with redis_server(tmp_path) as redis:
        srv = LiveServer(tmp_path, "--workers", "2", "--bus", redis.url, config=cfg_path)
        readers: list[StreamReader] = []
        try:
            readers = readers_on_both_workers(srv.url)
            store = Store(load_config(cfg_path).store)
            outcome = Runner(load_config(cfg_path), store, [HttpSink(srv.url, TOKEN)]).run()
            assert outcome.status == "finished"
            expected = counters_from_store(store, outcome.run_id)
            assert expected["done"] == 10
            for r in readers:
                r.until(lambda s: s["run"] is not None and s["run"]["status"] == "finished", timeout=30)
                assert {k: r.live.state["counters"][k] for k in expected} == expected
            first = without_telemetry(readers[0].live.state)
            assert all(without_telemetry(r.live.state) == first for r in readers), "the workers' views differ"
            # One sampler for the bus, not one per worker: samples about 1 s apart, stored once.
            samples = store.telemetry(outcome.run_id)
            gaps = [b["ts"] - a["ts"] for a, b in zip(samples, samples[1:])]
            assert gaps and min(gaps) > 0.5, gaps
            health = [srv.client.get("/healthz").json() for _ in range(6)]
            assert all(h["bus"]["kind"] == "redis" and h["bus"]["connected"] for h in health)
        finally:
            for r in readers:
                r.close()
            srv.stop()


def test_redis_away_mid_run_loses_nothing(tmp_path, write_config):
    cfg_path = scripted_config(write_config, limit=12, token_delay_s=0.05)
    with redis_server(tmp_path) as redis:
        srv = LiveServer(tmp_path, "--workers", "2", "--bus", redis.url, config=cfg_path)
        try:
            store = Store(load_config(cfg_path).store)
            sink = HttpSink(srv.url, TOKEN, backoff_s=(0.05, 0.3))
            runner = Runner(load_config(cfg_path), store, [sink])
            done: dict = {}
            t = threading.Thread(target=lambda: done.setdefault("outcome", runner.run()), daemon=True)
            t.start()
            deadline = time.time() + 60
            while time.time() < deadline and (not runner.run_id or len(store.final_verdicts(runner.run_id)) < 3):
                time.sleep(0.05)
            redis.stop()
            # Ingest says so (503 + Retry-After, the runner's sink keeps the batch and retries) and /healthz too.
            resp = srv.post([{"type": "telemetry", "run_id": "host", "seq": 1, "cpu_pct": 1.0}])
            assert resp.status_code == 503 and "unreachable" in resp.json()["error"]
            assert resp.headers["Retry-After"]
            time.sleep(1.5)
            assert not srv.client.get("/healthz").json()["bus"]["connected"]
            redis.start()  # the same port, empty: no persistence
            t.join(90)
            outcome = done["outcome"]
            assert outcome.status == "finished"
            expected = counters_from_store(store, outcome.run_id)
            assert expected["done"] == 12
            # A page opened now, on either worker, shows the whole run.
            for _ in range(4):
                r = StreamReader(srv.url)
                r.until(lambda s: s["run"] is not None and s["run"]["status"] == "finished"
                        and s["counters"]["done"] == 12, timeout=30)
                assert {k: r.live.state["counters"][k] for k in expected} == expected
                r.close()
        finally:
            srv.stop()


def test_a_damaged_stream_entry_is_skipped_and_named(tmp_path):
    """Something else wrote to the stream: that entry is logged with its id and skipped, the rest folds."""
    with redis_server(tmp_path) as redis:
        srv = LiveServer(tmp_path, "--bus", redis.url)
        try:
            def run_is(run_id: str) -> bool:
                run = srv.state()["state"]["run"] or {}
                return run.get("id") == run_id and run.get("status") == "finished"

            def wait_for(run_id: str) -> None:
                deadline = time.time() + 30
                while not run_is(run_id) and time.time() < deadline:
                    time.sleep(0.1)

            # The worker's reader is live once a first run has folded through the stream (a fixed sleep was not
            # enough on a loaded machine: the worker can take seconds to boot, and a reader that starts after the
            # damaged entries never sees them).
            assert srv.post(run_events("before-damage", n_tasks=1)).json()["queued"] is True
            wait_for("before-damage")
            assert run_is("before-damage")
            r = redis_client.Redis.from_url(redis.url)
            bad_id = r.xadd("benchwatch:events", {"batch": "{not json"}).decode()
            r.xadd("benchwatch:events", {"batch": '{"events": [{"type": "nope"}]}'})
            assert srv.post(run_events("after-damage", n_tasks=2)).json()["queued"] is True
            wait_for("after-damage")
            state = srv.state()["state"]
            assert state["run"]["id"] == "after-damage" and state["counters"]["done"] == 2
            log = (tmp_path / "log" / "server.out.log").read_text()
            assert f"entry {bad_id} skipped" in log and "event[0]" in log
        finally:
            srv.stop()
