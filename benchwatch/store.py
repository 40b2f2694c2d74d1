"""The results store: SQLAlchemy Core over SQLite (WAL) by default, PostgreSQL by URL.

Runs, one row per task attempt, and host telemetry samples. A result row is committed before the runner
announces it, so the store is always the truth.
"""
from __future__ import annotations

import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import (JSON, Boolean, Column, Float, Integer, MetaData, String, Table, Text, create_engine,
                        event, func, insert, inspect, select, text, update)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .events import TELEMETRY_METRICS, RunPlan

metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("status", String(16), nullable=False),  # running | finished | interrupted | failed
    Column("config", JSON, nullable=False),
    Column("config_path", Text),
    Column("host", JSON),
    Column("detail", Text),
)

results = Table(
    "results", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False, index=True),
    Column("model", Text, nullable=False),
    Column("backend", String(32), nullable=False),
    Column("dataset", Text, nullable=False),
    Column("task_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("thinking", Text, nullable=False, default=""),
    Column("response", Text, nullable=False, default=""),
    Column("expected", JSON),
    Column("verdict", String(8), nullable=False),  # PASS | FAIL | ERROR
    Column("final", Boolean, nullable=False),
    Column("detail", JSON, nullable=False),
    Column("error", Text),
    Column("stages", JSON, nullable=False),  # stage -> [start_s, end_s], seconds from the task's start
    Column("ttft_ms", Float),
    Column("first_token_ms", Float),
    Column("latency_ms", Float),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("thinking_tokens", Integer),
    Column("visible_tokens", Integer),
    Column("tokens_per_s", Float),
    # Load metrics (benchwatch/loadmetrics.py defines them): added by the concurrency work; a store created
    # before them gets the columns added when it is opened (_add_missing_columns).
    Column("output_tokens", Integer),
    Column("itl_ms", Float),
    Column("tpot_ms", Float),
    Column("request_ms", Float),
    Column("backend_stats", JSON),  # what the backend itself reported (llama.cpp timings, Ollama counts)
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
)

telemetry = Table(
    "telemetry", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), index=True),
    Column("ts", Float, nullable=False),
    *(Column(m.key, Integer if m.kind is int else Float) for m in TELEMETRY_METRICS),
    Column("unavailable", JSON),
    Column("model_server", JSON),  # the running model's own server metrics (telemetry/model_server.py)
)

# The plan the runner sent in run_started (models, datasets, task ids): a restarted server rebuilds the run
# from it and the stored verdicts alone. A table of its own rather than a column of `runs`, so a store made
# before it existed gains it by create_all (no ALTER), and its runs rebuild from their stored config instead.
run_plans = Table(
    "run_plans", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("plan", JSON, nullable=False),  # events.RunPlan as JSON
)

RESULT_FIELDS = [c.name for c in results.columns if c.name != "id"]
_REQUIRED = {"run_id", "model", "dataset", "task_id", "attempt", "verdict"}  # a row without them is the caller's bug
# A group of rows goes in as one multi-row INSERT (SQLAlchemy's "insertmanyvalues", turned on for SQLite in
# Store.__init__). Why it matters with many slots: sqlite3 lets go of the interpreter lock around each step of a
# statement, and the committing thread then waits its turn to get it back behind every busy slot. A statement per
# row (executemany) or a row back per step (RETURNING) cost it that wait at each row: a group of 100 took ~1 s
# beside 4 busy threads, against ~80 ms as one statement (the ids are not needed: nothing reads them).
_INSERT_RESULTS = insert(results)


@dataclass
class _PendingRow:
    """A result row of a group being committed, and its own error once tried (None: stored)."""
    values: dict[str, Any]
    error: BaseException | None = None


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


