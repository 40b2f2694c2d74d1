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


def test_the_events_file_holds_valid_json_whatever_the_event_carries(tmp_path):
    """--events-out: a NaN inside a free-form field is written as null (strict JSON readers take the line); an
    event that cannot be UTF-8 (a lone surrogate from a model's output) is skipped alone and the run goes on."""
    import json

    from benchwatch.runner.sinks import JsonlSink
    path = tmp_path / "events.jsonl"
    out = SafeFanout([JsonlSink(path)])
    ref = dict(run_id="r", model="m", dataset="d", task_id="t", attempt=1)
    out.emit(ev.TaskFinished(seq=1, verdict="FAIL", final=True, detail={"score": float("nan"), "inf": float("inf")},
                             error=None, ttft_ms=None, first_token_ms=None, latency_ms=None, tokens_per_s=None,
                             completion_tokens=None, stages={}, **ref))
    out.emit(ev.TokenDelta(seq=2, kind="visible", text="bad \ud800", n_tokens=1, **ref))
    out.emit(ev.TokenDelta(seq=3, kind="visible", text="good \u00e9", n_tokens=1, **ref))
    out.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    parsed = [json.loads(line, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))) for line in lines]
    assert [p["seq"] for p in parsed] == [1, 3]
    assert parsed[0]["detail"] == {"score": None, "inf": None} and parsed[1]["text"] == "good \u00e9"
