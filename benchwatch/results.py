"""Reading results back: the per-attempt JSON view and the summary table (terminal), counted by the rules of
benchwatch/counting.py."""
from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from . import counting

RESULT_JSON_FIELDS = ("run_id", "model", "backend", "dataset", "task_id", "attempt", "verdict", "final",
                      "ttft_ms", "first_token_ms", "tokens_per_s", "latency_ms", "prompt_tokens",
                      "completion_tokens", "thinking_tokens", "visible_tokens", "stages", "detail", "error",
                      "prompt", "thinking", "response", "expected", "backend_stats", "started_at", "finished_at")


def result_json(row: dict[str, Any]) -> dict[str, Any]:
    """One task attempt as JSON; `stages` maps stage -> {start, end} in seconds from the attempt's start."""
    out = {k: row.get(k) for k in RESULT_JSON_FIELDS}
    out["stages"] = {k: {"start": v[0], "end": v[1]} for k, v in (row.get("stages") or {}).items()}
    return out


def _fmt(v: float | None, unit: str = "", digits: int = 0) -> str:
    return "–" if v is None else f"{v:.{digits}f}{unit}"


def summary_table(rows: list[dict[str, Any]], title: str = "") -> Table:
    """Final verdicts per model x dataset with pass rate and median TTFT / tokens/s / latency."""
    table = Table(title=title or None, caption="TTFT, tok/s and latency (lat): medians over final PASS/FAIL attempts",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=0)
    for col, justify in (("model", "left"), ("dataset", "left"), ("n", "right"), ("pass", "right"),
                         ("fail", "right"), ("err", "right"), ("pass%", "right"), ("TTFT ms", "right"),
                         ("tok/s", "right"), ("lat ms", "right"), ("retry", "right")):
        # Numbers keep their width on an 80-column terminal; long model / dataset names fold instead.
        if justify == "left":
            table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
        else:
            table.add_column(col, justify=justify, no_wrap=True, min_width=len(col))  # type: ignore[arg-type]
    from .evaluators.llm_judge import judge_rows  # a judge's calls count as its own model's

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in list(rows) + judge_rows(rows):
        groups.setdefault((r["model"], r["dataset"]), []).append(r)
    for (model, dataset), items in groups.items():
        final = counting.final(items)
        tally = counting.Tally.of(r["verdict"] for r in final)
        timed = counting.timed(final)
        table.add_row(model, dataset, str(tally.total), f"[green]{tally.passed}[/]", f"[red]{tally.failed}[/]",
                      f"[magenta]{tally.errored}[/]", _fmt(tally.rate and 100.0 * tally.rate, "", 1),
                      _fmt(counting.median(r["ttft_ms"] for r in timed)),
                      _fmt(counting.median(r["tokens_per_s"] for r in timed), "", 1),
                      _fmt(counting.median(r["latency_ms"] for r in timed)),
                      str(len(items) - len(final)))
    return table
