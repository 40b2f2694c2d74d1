"""The runner's event fan-out: inline with one slot, through one delivery thread with several, in emit order."""
from __future__ import annotations

import threading
import time

from benchwatch import events as ev
from benchwatch.runner.sinks import MemorySink, SafeFanout


def event(seq: int) -> ev.Event:
    return ev.StageChanged(run_id="r", seq=seq, model="m", dataset="d", task_id="t", attempt=1, stage="thinking",
                           at_s=0.0)


class SlowSink(MemorySink):
    def emit(self, e):
        time.sleep(0.001)
        super().emit(e)


class BrokenSink:
    def emit(self, e):
        raise RuntimeError("down")

    def close(self):
        pass


def test_inline_by_default():
    sink = MemorySink()
    out = SafeFanout([sink])
    out.emit(event(1))
    assert [e.seq for e in sink.events] == [1]  # delivered before emit returned


def test_in_background_the_emitters_never_wait_and_order_is_kept():
    slow, fast = SlowSink(), MemorySink()
    out = SafeFanout([BrokenSink(), slow, fast])
    out.in_background(True)
    lock = threading.Lock()
    seq = [0]

    def slot():
        for _ in range(50):
            with lock:  # what Runner.emit does: a seq and a hand-over under one lock
                seq[0] += 1
                out.emit(event(seq[0]))

    t0 = time.monotonic()
    threads = [threading.Thread(target=slot) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    handed_over = time.monotonic() - t0
    out.in_background(False)  # drains everything handed over
    assert [e.seq for e in slow.events] == list(range(1, 401)) == [e.seq for e in fast.events]
    assert handed_over < 0.2, "the emitters waited for the slow sink (400 x 1 ms)"
    out.emit(event(401))  # inline again
    assert fast.events[-1].seq == 401


def test_close_delivers_what_was_handed_over_then_closes():
    sink = SlowSink()
    out = SafeFanout([sink])
    out.in_background(True)
    for i in range(1, 21):
        out.emit(event(i))
    out.close()
    assert [e.seq for e in sink.events] == list(range(1, 21))
