"""The committing thread of concurrent runs (benchwatch/runner/committer.py), against a real store file."""
from __future__ import annotations

import threading

from benchwatch.runner.committer import Committer, SlotBacklog
from benchwatch.store import Store


def _row(run_id: str, task: str, **extra):
    return {"run_id": run_id, "model": "m", "backend": "scripted", "dataset": "d", "task_id": task, "attempt": 1,
            "prompt": "p", "thinking": "", "response": "", "verdict": "PASS", "final": True, "detail": {},
            "stages": {}, "started_at": 0.0, "finished_at": 1.0, **extra}


def test_each_announcement_follows_its_commit_and_calls_keep_their_place(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = store.create_run({}, None)
    seen: list[tuple] = []

    def announce(task):
        def stored(error):
            in_file = any(r["task_id"] == task for r in store.results(run_id))
            seen.append(("announced", task, error is None, in_file))
        return stored

    committer = Committer(store)
    for i in range(20):
        committer.commit(_row(run_id, f"t{i}"), announce(f"t{i}"), SlotBacklog())
        if i == 9:
            committer.then(lambda: seen.append(("call after t9",)))
    committer.close()
    assert seen[:10] == [("announced", f"t{i}", True, True) for i in range(10)]
    assert seen[10] == ("call after t9",)
    assert seen[11:] == [("announced", f"t{i}", True, True) for i in range(10, 20)]
    store.close()


def test_a_store_that_fails_outright_gives_every_row_its_error_and_the_thread_goes_on(tmp_path):
    class BrokenOnce(Store):
        calls = 0

        def add_results(self, rows):
            BrokenOnce.calls += 1
            if BrokenOnce.calls == 1:
                raise OSError("disk I/O error")
            return super().add_results(rows)

    store = BrokenOnce(f"sqlite:///{tmp_path / 'r.db'}")
    run_id = store.create_run({}, None)
    errors: dict[str, str | None] = {}
    holding, gate = threading.Event(), threading.Event()
    committer = Committer(store)
    committer.then(lambda: (holding.set(), gate.wait()))  # hold the thread: the next two rows make one batch
    holding.wait(5)
    committer.commit(_row(run_id, "a"), lambda e: errors.__setitem__("a", e and str(e)), SlotBacklog())
    committer.commit(_row(run_id, "b"), lambda e: errors.__setitem__("b", e and str(e)), SlotBacklog())
    gate.set()
    committer.close()  # joins: the thread did not die with the failure
    committer = Committer(store)
    committer.commit(_row(run_id, "c"), lambda e: errors.__setitem__("c", e and str(e)), SlotBacklog())
    committer.close()
    assert errors == {"a": "disk I/O error", "b": "disk I/O error", "c": None}
    assert [r["task_id"] for r in store.results(run_id)] == ["c"]
    store.close()
