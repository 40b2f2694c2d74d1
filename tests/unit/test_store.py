"""The store's schema set-up when several processes open a fresh store at once (server workers, a runner)."""
from __future__ import annotations

from sqlalchemy import create_engine, event, inspect

from benchwatch.store import RESULT_FIELDS, Store, _PendingRow, metadata


def test_opening_a_store_while_another_process_creates_its_tables(tmp_path):
    """Another opener creates the tables between this one's existence check and its CREATE (what made a second
    gunicorn worker fail to boot, taking the server down): the store still opens, on the tables that exist."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    other = create_engine(url)
    raced: list[bool] = []

    def create_meanwhile(target, connection, **kw):
        if not raced:
            raced.append(True)
            metadata.create_all(other)  # the other process, in between

    event.listen(metadata, "before_create", create_meanwhile)
    try:
        store = Store(url)
    finally:
        event.remove(metadata, "before_create", create_meanwhile)
        other.dispose()
    assert raced
    assert {"runs", "results", "telemetry"} <= set(inspect(store.engine).get_table_names())
    run_id = store.create_run({"a": 1}, None)
    assert store.get_run(run_id)["status"] == "running"
    store.close()


def _row(run_id: str, task: str, **extra):
    return {"run_id": run_id, "model": "m", "backend": "scripted", "dataset": "d", "task_id": task, "attempt": 1,
            "prompt": "p", "thinking": "", "response": "", "verdict": "PASS", "final": True, "detail": {},
            "stages": {}, "started_at": 0.0,
            "finished_at": 1.0, **extra}


def test_results_from_many_slots_at_once_are_each_committed_before_add_result_returns(tmp_path):
    """Concurrent slots: rows queued during a commit go in the next one, together; every caller returns only once
    its own row is in the file (read back through a second connection at that moment)."""
    import sqlite3
    import threading
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = store.create_run({}, None)
    reader = sqlite3.connect(tmp_path / "r.db", check_same_thread=False)
    reader_lock = threading.Lock()
    missing: list[str] = []

    def slot(n: int) -> None:
        for i in range(10):
            task = f"t{n}-{i}"
            store.add_result(_row(run_id, task))
            with reader_lock:
                if not reader.execute("select 1 from results where task_id = ?", (task,)).fetchone():
                    missing.append(task)

    threads = [threading.Thread(target=slot, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not missing
    assert sorted(r["task_id"] for r in store.results(run_id)) == sorted(f"t{n}-{i}" for n in range(32)
                                                                         for i in range(10))
    store.close()


def test_a_group_of_rows_is_one_statement_however_large(tmp_path):
    """A commit of many queued rows is one multi-row INSERT (the committing slot then gives up the interpreter lock
    a few times, not at each row), split only where SQLite's limit on bound parameters requires; every row and
    every JSON field comes back as written."""
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = store.create_run({}, None)
    inserts: list[str] = []

    def seen(conn, cursor, statement, *args):
        if "INSERT INTO results" in statement:
            inserts.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    group = [_PendingRow({k: _row(run_id, f"t{i}", detail={"i": i}, stages={"done": [i, i]}).get(k)
                         for k in RESULT_FIELDS}) for i in range(2000)]
    store._commit_group(group)
    assert all(q.error is None for q in group)
    assert 2 <= len(inserts) <= 4  # ~30 parameters a row, at most 32,766 a statement
    # Each statement carries many rows (not one run per row), and has no row back per step (RETURNING).
    assert all(sql.count("(?") >= 500 and "RETURNING" not in sql for sql in inserts)
    rows = store.results(run_id)
    assert [(r["task_id"], r["detail"], r["stages"]) for r in rows] == [
        (f"t{i}", {"i": i}, {"done": [i, i]}) for i in range(2000)]
    inserts.clear()
    store.add_result(_row(run_id, "alone"))
    assert len(inserts) == 1
    store.close()


def test_a_bad_row_in_a_group_costs_only_its_own_slot(tmp_path):
    import threading
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = store.create_run({}, None)
    errors: dict[str, str] = {}
    barrier = threading.Barrier(8)

    def slot(n: int) -> None:
        bad = n == 3
        row = _row(run_id, f"t{n}", **({"prompt": None} if bad else {}))  # NOT NULL: the database refuses it
        barrier.wait()
        try:
            store.add_result(row)
        except Exception as exc:  # noqa: BLE001 - the test looks at who got which error
            errors[f"t{n}"] = type(exc).__name__

    threads = [threading.Thread(target=slot, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert list(errors) == ["t3"] and errors["t3"] == "IntegrityError"
    assert sorted(r["task_id"] for r in store.results(run_id)) == [f"t{n}" for n in range(8) if n != 3]
    store.close()


def test_a_row_missing_a_required_field_is_refused_by_name_and_costs_no_other_row(tmp_path):
    import pytest
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = store.create_run({}, None)
    bad = {k: v for k, v in _row(run_id, "bad").items() if k != "verdict"}
    errors = store.add_results([_row(run_id, "a"), bad, _row(run_id, "b")])
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], ValueError) and "verdict" in str(errors[1])
    with pytest.raises(ValueError, match="missing \\['task_id'\\]"):
        store.add_result({k: v for k, v in _row(run_id, "x").items() if k != "task_id"})
    assert [r["task_id"] for r in store.results(run_id)] == ["a", "b"]
    store.close()
