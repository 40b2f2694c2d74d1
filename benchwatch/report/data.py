"""What a run report shows, computed from the store: pure data, no HTML. Counted by the rules of
benchwatch/counting.py (quoted by the report itself as COUNTING_RULE)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import func, select

from .. import counting
from ..counting import QUANTILES, VERDICTS, Tally, percentile
from ..events import TELEMETRY_METRICS
from ..loadmetrics import run_load, slo_of
from ..store import Store
from ..store import results as results_table
from .model_server import model_server_report

METRICS = (  # column, label, unit
    ("ttft_ms", "TTFT", "ms"),
    ("tokens_per_s", "Tokens/s", "tok/s"),
    ("latency_ms", "Latency", "ms"),
    ("itl_ms", "ITL", "ms"),
    ("tpot_ms", "TPOT", "ms"),
)
TELEMETRY_SERIES = tuple((m.key, m.label, m.unit) for m in TELEMETRY_METRICS)  # column, label, unit
COUNTING_RULE = counting.RULE


class RunNotFound(LookupError):
    pass


@dataclass
class Matrix:
    models: list[str]
    datasets: list[str]
    cells: dict[tuple[str, str], Tally]
    by_model: dict[str, Tally]  # all datasets together

    def cell(self, model: str, dataset: str) -> Tally:
        return self.cells.get((model, dataset), Tally())

    def as_dict(self) -> dict[str, Any]:
        return {"models": self.models, "datasets": self.datasets,
                "cells": {m: {d: self.cell(m, d).as_dict() for d in self.datasets} for m in self.models},
                "by_model": {m: self.by_model[m].as_dict() for m in self.models}}


@dataclass
class Distribution:
    values: list[float]
    quantiles: dict[int, float | None] = field(default_factory=dict)

    @classmethod
    def of(cls, values: Iterable[float | None]) -> "Distribution":
        vals = [float(v) for v in values if v is not None]
        return cls(vals, {q: percentile(vals, q) for q in QUANTILES})


def _ordered(config_names: Iterable[str], seen: Iterable[str]) -> list[str]:
    """Names in config order, then any that only the results know (a resumed run with a changed config)."""
    out: list[str] = []
    for n in list(config_names) + list(seen):
        if n not in out:
            out.append(n)
    return out


def config_names(config: dict[str, Any], key: str) -> list[str]:
    return [item.get("name", "?") for item in (config or {}).get(key, []) if isinstance(item, dict)]


def pass_matrix(run: dict[str, Any], rows: list[dict[str, Any]]) -> Matrix:
    final = counting.final(rows)
    models = _ordered(config_names(run["config"], "models"), (r["model"] for r in rows))
    datasets = _ordered(config_names(run["config"], "datasets"), (r["dataset"] for r in rows))
    cells: dict[tuple[str, str], Tally] = {}
    by_model = {m: Tally() for m in models}
    for r in final:
        cells.setdefault((r["model"], r["dataset"]), Tally()).add(r["verdict"])
        by_model[r["model"]].add(r["verdict"])
    return Matrix(models, datasets, cells, by_model)


def distributions(models: list[str], rows: list[dict[str, Any]]) -> dict[str, dict[str, Distribution]]:
    """metric -> model -> distribution over final PASS/FAIL attempts."""
    answered = counting.timed(rows)
    return {col: {m: Distribution.of(r[col] for r in answered if r["model"] == m) for m in models}
            for col, _, _ in METRICS}


def telemetry_data(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Series as [ts_ms, value] pairs (None where a metric was unavailable) and why metrics were unavailable."""
    series = {col: [[s["ts"] * 1000.0, s.get(col)] for s in samples] for col, _, _ in TELEMETRY_SERIES}
    reasons: dict[str, set[str]] = {}
    for s in samples:
        un = s.get("unavailable") or {}
        items = un.items() if isinstance(un, dict) else ((str(k), "") for k in un)
        for metric, why in items:
            reasons.setdefault(str(metric), set()).add(str(why) if why else "unavailable")
    return {"series": series, "count": len(samples),
            "unavailable": {k: sorted(v) for k, v in sorted(reasons.items())},
            "measured": {col: any(s.get(col) is not None for s in samples) for col, _, _ in TELEMETRY_SERIES}}


def task_boundaries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each attempt's wall-clock span, so telemetry can be read against the task that was running."""
    return [{"start": r["started_at"] * 1000.0, "end": r["finished_at"] * 1000.0, "model": r["model"],
             "dataset": r["dataset"], "task_id": r["task_id"], "attempt": r["attempt"], "verdict": r["verdict"],
             "final": bool(r["final"])} for r in rows]


