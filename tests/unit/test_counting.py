"""One counting rule (benchwatch/counting.py): `results`, the report, the runs list, the comparison and the live
counters count the same stored attempts the same way."""
from __future__ import annotations

import time

import pytest
from rich.console import Console

from benchwatch import counting
from benchwatch import events as ev
from benchwatch.report.data import compare, load_report, runs_list
from benchwatch.results import summary_table
from benchwatch.state import initial_state, replay
from benchwatch.store import Store

# (task, attempt, verdict, final, ttft_ms): an ERROR retried into a PASS, a final ERROR with a huge time (the
# failure's time, not the model's), a PASS, a FAIL.
ROWS = [("a", 1, "ERROR", False, 5.0), ("a", 2, "PASS", True, 100.0), ("b", 1, "ERROR", True, 90_000.0),
        ("c", 1, "PASS", True, 200.0), ("d", 1, "FAIL", True, 300.0)]


def stored(tmp_path) -> tuple[Store, str]:
    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    run_id = store.create_run({"models": [{"name": "m", "backend": "scripted"}],
                               "datasets": [{"name": "d", "source": "builtin:facts"}]}, None)
    for task, attempt, verdict, final, ttft in ROWS:
        now = time.time()
        store.add_result({"run_id": run_id, "model": "m", "backend": "scripted", "dataset": "d", "task_id": task,
                          "attempt": attempt, "prompt": "p", "thinking": "", "response": "", "verdict": verdict,
                          "final": final, "detail": {}, "stages": {}, "ttft_ms": ttft, "tokens_per_s": 10.0,
                          "latency_ms": ttft, "started_at": now, "finished_at": now})
    store.set_run_status(run_id, "finished")
    return store, run_id


def test_every_view_counts_the_same(tmp_path):
    store, run_id = stored(tmp_path)
    report = load_report(store, run_id)
    cell = report.matrix.cell("m", "d")
    assert (cell.passed, cell.failed, cell.errored, cell.total, cell.rate) == (2, 1, 1, 4, 0.5)
    listed = next(r for r in runs_list(store) if r["id"] == run_id)
    assert listed["overall"] == cell and listed["per_model"]["m"] == cell
    assert compare(store, run_id, run_id).unchanged == 4
    # The live counters over the same final verdicts.
    live = replay([ev.RunStarted(run_id=run_id, seq=1, models=[ev.PlanModel(name="m", backend="scripted")],
                                 datasets=[ev.PlanDataset(name="d", evaluator="exact_match",
                                                          task_ids=["a", "b", "c", "d"])],
                                 done=[ev.DoneTask(model=m, dataset=d, task_id=t, verdict=v)
                                       for (m, d, t), v in store.final_verdicts(run_id).items()])],
                  initial_state())["counters"]
    assert (live["pass"], live["fail"], live["error"], live["done"]) == (2, 1, 1, 4)
    assert (live["ok_pct"], live["ko_pct"], live["other_pct"]) == (50.0, 25.0, 25.0)
    # Timings: final PASS/FAIL only, in the report and in `results`: median TTFT of 100, 200, 300.
    assert report.dists["ttft_ms"]["m"].quantiles[50] == 200.0
    console = Console(width=200, record=True)
    console.print(summary_table(store.results(run_id)))
    line = next(ln for ln in console.export_text().splitlines() if ln.lstrip().startswith("m "))
    assert line.split()[2:9] == ["4", "2", "1", "1", "50.0", "200", "10.0"], line


def test_tally_refuses_an_unknown_verdict_and_has_no_rate_before_any():
    t = counting.Tally()
    assert t.rate is None and t.interval is None and t.shares_pct() == (None, None, None)
    with pytest.raises(ValueError, match="unknown verdict 'SKIP'"):
        t.add("SKIP")
    assert counting.Tally.of(["PASS", "PASS", "ERROR"]).shares_pct() == (66.7, 0.0, 33.3)


def test_timed_attempts_are_final_and_answered():
    rows = [{"final": f, "verdict": v} for _, _, v, f, _ in ROWS]
    assert [r["verdict"] for r in counting.timed(rows)] == ["PASS", "PASS", "FAIL"]
    assert len(counting.final(rows)) == 4
    assert counting.median([None, 3.0, 1.0]) == 2.0 and counting.median([None]) is None
