"""Timing that the runner's own delays cannot distort, against the OpenAI-compatible STAND-IN server
(tests/standins/openai_sse.py, real HTTP on loopback): the streams run in the stream worker process, which stamps
when each request left and when each piece arrived, and the runner times from those stamps, so a slot that gets to its
stream late (a busy GIL with hundreds in flight; here a deliberate sleep) still records the server's timing."""
from __future__ import annotations

import time

import pytest

from benchwatch.backends import GenParams, Text
from benchwatch.backends import http as transport
from benchwatch.backends.openai_compat import OpenAIBackend
from benchwatch.config import ModelConfig, parse_config
from benchwatch.runner import Runner
from benchwatch.runner.sinks import MemorySink
from benchwatch.store import Store
from tests.standins.base import Behaviour
from tests.standins.openai_sse import StandinOpenAI

FIRST_S, GAP_S = 0.3, 0.04


@pytest.fixture
def server():
    s = StandinOpenAI().start()
    s.behaviours["m"] = Behaviour(first_delay_s=FIRST_S, delay_s=GAP_S)
    yield s
    s.stop()


def backend(server) -> OpenAIBackend:
    return OpenAIBackend(ModelConfig(name="m", backend="openai", base_url=f"{server.url}/v1"))


def test_pieces_keep_their_arrival_times_when_read_late(server):
    b = backend(server)
    t0 = time.monotonic()
    items = b.stream([{"role": "user", "content": "What is 2 plus 3?"}], GenParams(64, 0.0, 0))
    first = next(items)
    time.sleep(0.5)  # everything else has arrived by now, and is read in one go
    rest = [i for i in items if isinstance(i, Text)]
    b.close()
    assert isinstance(first, Text) and first.sent is not None and t0 <= first.sent < first.arrived
    # The stand-in sends a role-only chunk, waits first_delay_s, then each piece delay_s apart.
    assert FIRST_S + GAP_S - 0.02 <= first.arrived - first.sent <= FIRST_S + GAP_S + 0.25
    stamps = [first.arrived] + [i.arrived for i in rest]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(gaps) >= 3 and all(GAP_S - 0.015 <= g <= GAP_S + 0.1 for g in gaps), gaps


def config(tmp_path, server, tasks: int):
    return parse_config({
        "store": f"sqlite:///{tmp_path / 't.db'}",
        "runner": {"cooling_s": 0, "coalesce_ms": 0, "attempts": 1},
        "models": [{"name": "m", "backend": "openai", "base_url": f"{server.url}/v1"}],
        "datasets": [{"name": "d", "source": "builtin:arithmetic", "evaluator": "numeric", "limit": tasks}],
    })


class LateSlot(OpenAIBackend):
    """The real backend, but the runner's thread gets to the first piece 0.5 s after it arrived."""

    def stream(self, messages, params):
        items = super().stream(messages, params)
        first = next(items)
        time.sleep(0.5)
        yield first
        yield from items


def test_the_runner_times_a_late_slot_from_the_socket(tmp_path, server):
    cfg = config(tmp_path, server, tasks=2)
    store = Store(cfg.store)
    outcome = Runner(cfg, store, [MemorySink()], backend_factory=LateSlot).run()
    rows = store.results(outcome.run_id)
    assert outcome.counts == {"PASS": 2}
    for r in rows:
        # Without the stamps TTFT would read over 800 ms and the late tokens would look bunched up.
        assert (FIRST_S + GAP_S) * 1000 - 20 <= r["ttft_ms"] <= (FIRST_S + GAP_S) * 1000 + 250, r["ttft_ms"]
        assert GAP_S * 1000 - 10 <= r["itl_ms"] <= GAP_S * 1000 + 40, r["itl_ms"]
        assert r["latency_ms"] >= r["ttft_ms"] + 500  # the whole attempt still took as long as it took
        assert r["stages"]["streaming"][0] < r["stages"]["thinking"][0] + FIRST_S + GAP_S + 0.25


def test_a_fake_clock_keeps_its_own_times(tmp_path, server):
    """Stamps are time.monotonic: a runner on another clock (tests, replays) ignores them."""
    ticks = iter(range(10_000))
    cfg = config(tmp_path, server, tasks=1)
    store = Store(cfg.store)
    outcome = Runner(cfg, store, [MemorySink()], clock=lambda: float(next(ticks))).run()
    [row] = store.results(outcome.run_id)
    assert row["ttft_ms"] % 1000 == 0  # whole ticks of the fake clock, never a socket's time mixed in


def test_the_proxy_comes_from_the_environment_once_per_host(monkeypatch):
    transport._proxy_for.cache_clear()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.internal")
    try:
        assert transport._proxy_for("https://api.example.com") == "http://proxy.example:3128"
        assert transport._proxy_for("https://llm.internal") is None
        assert transport._proxy_for("http://127.0.0.1:8000") is None
        assert transport._proxy_for("http://gpu-box:8000") is None  # no HTTP_PROXY set
    finally:
        transport._proxy_for.cache_clear()


def test_abort_all_ends_every_waiting_stream_at_once(server):
    server.behaviours["m"] = Behaviour(first_delay_s=20)
    import threading
    errors = []

    def one():
        b = backend(server)
        try:
            list(b.stream([{"role": "user", "content": "What is 1 plus 1?"}], GenParams(64, 0.0, 0)))
        except Exception as exc:  # noqa: BLE001 - the test looks at what came out
            errors.append(str(exc))
        finally:
            b.close()

    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while server.in_flight < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    assert transport.abort_all("stopped by the test") == 5
    for t in threads:
        t.join(5)
    assert time.monotonic() - t0 < 1.0 and errors == ["stopped by the test"] * 5


def test_pieces_handed_over_together_keep_their_own_times(server):
    """With many streams in flight later pieces reach their slot in batches (fewer wake-ups): each still carries
    the time it came off the socket, and the first pieces are not held back."""
    b = backend(server)
    items = b.stream([{"role": "user", "content": "What is 2 plus 3?"}], GenParams(64, 0.0, 0, batch_s=0.3))
    first = next(items)
    got_first = time.monotonic()
    rest = []
    for item in items:
        if isinstance(item, Text):
            rest.append((item, time.monotonic()))
    b.close()
    assert got_first - first.arrived < 0.05  # handed over at once
    stamps = [first.arrived] + [i.arrived for i, _ in rest]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert all(GAP_S - 0.015 <= g <= GAP_S + 0.1 for g in gaps), gaps
    # ... while the later ones came in a batch: read together, well after some of them arrived
    late = [seen - i.arrived for i, seen in rest[1:]]
    assert max(late) > 0.03, late