def problem_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Failed and errored attempts: every final FAIL/ERROR, and the ERROR attempts that were retried."""
    return [r for r in rows if r["verdict"] != "PASS"]


@dataclass
class ReportData:
    run: dict[str, Any]
    rows: list[dict[str, Any]]
    matrix: Matrix
    dists: dict[str, dict[str, Distribution]]
    telemetry: dict[str, Any]
    boundaries: list[dict[str, Any]]
    problems: list[dict[str, Any]]
    model_server: dict[str, Any] = field(default_factory=lambda: {"present": False})
    load: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> loadmetrics.model_load

    @property
    def run_id(self) -> str:
        return self.run["id"]

    def chart_data(self) -> dict[str, Any]:
        """Everything the report's scripts draw, as JSON-ready data."""
        return {
            "run_id": self.run_id,
            "matrix": self.matrix.as_dict(),
            "metrics": [{"key": c, "label": label, "unit": unit} for c, label, unit in METRICS],
            "distributions": {c: {m: {"values": d.values, "quantiles": {f"p{q}": v for q, v in d.quantiles.items()}}
                                  for m, d in per.items()} for c, per in self.dists.items()},
            "telemetry": self.telemetry,
            "telemetry_series": [{"key": c, "label": label, "unit": unit} for c, label, unit in TELEMETRY_SERIES],
            "boundaries": self.boundaries,
            "run_span": self.span_ms(),
            "model_server": self.model_server,
            "load": self.load,
        }

    def span_ms(self) -> list[float]:
        """The time axis: the run's start to its end, widened to every stored result and sample (a run still
        going has no end yet; a resumed run's rows can outlive its first end)."""
        times = [self.run["created_at"] * 1000.0]
        if self.run["finished_at"]:
            times.append(self.run["finished_at"] * 1000.0)
        times += [b["start"] for b in self.boundaries] + [b["end"] for b in self.boundaries]
        series = self.telemetry["series"]
        if self.telemetry["count"]:
            first = next(iter(series.values()))
            times += [first[0][0], first[-1][0]]
        return [min(times), max(times)]


def load_report(store: Store, run_id: str) -> ReportData:
    run = store.get_run(run_id)
    if run is None:
        raise RunNotFound(f"no run {run_id!r}")  # no store URL: a web page must not show credentials
    rows = store.results(run_id)
    from ..evaluators.llm_judge import judge_rows  # a judge's calls count as its own model's

    figures = rows + judge_rows(rows)
    matrix = pass_matrix(run, figures)
    samples = store.telemetry(run_id)
    return ReportData(run=run, rows=rows, matrix=matrix, dists=distributions(matrix.models, figures),
                      telemetry=telemetry_data(samples), boundaries=task_boundaries(rows),
                      problems=problem_rows(rows), model_server=model_server_report(samples, rows),
                      load=run_load(rows, matrix.models, slo_of(run["config"])))


# ---- compare

@dataclass
class Flip:
    model: str
    dataset: str
    task_id: str
    before: dict[str, Any]  # the final row in run A
    after: dict[str, Any]   # the final row in run B


@dataclass
class Comparison:
    a: ReportData
    b: ReportData
    flips: list[Flip]
    unchanged: int
    only_a: list[tuple[str, str, str]]
    only_b: list[tuple[str, str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {"a": self.a.run_id, "b": self.b.run_id, "unchanged": self.unchanged,
                "flips": [{"model": f.model, "dataset": f.dataset, "task_id": f.task_id,
                           "a": f.before["verdict"], "b": f.after["verdict"]} for f in self.flips],
                "only_a": [list(k) for k in self.only_a], "only_b": [list(k) for k in self.only_b]}


def _finals(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["model"], r["dataset"], r["task_id"]): r for r in counting.final(rows)}


def compare(store: Store, run_a: str, run_b: str) -> Comparison:
    """Runs A and B side by side; a task flipped when both runs have a final verdict and the verdicts differ."""
    a, b = load_report(store, run_a), load_report(store, run_b)
    fa, fb = _finals(a.rows), _finals(b.rows)
    flips = [Flip(*k, fa[k], fb[k]) for k in fa if k in fb and fa[k]["verdict"] != fb[k]["verdict"]]
    unchanged = sum(1 for k in fa if k in fb and fa[k]["verdict"] == fb[k]["verdict"])
    return Comparison(a, b, flips, unchanged, [k for k in fa if k not in fb], [k for k in fb if k not in fa])


# ---- the runs list

def per_model_counts(store: Store, run_ids: list[str]) -> dict[str, dict[str, Tally]]:
    """run_id -> model -> final-verdict counts, in one grouped query."""
    if not run_ids:
        return {}
    t = results_table
    with store.engine.connect() as c:
        rows = c.execute(select(t.c.run_id, t.c.model, t.c.verdict, func.count())
                         .where(t.c.final.is_(True), t.c.run_id.in_(run_ids))
                         .group_by(t.c.run_id, t.c.model, t.c.verdict)).all()
    out: dict[str, dict[str, Tally]] = {}
    for rid, model, verdict, n in rows:
        out.setdefault(rid, {}).setdefault(model, Tally()).add(verdict, n)
    return out


def runs_list(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    runs = store.list_runs(limit)
    counts = per_model_counts(store, [r["id"] for r in runs])
    out = []
    for r in runs:
        per_model = counts.get(r["id"], {})
        models = _ordered(config_names(r["config"], "models"), per_model)
        overall = Tally(*(r["counts"].get(v, 0) for v in VERDICTS))
        out.append({**r, "models": models, "datasets": config_names(r["config"], "datasets"),
                    "per_model": {m: per_model.get(m, Tally()) for m in models}, "overall": overall})
    return out


__all__ = ["RunNotFound", "Tally", "Matrix", "Distribution", "ReportData", "Comparison", "Flip", "load_report",
           "compare", "runs_list", "COUNTING_RULE", "METRICS", "QUANTILES", "TELEMETRY_SERIES"]
