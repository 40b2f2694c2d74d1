"""The reference backend through the real runner and a real SQLite store: every built-in dataset, with the
evaluator config.example.yaml documents for it, and a HumanEval subset in the sandbox, end 100 % PASS."""
from __future__ import annotations

import yaml

from benchwatch import events as ev
from benchwatch.backends import GenParams, Stats, Text, make_backend
from benchwatch.config import parse_config
from benchwatch.datasets import Task
from benchwatch.runner import Runner
from benchwatch.runner.sinks import MemorySink
from benchwatch.store import Store
from tests.conftest import ROOT


def _run(tmp_path, datasets):
    cfg = parse_config({
        "store": f"sqlite:///{tmp_path / 'ref.db'}",
        "runner": {"cooling_s": 0, "attempts": 1, "coalesce_ms": 0},
        "models": [{"name": "reference", "backend": "reference"}],
        "datasets": datasets,
    })
    sink = MemorySink()
    store = Store(cfg.store)
    try:
        outcome = Runner(cfg, store, [sink]).run()
        return outcome, store.results(outcome.run_id), sink.events
    finally:
        store.close()


def test_every_builtin_dataset_passes_with_its_documented_evaluator(tmp_path):
    example = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    datasets = [{**d, "limit": None} for d in example["datasets"]]
    builtin = {p.stem for p in (ROOT / "benchwatch/datasets/builtin").glob("*.jsonl")}
    assert builtin <= {d["source"].split(":", 1)[1] for d in datasets}, "document every built-in set"
    outcome, rows, events = _run(tmp_path, datasets)
    assert outcome.status == "finished"
    assert outcome.counts == {"PASS": len(rows)} and len(rows) >= 30
    reading = [r for r in rows if r["dataset"] == "reading"]
    assert reading and all(r["detail"]["f1"] == 1.0 and r["detail"]["threshold"] == 0.5 for r in reading)
    # Streamed like a model: several visible deltas per answer, then the backend's stats.
    deltas = [e for e in events if isinstance(e, ev.TokenDelta)]
    assert deltas and all(d.kind == "visible" for d in deltas)
    assert all(r["completion_tokens"] and r["ttft_ms"] is not None for r in rows)


def test_humaneval_subset_passes_in_the_sandbox(tmp_path):
    ids = ["HumanEval/0", "HumanEval/32", "HumanEval/38", "HumanEval/100", "HumanEval/163"]
    outcome, rows, _ = _run(tmp_path, [{"name": "humaneval", "source": "humaneval", "evaluator": "code_execution",
                                        "ids": ids, "options": {"timeout_s": 10}}])
    assert outcome.counts == {"PASS": 5}
    assert [r["task_id"] for r in rows] == ids
    assert all(r["detail"]["tests_passed"] >= 1 and r["detail"]["isolation"].split(":")[0] in ("full", "bwrap", "rlimits")
               and r["detail"]["forgeable"] is False for r in rows)
    assert rows[0]["response"] == rows[0]["expected"]  # the canonical body, indentation intact


def test_streams_pieces_that_join_to_the_exact_answer():
    cfg = parse_config({"models": [{"name": "r", "backend": "reference"}],
                        "datasets": [{"name": "d", "source": "builtin:facts"}]}).models[0]
    backend = make_backend(cfg)
    task = Task(id="t", prompt="Write it", expected="    x = 1\n    return  x\n")
    backend.set_task(task)
    items = list(backend.stream([{"role": "user", "content": "Write it"}], GenParams(64, 0.0, 1)))
    texts = [i for i in items if isinstance(i, Text)]
    assert len(texts) > 2 and "".join(t.text for t in texts) == task.expected
    assert isinstance(items[-1], Stats) and items[-1].completion_tokens == len(texts)


def test_a_task_without_a_reference_is_an_error_not_a_pass(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"id": "x", "prompt": "Say hi"}\n')
    outcome, rows, _ = _run(tmp_path, [{"name": "d", "source": str(tmp_path / "d.jsonl"), "evaluator": "contains"}])
    assert outcome.counts == {"ERROR": 1} and "no reference answer" in rows[0]["error"]
