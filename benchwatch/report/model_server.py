"""The model server's own metrics in a run report: its series on the run's time axis, and its TTFT beside ours.

The server measures TTFT from the moment its HTTP front end took the request to its first token; benchwatch
measures from sending the request to receiving the first token (any kind: the server can't tell thinking from
visible text). The difference is network, the server's queueing before its clock starts, and client overhead.
The server's per-interval means are weighted by the requests behind each (ttft_n) to give its run mean.
"""
from __future__ import annotations

from typing import Any

SERIES = (  # key in the sample, label, unit, scale to the unit
    ("running", "Requests running", "requests", 1.0),
    ("waiting", "Requests waiting", "requests", 1.0),
    ("kv_cache_pct", "KV cache", "%", 1.0),
    ("ttft_s", "Server TTFT", "ms", 1000.0),
    ("itl_s", "Server ITL", "ms", 1000.0),
)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def model_server_report(samples: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{"present": bool, "series": {key: [[ts_ms, value], ...]}, "models": [per-model comparison],
    "unavailable": {reason: count}, "client_ttft": [[finished_ms, first_token_ms, model], ...]}."""
    scraped = [s for s in samples if isinstance(s.get("model_server"), dict)]
    if not scraped:
        return {"present": False}
    series = {key: [[s["ts"] * 1000.0, _scaled(s["model_server"].get(key), scale)] for s in scraped]
              for key, _, _, scale in SERIES}
    reasons: dict[str, int] = {}
    per_model: dict[str, dict[str, float]] = {}
    for s in scraped:
        ms = s["model_server"]
        for why in set((ms.get("unavailable") or {}).values()):
            reasons[why] = reasons.get(why, 0) + 1
        acc = per_model.setdefault(ms.get("model") or "?", {"sum": 0.0, "n": 0, "samples": 0, "failed": 0})
        acc["samples"] += 1
        acc["failed"] += 1 if ms.get("error") else 0
        if ms.get("ttft_s") is not None and ms.get("ttft_n"):
            acc["sum"] += ms["ttft_s"] * ms["ttft_n"]
            acc["n"] += ms["ttft_n"]
    answered = [r for r in rows if r["final"] and r["verdict"] in ("PASS", "FAIL")]
    models = []
    for model, acc in per_model.items():
        mine = [r for r in answered if r["model"] == model]
        server_ms = acc["sum"] / acc["n"] * 1000.0 if acc["n"] else None
        client_first = _mean([r["first_token_ms"] for r in mine if r["first_token_ms"] is not None])
        client_ttft = _mean([r["ttft_ms"] for r in mine if r["ttft_ms"] is not None])
        models.append({"model": model, "samples": int(acc["samples"]), "failed_scrapes": int(acc["failed"]),
                       "server_ttft_ms": server_ms, "server_requests": int(acc["n"]),
                       "client_first_token_ms": client_first, "client_ttft_ms": client_ttft,
                       "client_requests": len(mine),
                       "difference_ms": (client_first - server_ms) if None not in (client_first, server_ms)
                       else None})
    client = [[r["finished_at"] * 1000.0, r["first_token_ms"], r["model"]] for r in answered
              if r["first_token_ms"] is not None and r["model"] in per_model]
    return {"present": True, "series": series, "models": models, "client_ttft": client,
            "unavailable": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
            "labels": {key: {"label": label, "unit": unit} for key, label, unit, _ in SERIES}}


def _scaled(v: Any, scale: float) -> float | None:
    return None if v is None else round(float(v) * scale, 4)
