"""Runs published to a real server: the embedded model end to end, the server down, the server restarted."""
from __future__ import annotations

import signal
import subprocess
import threading
import time

import pytest

from benchwatch.config import load_config
from benchwatch.runner import Runner
from benchwatch.runner.http_sink import HttpSink
from benchwatch.store import Store
from tests.conftest import PYTHON, cli_env
from tests.integration.live_server import TOKEN, LiveServer, StreamReader


def counters_from_store(store: Store, run_id: str) -> dict[str, int]:
    verdicts = list(store.final_verdicts(run_id).values())
    return {"done": len(verdicts), "pass": verdicts.count("PASS"), "fail": verdicts.count("FAIL"),
            "error": verdicts.count("ERROR")}


def scripted_config(write_config, limit: int = 10, token_delay_s: float = 0.0):
    return write_config({
        "runner": {"cooling_s": 0, "attempts": 1, "coalesce_ms": 20},
        "models": [{"name": "script", "backend": "scripted",
                    "options": {"answers": {"*": "Paris is the answer here"}, "chunk": 3,
                                "token_delay_s": token_delay_s}}],
        "datasets": [{"name": "facts", "source": "builtin:facts", "evaluator": "contains", "limit": limit}],
    })


@pytest.mark.slow
def test_embedded_model_run_published_through_http_sink_reaches_sse_clients(tmp_path, write_config):
    cfg = write_config({
        "runner": {"cooling_s": 0.2, "attempts": 1, "max_tokens": 16},
        "models": [{"name": "smollm2", "backend": "embedded", "n_ctx": 512}],
        "datasets": [{"name": "facts", "source": "builtin:facts", "evaluator": "contains", "limit": 3}],
    })
    srv = LiveServer(tmp_path, config=cfg)
    try:
        clients = [StreamReader(srv.url, read_timeout=120) for _ in range(3)]
        for c in clients:
            assert c.next().data["state"]["run"] is None
        env = cli_env() | {"BENCHWATCH_TOKEN": TOKEN}
        res = subprocess.run([PYTHON, "-m", "benchwatch.cli", "run", "--config", str(cfg), "--server-url", srv.url],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
        assert res.returncode == 0, res.stderr[-2000:]
        assert "publishing events to" in res.stderr
        store = Store(load_config(cfg).store)
        run_id = store.latest_run_id()
        expected = counters_from_store(store, run_id)
        for c in clients:
            c.until(lambda s: s["run"] and s["run"]["status"] == "finished", timeout=60)
            st = c.live.state
            assert st["run"]["id"] == run_id
            assert {k: st["counters"][k] for k in expected} == expected
            assert st["models"][0]["status"] == "done" and st["server"]["connection"] == "connected"
            last = st["current"]
            assert last["last"] is True and last["response"] == store.results(run_id)[-1]["response"]
            c.close()
        rows = srv.client.get(f"/api/runs/{run_id}").json()["results"]
        assert len(rows) == 3
        # the sampler stored host telemetry against the run while it was active (reports draw it)
        assert srv.client.get("/api/runs").json()["runs"][0]["id"] == run_id
    finally:
        srv.stop()


def timed_run(cfg_path, sinks) -> tuple[float, str, Store]:
    cfg = load_config(cfg_path)
    store = Store(cfg.store)
    runner = Runner(cfg, store, sinks)
    t0 = time.perf_counter()
    outcome = runner.run()
    return time.perf_counter() - t0, outcome.run_id, store


def test_server_down_the_run_goes_on_at_full_speed_and_loses_nothing(tmp_path, write_config):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening: connection refused
    cfg = scripted_config(write_config, limit=20, token_delay_s=0.002)
    base, _, _ = timed_run(cfg, [])
    sink = HttpSink(dead, TOKEN, backoff_s=(0.05, 0.5))
    with_dead, run_id, store = timed_run(cfg, [sink])
    s.close()
    assert sink.server_up is False and sink.failures >= 1
    assert len(store.final_verdicts(run_id)) == 20  # every result stored
    assert with_dead < base * 1.5 + 1.0, (base, with_dead)  # close() gives up at once on a dead server


def test_server_restarted_mid_run_rebuilds_state_from_store_and_next_events(tmp_path, write_config):
    cfg_path = scripted_config(write_config, limit=12, token_delay_s=0.08)
    cfg = load_config(cfg_path)
    srv = LiveServer(tmp_path, config=cfg_path)
    port = srv.port
    sink = HttpSink(srv.url, TOKEN, backoff_s=(0.05, 0.3))
    store = Store(cfg.store)
    runner = Runner(cfg, store, [sink])
    done = {}
    t = threading.Thread(target=lambda: done.setdefault("outcome", runner.run()), daemon=True)
    t.start()
    try:
        deadline = time.time() + 60
        while time.time() < deadline and (not runner.run_id or len(store.final_verdicts(runner.run_id)) < 4):
            time.sleep(0.05)
        before = StreamReader(srv.url)  # a page following the old server
        old_id = before.next().id
        before.close()
        srv.stop(signal.SIGKILL)  # a crash: the state in memory is gone
        time.sleep(0.5)
        srv = LiveServer(tmp_path, port=port, config=cfg_path)
        reader = StreamReader(srv.url)
        first_msg = reader.next()
        first = first_msg.data["state"]
        # The new server's ids start past the old one's: that page, reconnecting with the old server's last id,
        # gets a fresh snapshot, never the new server's patches taken for its own.
        assert first_msg.kind == "snapshot" and first_msg.id > old_id
        back = StreamReader(srv.url, last_event_id=old_id)
        assert back.next().kind == "snapshot"
        back.close()
        reader.until(lambda s: s["run"] is not None and s["run"]["id"] == runner.run_id
                     and s["counters"]["done"] >= 5, timeout=30)
        assert first["run"] is None or first["run"]["id"] == runner.run_id
        t.join(60)
        outcome = done["outcome"]
        assert outcome.status == "finished"
        reader.until(lambda s: s["run"]["status"] == "finished", timeout=30)
        st = reader.live.state
        expected = counters_from_store(store, runner.run_id)
        assert expected["done"] == 12
        assert {k: st["counters"][k] for k in expected} == expected
        assert [i["status"] for i in st["tasks"]["items"]] == ["pass"] * 12 or \
            all(i["status"] in ("pass", "fail") for i in st["tasks"]["items"])
        assert "rebuilt the state of run" in (tmp_path / "log" / "server.out.log").read_text()
        reader.close()
    finally:
        srv.stop()