class Store:
    def __init__(self, url: str, base_dir: Path | None = None):
        self.url = _resolve_sqlite(url, base_dir)
        self.engine: Engine = create_engine(self.url, future=True)
        if self.engine.dialect.name == "sqlite":  # one statement for a group of rows (_INSERT_RESULTS)
            self.engine.dialect.use_insertmanyvalues_wo_returning = True
        # One writer at a time in this process. Concurrent runs hand their results to one committing thread
        # (runner/committer.py), which commits each batch in one transaction (add_results). SQLite takes one
        # writer at a time, and separate connections would wait in its busy handler, which sleeps in growing
        # steps: at 64 in flight a commit took 84 ms at p90 that way (bench/bench_concurrency.py).
        self._commit_lock = threading.Lock()
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            metadata.create_all(self.engine)
        except DBAPIError:
            # Another opener (a second server worker, a runner) created the tables between our existence check
            # and our CREATE. Check again: now they exist. A real failure raises again here.
            metadata.create_all(self.engine)
        _add_missing_columns(self.engine)

    # ---- runs
    def create_run(self, config: dict[str, Any], config_path: str | None, host: dict[str, Any] | None = None,
                   run_id: str | None = None) -> str:
        rid = run_id or new_run_id()
        with self.engine.begin() as c:
            c.execute(insert(runs).values(id=rid, created_at=time.time(), status="running", config=config,
                                          config_path=config_path, host=host or {}))
        return rid

    def set_run_status(self, run_id: str, status: str, detail: str = "") -> None:
        values: dict[str, Any] = {"status": status, "detail": detail}
        values["finished_at"] = None if status == "running" else time.time()
        with self.engine.begin() as c:
            c.execute(update(runs).where(runs.c.id == run_id).values(**values))

    def save_plan(self, run_id: str, plan: RunPlan) -> None:
        """Store (or, on a resume with a changed config, replace) the plan of a run."""
        value = plan.model_dump(mode="json")
        with self.engine.begin() as c:
            # Only the run's own runner writes its plan: update, else insert, is enough.
            if not c.execute(update(run_plans).where(run_plans.c.run_id == run_id).values(plan=value)).rowcount:
                c.execute(insert(run_plans).values(run_id=run_id, plan=value))

    def get_plan(self, run_id: str) -> RunPlan | None:
        """The stored plan of a run; None for a run stored before plans were (see run_plans)."""
        with self.engine.connect() as c:
            value = c.execute(select(run_plans.c.plan).where(run_plans.c.run_id == run_id)).scalar()
        return RunPlan.model_validate(value) if value is not None else None

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        return dict(row) if row else None

    def latest_run_id(self) -> str | None:
        with self.engine.connect() as c:
            return c.execute(select(runs.c.id).order_by(runs.c.created_at.desc()).limit(1)).scalar()

    def list_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(runs).order_by(runs.c.created_at.desc()).limit(limit)).mappings().all()
            counts = c.execute(
                select(results.c.run_id, results.c.verdict, func.count())
                .where(results.c.final.is_(True)).group_by(results.c.run_id, results.c.verdict)).all()
        per_run: dict[str, dict[str, int]] = {}
        for rid, verdict, n in counts:
            per_run.setdefault(rid, {})[verdict] = n
        out = []
        for r in rows:
            d = dict(r)
            d["counts"] = per_run.get(r["id"], {})
            out.append(d)
        return out

    # ---- results
    def add_result(self, row: dict[str, Any]) -> None:
        """Insert one task attempt and commit it before returning (durable before announced)."""
        error = self.add_results([row])[0]
        if error is not None:
            raise error

    def add_results(self, rows: list[dict[str, Any]]) -> list[BaseException | None]:
        """Insert and commit several task attempts together; each row's error (None: stored). A bad row costs
        only itself."""
        errors: list[BaseException | None] = []
        group = []
        for row in rows:
            missing = _REQUIRED - row.keys()
            errors.append(ValueError(f"result row is missing {sorted(missing)}") if missing else None)
            if not missing:
                group.append(_PendingRow({k: row.get(k) for k in RESULT_FIELDS}))
        if group:
            with self._commit_lock:
                self._commit_group(group)
        committed = iter(group)
        return [error if error is not None else next(committed).error for error in errors]

    def _commit_group(self, group: list["_PendingRow"]) -> None:
        try:
            with self.engine.begin() as c:  # parameters apart from the statement: its compiled form is cached
                c.execute(_INSERT_RESULTS, [q.values for q in group])
        except Exception:
            if len(group) == 1:
                group[0].error = sys.exc_info()[1]
                return
            for q in group:  # one bad row must not cost the others: each on its own, its own error kept
                self._commit_group([q])
            return

    def results(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(results).where(results.c.run_id == run_id).order_by(results.c.id))
            return [dict(r) for r in rows.mappings()]

    def final_verdicts(self, run_id: str) -> dict[tuple[str, str, str], str]:
        """(model, dataset, task_id) -> verdict for tasks that need no more attempts."""
        with self.engine.connect() as c:
            rows = c.execute(select(results.c.model, results.c.dataset, results.c.task_id, results.c.verdict)
                             .where(results.c.run_id == run_id, results.c.final.is_(True)))
            return {(m, d, t): v for m, d, t, v in rows}

    def attempts_made(self, run_id: str) -> dict[tuple[str, str, str], int]:
        with self.engine.connect() as c:
            rows = c.execute(select(results.c.model, results.c.dataset, results.c.task_id,
                                    func.max(results.c.attempt))
                             .where(results.c.run_id == run_id)
                             .group_by(results.c.model, results.c.dataset, results.c.task_id))
            return {(m, d, t): n for m, d, t, n in rows}

    # ---- telemetry
    def add_telemetry(self, samples: Iterable[dict[str, Any]]) -> None:
        cols = {c.name for c in telemetry.columns} - {"id"}
        rows = [{k: s.get(k) for k in cols} for s in samples]
        if rows:
            with self.engine.begin() as c:
                c.execute(insert(telemetry), rows)

    def telemetry(self, run_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(telemetry).where(telemetry.c.run_id == run_id).order_by(telemetry.c.ts))
            return [dict(r) for r in rows.mappings()]

    def close(self) -> None:
        self.engine.dispose()


def _add_missing_columns(engine: Engine) -> None:
    """A store made by an older benchwatch lacks the nullable columns added since: add them (create_all only
    creates missing tables). Another opener adding the same column at the same time is not an error."""
    inspector = inspect(engine)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in have or not column.nullable or column.primary_key:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as c:
                    c.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
            except DBAPIError:
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise


def _resolve_sqlite(url: str, base_dir: Path | None) -> str:
    """Relative SQLite paths are taken from the config file's folder, so a run works from any cwd."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        rel = url[len(prefix):]
        base = base_dir or Path.cwd()
        return prefix + str((base / rel).resolve())
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a process kill
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
