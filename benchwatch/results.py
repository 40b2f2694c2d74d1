"""Reading results back: the per-attempt JSON view and the summary table (terminal), counted by the rules of
benchwatch/counting.py."""
from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from . import counting

RESULT_JSON_FIELDS = ("run_id", "model", "backend", "dataset", "task_id", "attempt", "verdict", "final",
                      "ttft_ms", "first_token_ms", "tokens_per_s", "latency_ms", "prompt_tokens",
                      "completion_tokens", "thinking_tokens", "visible_tokens", "output_tokens", "itl_ms",
                      "tpot_ms", "request_ms", "stages", "detail", "error",
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


def load_table(rows: list[dict[str, Any]], config: dict[str, Any] | None = None) -> Table:
    """Per model: p50/p90/p95/p99 of TTFT, ITL, TPOT, request latency and output tokens; request throughput and
    output tokens/s over the model's wall time; with runner.slo, the share meeting each SLO and goodput
    (definitions: benchwatch/loadmetrics.py, docs/concurrency.md)."""
    from .loadmetrics import LOAD_METRICS, QUANTILES, run_load, slo_of

    models: list[str] = []
    for r in rows:
        if r["model"] not in models:
            models.append(r["model"])
    slo = slo_of(config)
    load = run_load(rows, models, slo)
    table = Table(title="load (final PASS/FAIL attempts)", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0),
                  caption="req/s and out tok/s: answered requests and their output tokens per second of the "
                          "model's wall time" + ("; goodput: requests/s meeting every SLO" if slo else ""))
    table.add_column("model", overflow="fold")
    table.add_column("metric")
    for q in QUANTILES:
        table.add_column(f"p{q}", justify="right", no_wrap=True)
    for m in models:
        figures = load[m]
        for col, label, unit in LOAD_METRICS:
            qs = figures["quantiles"][col]
            digits = 0 if unit == "tok" else 1
            table.add_row(m, f"{label} {unit}", *(_fmt(qs[f"p{q}"], "", digits) for q in QUANTILES))
        thru = (f"{_fmt(figures['requests_per_s'], '', 2)} req/s · "
                f"{_fmt(figures['output_tokens_per_s'], '', 1)} out tok/s")
        table.add_row(m, "throughput", thru, "", "", "")
        if "slo" in figures:
            sl = figures["slo"]
            met = " · ".join(f"{k} ≤ {v:g}: {_fmt(None if sl['share_met'][k] is None else 100 * sl['share_met'][k], ' %', 1)}"
                             for k, v in sl["objectives"].items())
            table.add_row(m, "SLO met", met, "", "", "")
            table.add_row(m, "goodput", f"{_fmt(sl['goodput_per_s'], '', 2)} req/s "
                          f"({_fmt(None if sl['all_met'] is None else 100 * sl['all_met'], ' %', 1)} met all)",
                          "", "", "")
    return table
