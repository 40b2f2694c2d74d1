"""The terminal view of a run: a rich live panel on a terminal, one line per finished task otherwise.

It folds events through the same reducer as the server, so the terminal and the page agree.
"""
from __future__ import annotations

import re
import threading
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..events import Event
from ..state import apply, initial_state

# The log view prints finished tasks and connection changes with the run's counters; a token, a stage or a task
# starting changes none of these, and folding them was most of its cost with many tasks in flight (a task's start
# alone was half: replaying a 256-in-flight run's events, 0.118 -> 0.059 ms a task). tests/unit/test_display.py
# checks its counters against a fold of every event.
LOG_VIEW_SKIPS = frozenset({"token", "stage", "task_started"})
# A log line is one line of plain text: a server's error text may hold newlines or terminal escape sequences.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}%"


class TerminalDisplay:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.state = initial_state()
        self._lock = threading.Lock()
        self.live_mode = self.console.is_terminal
        self.progress = Progress(TextColumn("[bold]run"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self.console)
        self._bar = self.progress.add_task("run", total=1)
        self._live: Live | None = None
        if self.live_mode:
            # The panel is drawn at its own refresh (4 a second) from the state as it is then, not once per
            # event: with many tasks in flight that was a rich layout per event on the runner's event thread.
            self._live = Live(console=self.console, refresh_per_second=4, transient=False,
                              get_renderable=self._render)
            self._live.start()

    def emit(self, event: Event) -> None:
        if event.type in LOG_VIEW_SKIPS and not self.live_mode:
            return
        with self._lock:
            self.state = apply(self.state, event)
            if event.type == "task_finished" and not self.live_mode:
                self._print_line(event)
            elif event.type == "backend_state" and not self.live_mode:
                self._log_line(f"{event.model}: backend {event.state} {event.detail}")

    def _print_line(self, e: Any) -> None:
        c = self.state["counters"]
        ttft = f"{e.ttft_ms:.0f} ms" if e.ttft_ms is not None else "–"
        tps = f"{e.tokens_per_s:.1f} tok/s" if e.tokens_per_s else "–"
        retry = "" if e.final else " (will retry)"
        self._log_line(f"[{c['done']}/{c['total']}] {e.model} · {e.dataset} · {e.task_id} #{e.attempt} {e.verdict}"
                       f"{retry}  TTFT {ttft}  {tps}" + (f"  {e.error}" if e.error else ""))

    def _log_line(self, text: str) -> None:
        """One line written as it is (no markup, no wrapping, no styles: not a terminal). Written straight to
        the console's file: rich's rendering of each line was most of the log view's cost with hundreds of
        tasks in flight."""
        self.console.file.write(_CONTROL.sub(" ", text) + "\n")

    def _render(self) -> Group:
        s = self.state  # one state (the reducer never changes a state it handed out)
        c = s["counters"]
        self.progress.update(self._bar, total=max(c["total"], 1), completed=c["done"])
        cur = s["current"] or {}
        model = next((m for m in s["models"] if m["status"] == "running"), None)
        head = Table.grid(padding=(0, 2))
        head.add_row(
            Text(f"model {model['ordinal']}/{model['of']}: {model['name']} ({model['connection']})" if model
                 else "model –"),
            Text(f"dataset: {s['tasks']['dataset'] or '–'}"),
            Text(f"task: {cur.get('task_id', '–')} #{cur.get('attempt', '')} {cur.get('status_label') or ''}"),
        )
        head.add_row(Text(f"OK {_pct(c['ok_pct'])}", style="green"), Text(f"KO {_pct(c['ko_pct'])}", style="red"),
                     Text(f"OTHER {_pct(c['other_pct'])}  remaining {c['remaining']}", style="magenta"))
        tps = cur.get("tps")
        tail = (cur.get("response") or "")[-160:].replace("\n", " ")
        line = Text(f"{tps:.1f} tok/s  " if tps else "", style="cyan") + Text(tail, style="dim")
        return Group(self.progress, head, line)

    def close(self) -> None:
        with self._lock:
            if self._live is not None:
                self._live.refresh()  # the final state, drawn once more
                self._live.stop()
                self._live = None
