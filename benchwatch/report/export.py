"""`benchwatch export`: a run's task attempts (or telemetry samples) as CSV or JSON lines.

JSON lines are the same objects as `benchwatch results --format json` (results.result_json), one per attempt.
CSV has the same columns; structured fields (stages, detail, expected, backend_stats) hold JSON text, booleans
are `true`/`false`, an empty cell is a null, except in prompt, thinking and response, which are never null (an
empty cell there is empty text). So a CSV row reads back exactly.
"""
from __future__ import annotations

import csv
import json
from typing import Any, Iterable, TextIO

from ..results import RESULT_JSON_FIELDS, result_json
from ..store import Store, telemetry as telemetry_table

FORMATS = ("csv", "jsonl")
TABLES = ("results", "telemetry")
JSON_COLUMNS = {"stages", "detail", "expected", "backend_stats", "unavailable"}
TELEMETRY_FIELDS = tuple(c.name for c in telemetry_table.columns if c.name != "id")


def _records(store: Store, run_id: str, table: str) -> tuple[tuple[str, ...], Iterable[dict[str, Any]]]:
    if table == "telemetry":
        return TELEMETRY_FIELDS, ({k: s.get(k) for k in TELEMETRY_FIELDS} for s in store.telemetry(run_id))
    return RESULT_JSON_FIELDS, (result_json(r) for r in store.results(run_id))


def csv_cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in JSON_COLUMNS:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)  # str(float) is its shortest repr: it reads back to the same float


def export(store: Store, run_id: str, fmt: str, out: TextIO, table: str = "results") -> int:
    """Write the run's rows to `out`; returns how many were written."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    fields, records = _records(store, run_id, table)
    n = 0
    if fmt == "jsonl":
        for rec in records:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
        return n
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for rec in records:
        writer.writerow([csv_cell(f, rec.get(f)) for f in fields])
        n += 1
    return n
