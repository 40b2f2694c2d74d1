"""The terminal view of `benchwatch run`: one line per finished task in a log, a live panel on a terminal."""
from __future__ import annotations

import io

from rich.console import Console

from benchwatch import events as ev
from benchwatch.runner.display import LOG_VIEW_SKIPS, TerminalDisplay
from benchwatch.state import apply, initial_state
from tests.unit.test_state import R, scripted_events


T2 = dict(model="m1", dataset="d1", task_id="t2", attempt=1)


def log_view(width: int, *more: ev.Event) -> str:
    """What the log view (not a terminal) writes for the scripted run, then the events given."""
    out = io.StringIO()
    d = TerminalDisplay(Console(file=out, width=width))
    for e in [*scripted_events(), *more]:
        d.emit(e)
    d.close()
    return out.getvalue()


def test_the_log_view_prints_each_finished_task_and_brackets_stay_text():
    lines = log_view(
        200, ev.TaskStarted(run_id=R, seq=100, prompt="p", **T2),
        ev.TaskFinished(run_id=R, seq=101, verdict="ERROR", final=False, detail={},
                        error="cannot reach the server: [Errno 111] Connection refused [/]", **T2),
        ev.BackendState(run_id=R, seq=102, model="m1", state="disconnected", detail="[bold]down[/bold]"),
    ).splitlines()
    assert "[1/4] m1 · d1 · t1 #1 PASS  TTFT 500 ms  –" in lines
    assert ("[1/4] m1 · d1 · t2 #1 ERROR (will retry)  TTFT –  –  "
            "cannot reach the server: [Errno 111] Connection refused [/]") in lines
    assert "m1: backend disconnected [bold]down[/bold]" in lines


def test_the_live_panel_draws_the_state_at_its_own_refresh():
    out = io.StringIO()
    d = TerminalDisplay(Console(file=out, force_terminal=True, width=120))
    assert d.live_mode
    for e in scripted_events():
        d.emit(e)
    d.close()
    text = out.getvalue()
    assert "model 1/2: m1 (connected)" in text and "dataset: d1" in text and "OK 100.0%" in text


def test_the_log_view_skips_only_events_that_cannot_change_what_it_prints():
    """It does not fold tokens and stages: its counters and models still equal a fold of every event."""
    d = TerminalDisplay(Console(file=io.StringIO(), width=200))
    full = initial_state()
    events = list(scripted_events())
    assert {e.type for e in events} >= LOG_VIEW_SKIPS  # the script has both kinds, so the skip is exercised
    for e in events:
        d.emit(e)
        full = apply(full, e)
        assert d.state["counters"] == full["counters"] and d.state["models"] == full["models"]
    d.close()


def test_a_log_line_stays_one_line_of_plain_text_whatever_the_server_said():
    """An error from a hostile or broken server (newlines, terminal escapes) cannot break or colour the log."""
    long_error = "server said:\nline two\r\x1b[31mred\x1b[0m \x07bell " + "x" * 120
    text = log_view(40, ev.TaskFinished(run_id=R, seq=101, verdict="ERROR", final=False, detail={},
                                        error=long_error, **T2))
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    line = [x for x in text.splitlines() if "t2 #1 ERROR" in x]
    assert len(line) == 1 and line[0].endswith("x" * 120)  # not wrapped at the console's width either
    assert "server said: line two [31mred [0m  bell" in line[0]
