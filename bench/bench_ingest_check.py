"""What the ingest door's bad-input checks cost on a full batch (500 token events): reading the body as ingest
does (UTF-8, JSON, the Unicode / finite / depth check: server.ingest._read_body) next to JSON parsing alone and
event validation. Prints medians of 15 runs in ms.

    PYTHONPATH=. python bench/bench_ingest_check.py
"""
from __future__ import annotations

import json
import statistics
import time

from flask import Flask

from benchwatch.events import parse_events
from benchwatch.server.ingest import _read_body

REF = {"run_id": "r", "model": "m", "dataset": "d", "task_id": "t", "attempt": 1}


def median_ms(fn, n: int = 15) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    app = Flask(__name__)
    events = [{"type": "token", **REF, "seq": i, "kind": "visible", "text": "tok \U0001F600 " * 2, "n_tokens": 8,
               "tps": 40.0} for i in range(500)]
    # ensure_ascii=True spells the emoji as escaped surrogate pairs: then every field is walked.
    for label, ascii_only in (("UTF-8 text", False), ("escaped surrogate pairs, every field walked", True)):
        raw = json.dumps(events, ensure_ascii=ascii_only).encode()

        def read() -> None:
            with app.test_request_context(method="POST", data=raw):
                body, problem = _read_body()
                assert problem is None

        print(f"500 token events, {label}: json.loads alone {median_ms(lambda: json.loads(raw)):.1f} ms; "
              f"ingest's read + checks {median_ms(read):.1f} ms; event validation "
              f"{median_ms(lambda: parse_events(json.loads(raw))):.1f} ms (medians of 15)")


if __name__ == "__main__":
    main()
