"""Load-testing metrics, defined once: per attempt (ITL, TPOT, output tokens) and per model over a run
(percentiles, request throughput, output tokens/s, SLO attainment, goodput).

The runner computes the per-attempt figures with `attempt_metrics`; `results`, the report and the comparison
summarise them with `model_load`. Which attempts count and how percentiles are taken is benchwatch/counting.py's
rule (one home for it): this module only defines the load metrics. docs/concurrency.md quotes these definitions and compares them with guidellm's
and aiperf's.

Per attempt (times in seconds on the runner's monotonic clock, from the moment the request was sent):
- output tokens: the server's own count (`usage.completion_tokens`, Ollama's `eval_count`) when it reports one,
  else the tokens the runner counted as they streamed (thinking + visible).
- ITL (mean inter-token latency) = (t_last_token - t_first_token) / (output_tokens - 1), tokens of any kind
  (reasoning included); none for fewer than 2 tokens.
- TPOT (time per output token) = (t_last_token - t_send) / output_tokens: the whole wait per token, first included.
- request latency (e2e) = t_end - t_send: sending to the stream's last byte (evaluation excluded; the stored
  `latency_ms` goes on to the verdict).
"""
from __future__ import annotations

from typing import Any

from .counting import QUANTILES, quantiles, timed

__all__ = ["LOAD_METRICS", "QUANTILES", "attempt_metrics", "meets", "model_load", "quantiles", "run_load",
           "slo_of"]
# Per-attempt columns summarised per model: column, label, unit.
LOAD_METRICS = (
    ("ttft_ms", "TTFT", "ms"),
    ("itl_ms", "ITL", "ms"),
    ("tpot_ms", "TPOT", "ms"),
    ("request_ms", "Request latency", "ms"),
    ("output_tokens", "Output tokens", "tok"),
)


def attempt_metrics(t_send: float | None, t_first: float | None, t_last: float | None, t_end: float | None,
                    counted_tokens: int, reported_tokens: int | None) -> dict[str, Any]:
    """output_tokens, itl_ms, tpot_ms and request_ms of one attempt (None where not measurable)."""
    n = reported_tokens if reported_tokens is not None and reported_tokens > 0 else counted_tokens
    out: dict[str, Any] = {"output_tokens": n if (n or t_first is not None) else None,
                           "itl_ms": None, "tpot_ms": None, "request_ms": None}
    if t_send is None:
        return out
    if t_end is not None:
        out["request_ms"] = round((t_end - t_send) * 1000.0, 3)
    if t_first is None or t_last is None or not n:
        return out
    out["tpot_ms"] = round((t_last - t_send) * 1000.0 / n, 3)
    if n >= 2:
        out["itl_ms"] = round((t_last - t_first) * 1000.0 / (n - 1), 3)
    return out


def meets(row: dict[str, Any], slo: dict[str, float | None]) -> dict[str, bool]:
    """Which of the configured objectives one attempt met (a missing measurement does not meet its SLO)."""
    column = {"ttft_ms": "ttft_ms", "itl_ms": "itl_ms", "e2e_ms": "request_ms"}
    return {k: row.get(column[k]) is not None and row[column[k]] <= limit
            for k, limit in slo.items() if limit is not None}


def model_load(rows: list[dict[str, Any]], slo: dict[str, float | None] | None = None) -> dict[str, Any]:
    """One model's load figures over its attempts in a run.

    Wall time is from the first attempt's start to the last one's end (all of this model's attempts, retries
    included); request throughput counts final answered attempts per second of it; output tokens/s counts the
    tokens of those attempts. Goodput = answered attempts meeting every SLO, per second of wall time.
    """
    answered = timed(rows)  # counting.py's rule: final attempts that produced an answer
    starts = [r["started_at"] for r in rows if r.get("started_at") is not None]
    ends = [r["finished_at"] for r in rows if r.get("finished_at") is not None]
    wall = (max(ends) - min(starts)) if starts and ends else None
    out: dict[str, Any] = {"answered": len(answered), "wall_s": round(wall, 3) if wall else None,
                           "quantiles": {col: quantiles(r.get(col) for r in answered) for col, _, _ in LOAD_METRICS}}
    tokens = sum(r.get("output_tokens") or 0 for r in answered)
    out["requests_per_s"] = round(len(answered) / wall, 4) if wall else None
    out["output_tokens_per_s"] = round(tokens / wall, 3) if wall else None
    slo = {k: v for k, v in (slo or {}).items() if v is not None}
    if slo:
        met = [meets(r, slo) for r in answered]
        share = {k: (sum(m[k] for m in met) / len(met) if met else None) for k in slo}
        good = sum(1 for m in met if all(m.values()))
        out["slo"] = {"objectives": slo, "share_met": share, "all_met": good / len(met) if met else None,
                      "goodput_per_s": round(good / wall, 4) if wall else None}
    return out


def run_load(rows: list[dict[str, Any]], models: list[str], slo: dict[str, float | None] | None = None
             ) -> dict[str, dict[str, Any]]:
    """model -> model_load, in the given model order."""
    return {m: model_load([r for r in rows if r["model"] == m], slo) for m in models}


def slo_of(config: dict[str, Any] | None) -> dict[str, float | None]:
    """runner.slo from a stored run config (plain JSON), or {}."""
    slo = ((config or {}).get("runner") or {}).get("slo") or {}
    return {k: slo.get(k) for k in ("ttft_ms", "itl_ms", "e2e_ms") if slo.get(k) is not None}
