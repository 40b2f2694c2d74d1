"""Stored runs for the report tests, made by the real runner.

The models are the scripted backend stand-in (benchwatch/backends/scripted.py): it answers from a table, so a
test knows which verdicts to expect; everything else (runner, evaluators, store) is the real thing. Telemetry
rows go in through Store.add_telemetry, as the server's sampler stores them.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchwatch.config import parse_config
from benchwatch.runner import Runner
from benchwatch.store import Store

# Model output that tries to escape its text context and the inline JSON block.
EVIL_RESPONSE = ('no idea </script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
                 '<!-- <script>')
EVIL_TASK_ID = 'odd</script><script>window.pwned=3</script>'

MODEL_GOOD = {"name": "good", "backend": "scripted",
              "options": {"first_token_delay_s": 0.003, "token_delay_s": 0.001, "chunk": 1,
                          "answers": {"22 plus 10": "32", "27 minus 4": "23", "3 times 10": "31",
                                      "capital of France": "Paris", "capital of Japan": "Tokyo",
                                      "*": EVIL_RESPONSE}}}
# Fails the first 2 calls: with attempts=2 its first task errors twice (final ERROR), the rest answer "30".
MODEL_FLAKY = {"name": "flaky", "backend": "scripted",
               "options": {"fail_times": 2, "first_token_delay_s": 0.002, "chunk": 2,
                           "answers": {"*": "30"}}}


def odd_dataset(tmp_path: Path) -> Path:
    """A small JSONL dataset whose task ids are hostile text."""
    path = tmp_path / "odd.jsonl"
    rows = [{"id": EVIL_TASK_ID, "prompt": "Name a colour.", "expected": ["blue"]},
            {"id": "odd-2", "prompt": "What is 22 plus 10?", "expected": ["32"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_run(tmp_path: Path, models: list[dict[str, Any]] | None = None, datasets: list[dict[str, Any]] | None = None,
             db: str = "bench.db", telemetry: bool = True) -> tuple[Store, str]:
    cfg = parse_config({
        "store": f"sqlite:///{tmp_path / db}",
        "runner": {"cooling_s": 0, "attempts": 2, "retry_backoff_s": 0, "coalesce_ms": 0},
        "models": models or [MODEL_GOOD, MODEL_FLAKY],
        "datasets": datasets or [
            {"name": "arith", "source": "builtin:arithmetic", "evaluator": "numeric", "limit": 4},
            {"name": "facts", "source": "builtin:facts", "limit": 3},
            {"name": "odd", "source": str(odd_dataset(tmp_path))},
        ],
    }, "report test config")
    store = Store(cfg.store)
    outcome = Runner(cfg, store, []).run()
    assert outcome.status == "finished", outcome
    if telemetry:
        add_telemetry(store, outcome.run_id)
    return store, outcome.run_id


def add_telemetry(store: Store, run_id: str, n: int = 40, gpu: bool = True) -> list[dict[str, Any]]:
    """n samples spread evenly over the run's span, as the server's 1 Hz sampler would have stored them."""
    run = store.get_run(run_id)
    t0, t1 = run["created_at"], run["finished_at"]
    samples = []
    for i in range(n):
        s = {"run_id": run_id, "ts": t0 + (t1 - t0) * i / (n - 1), "cpu_pct": 40 + 30 * math.sin(i / 4),
             "fds": 20 + i % 3, "disk_mbps": 0.5, "tps": 20 + 3 * (i % 7),
             "gpu_pct": 55 + 25 * math.cos(i / 5) if gpu else None, "gpu_temp_c": 61 + i / 4 if gpu else None,
             "unavailable": {} if gpu else {"gpu_pct": "NVML: driver not loaded",
                                            "gpu_temp_c": "NVML: driver not loaded"}}
        samples.append(s)
    store.add_telemetry(samples)
    return samples
