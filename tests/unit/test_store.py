"""The store's schema set-up when several processes open a fresh store at once (server workers, a runner)."""
from __future__ import annotations

from sqlalchemy import create_engine, event, inspect

from benchwatch.store import Store, metadata


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
