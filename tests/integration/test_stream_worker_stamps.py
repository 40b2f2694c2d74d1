"""Where the stream worker (benchwatch/stream_worker.py) takes each piece's time: when its bytes were read from the
socket, not when the coroutine reading the answer got its turn. Run in this process on the worker's own loop (a
pipe standing in for the runner's socket), against the OpenAI-compatible STAND-IN server (tests/standins/
openai_sse.py, real HTTP on loopback)."""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import time

import pytest

from benchwatch import stream_worker
from tests.standins.base import Behaviour
from tests.standins.openai_sse import StandinOpenAI


@pytest.fixture
def server():
    s = StandinOpenAI().start()
    yield s
    s.stop()


def stream_once(server, rid: int = 1) -> list[tuple]:
    """One request through a StreamWorker on a loop of its own; every message it sent the 'runner'."""
    runner_end, worker_end = multiprocessing.Pipe()
    loop = stream_worker.new_event_loop()
    try:
        worker = loop.run_until_complete(stream_worker._make(worker_end, loop))
        body = json.dumps({"model": "m", "stream": True,
                           "messages": [{"role": "user", "content": "What is 2 plus 3?"}]}).encode()

        async def run() -> None:
            worker.handle([("start", rid, f"{server.url}/v1/chat/completions", body, {}, None, "the server", 5.0,
                            0.25)])
            await worker.requests[rid].task

        loop.run_until_complete(run())
        loop.run_until_complete(worker.session.close())
        loop.run_until_complete(worker.fresh.close())
        loop.run_until_complete(asyncio.sleep(0))  # the worker's last message goes out
    finally:
        loop.close()
    messages = []
    while runner_end.poll():
        messages.extend(runner_end.recv())
    return messages


def test_a_piece_is_stamped_when_read_not_when_its_reader_resumes(server, monkeypatch):
    """Each read is followed by 80 ms of other work before the reading coroutine can resume (as when one turn of
    the loop reads many sockets): every piece still carries the time its bytes were read."""
    reads: list[tuple[float, float]] = []  # (read began, other work done)

    class BusyTurn(stream_worker._ReadStampingHandler):
        def data_received(self, data: bytes) -> None:
            began = time.monotonic()
            super().data_received(data)
            if self.body is not None:
                time.sleep(0.08)
                reads.append((began, time.monotonic()))

    monkeypatch.setattr(stream_worker, "_ReadStampingHandler", BusyTurn)
    server.behaviours["m"] = Behaviour(first_delay_s=0.1, delay_s=0.15)
    messages = stream_once(server)
    pieces = [piece for m in messages if m[0] == "data" for piece in m[2]]
    assert [m[0] for m in messages][-1] == "end"
    assert b"".join(data for data, _ in pieces).count(b"data: ") >= 3
    assert len(reads) >= 3, "the worker's connections must be the stamping protocol's"
    for _, stamped in pieces:
        # the stamp is a read's start (to within the stamp's own microseconds, 30 ms allowed for a loaded
        # machine), never after its 80 ms of other work
        assert any(began <= stamped <= began + 0.03 for began, _ in reads), (stamped, reads)
        assert not any(began + 0.03 < stamped < done for began, done in reads)


def test_the_pieces_of_an_answer_that_came_with_its_head_are_stamped_too(server):
    """A server that sends the first piece with the response's head: those bytes were read before the worker
    watched the body, and get the time the coroutine took them (later than they came, never earlier)."""
    server.behaviours["m"] = Behaviour()
    before = time.monotonic()
    messages = stream_once(server)
    pieces = [piece for m in messages if m[0] == "data" for piece in m[2]]
    assert pieces and all(before < t <= time.monotonic() for _, t in pieces)
    assert [t for _, t in pieces] == sorted(t for _, t in pieces)
