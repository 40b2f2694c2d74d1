"""llm_judge through the real runner and a real SQLite store: a scripted judge (a stand-in model that answers
what each test scripts: no model behind it) for the parse and failure paths, the embedded model as a real judge."""
from __future__ import annotations

import json

import pytest

from benchwatch import events as ev
from benchwatch.config import parse_config
from benchwatch.evaluators import EvaluatorError, get_evaluator
from benchwatch.evaluators.llm_judge import parse_verdict, JudgeError
from benchwatch.results import summary_table
from benchwatch.runner import Runner
from benchwatch.runner.sinks import MemorySink
from benchwatch.store import Store

TASKS = [("paris", "Capital of France?", "Paris"), ("lyon", "Capital of France, again?", "Paris"),
         ("rome", "Capital of Italy?", "Rome"), ("nice", "Capital of Italy, again?", "Rome")]
STUDENT = {"Capital of France?": "Paris", "Capital of France, again?": "Lyon", "Capital of Italy?": "Rome",
           "Capital of Italy, again?": "Nice"}


def _run(tmp_path, judge_answers, options=None, judge_options=None, attempts=1, judge_name="judge"):
    data = tmp_path / "caps.jsonl"
    data.write_text("".join(json.dumps({"id": i, "prompt": p, "expected": e}) + "\n" for i, p, e in TASKS))
    cfg = parse_config({
        "store": f"sqlite:///{tmp_path / 'judge.db'}",
        "runner": {"cooling_s": 0, "attempts": attempts, "retry_backoff_s": 0, "coalesce_ms": 0},
        "models": [{"name": "student", "backend": "scripted", "options": {"answers": STUDENT}},
                   {"name": "judge", "backend": "scripted", "judge_only": True,
                    "options": {"answers": judge_answers, **(judge_options or {})}}],
        "datasets": [{"name": "caps", "source": str(data), "evaluator": "llm_judge",
                      "options": {"judge": judge_name, **(options or {})}}],
    })
    sink = MemorySink()
    store = Store(cfg.store)
    try:
        outcome = Runner(cfg, store, [sink]).run()
        return outcome, store.results(outcome.run_id), sink.events
    finally:
        store.close()


def test_pass_fail_verdicts_and_the_detail(tmp_path):
    outcome, rows, events = _run(tmp_path, {
        "Answer to grade:\nParis": "It names the same city as the reference.\nVERDICT: PASS",
        "Answer to grade:\nLyon": "Lyon is not the capital.\n**VERDICT: FAIL**",
        "Answer to grade:\nRome": "Correct, I think. VERDICT: FAIL... no wait.\nVERDICT: PASS",
        "Answer to grade:\nNice": "I am not sure what to say.",
    })
    by_id = {r["task_id"]: r for r in rows}
    assert {k: r["verdict"] for k, r in by_id.items()} == {"paris": "PASS", "lyon": "FAIL", "rome": "PASS",
                                                           "nice": "ERROR"}
    d = by_id["paris"]["detail"]
    assert d["judge_model"] == "judge" and d["judge_verdict"] == "PASS"
    assert d["judge_reasoning"] == "It names the same city as the reference.\nVERDICT: PASS"
    assert "Question:\nCapital of France?\n\nReference answer:\nParis\n\nAnswer to grade:\nParis" in d["judge_prompt"]
    assert d["judge_prompt"].endswith('"VERDICT: PASS" or "VERDICT: FAIL".')
    assert d["judge_latency_ms"] >= 0 and d["judge_completion_tokens"] >= 1
    nice = by_id["nice"]
    assert nice["detail"]["reason"] == "judge 'judge' failed: the judge's reply has no 'VERDICT: PASS' or " \
                                       "'VERDICT: FAIL' line"
    assert nice["error"] == nice["detail"]["reason"] and nice["detail"]["judge_reasoning"]
    # The judge is not benchmarked: the plan has the student only, and no result row is the judge's.
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert [m.name for m in started.models] == ["student"] and {r["model"] for r in rows} == {"student"}
    finished = [e for e in events if isinstance(e, ev.TaskFinished)]
    assert finished[0].detail["judge_prompt"] == d["judge_prompt"]
    # The run's figures count the judge's calls as its own model's.
    table = summary_table(rows)
    assert [c.header for c in table.columns][:2] == ["model", "dataset"]
    assert list(table.columns[0].cells) == ["student", "judge"]
    assert list(table.columns[1].cells) == ["caps", "caps (judge)"]
    assert list(table.columns[2].cells) == ["4", "4"]
    assert outcome.counts == {"PASS": 2, "FAIL": 1, "ERROR": 1}


def test_score_format_and_threshold(tmp_path):
    _, rows, _ = _run(tmp_path, {
        "Answer to grade:\nParis": "Good.\nSCORE: 8",
        "Answer to grade:\nLyon": "Wrong.\nSCORE: 6",
        "Answer to grade:\nRome": "Exactly at the bar.\nScore: 7/10",
        "Answer to grade:\nNice": "Off the scale.\nSCORE: 11",
    }, options={"format": "score", "threshold": 7})
    by_id = {r["task_id"]: r for r in rows}
    assert [by_id[k]["verdict"] for k in ("paris", "lyon", "rome", "nice")] == ["PASS", "FAIL", "PASS", "ERROR"]
    assert by_id["paris"]["detail"]["judge_score"] == 8 and by_id["paris"]["detail"]["threshold"] == 7
    assert "SCORE: N" in by_id["paris"]["detail"]["judge_prompt"]
    assert by_id["nice"]["detail"]["reason"] == "judge 'judge' failed: the judge's score 11 is outside 0..10"


def test_a_failing_judge_is_error_never_pass_and_is_retried(tmp_path):
    outcome, rows, _ = _run(tmp_path, {"*": "VERDICT: PASS"}, judge_options={"fail_times": 100}, attempts=2)
    assert len(rows) == 8 and {r["verdict"] for r in rows} == {"ERROR"}
    assert all(r["error"].startswith("judge 'judge' failed: scripted failure") for r in rows)
    assert outcome.counts == {"ERROR": 4}
    _, rows, _ = _run(tmp_path, {"*": ""})  # an empty reply
    assert {r["verdict"] for r in rows} == {"ERROR"}
    assert rows[0]["detail"]["reason"] == "judge 'judge' failed: the judge answered nothing"


def test_a_judge_that_is_not_a_model_stops_the_run_before_it_starts(tmp_path):
    with pytest.raises(EvaluatorError, match=r"judge 'nobody' is not a model of the config; models: "
                                             r"\['judge', 'student'\]"):
        _run(tmp_path, {"*": "VERDICT: PASS"}, judge_name="nobody")
    assert not Store(f"sqlite:///{tmp_path / 'judge.db'}").list_runs()


@pytest.mark.parametrize("options, message", [
    ({}, "option 'judge' is required"),
    ({"judge": "j", "format": "stars"}, "format must be one of"),
    ({"judge": "j", "format": "score", "threshold": 11}, "need 0 <= threshold <= max_score"),
    ({"judge": "j", "rubric": "{{ answer "}, "rubric: template line 1"),
    ({"judge": "j", "temperature": 1}, r"unknown option\(s\) \['temperature'\]"),
])
def test_bad_options(options, message):
    with pytest.raises(EvaluatorError, match=message):
        get_evaluator("llm_judge", options)


@pytest.mark.parametrize("reply, fmt, expected", [
    ("VERDICT: PASS", "pass_fail", ("PASS", None)), ("verdict: fail", "pass_fail", ("FAIL", None)),
    ("Verdict - **PASS**", "pass_fail", None), ("VERDICT:PASS", "pass_fail", ("PASS", None)),
    ("VERDICT: `FAIL`", "pass_fail", ("FAIL", None)), ("PASS", "pass_fail", None),
    ("SCORE: 10", "score", ("PASS", 10.0)), ("SCORE: 0", "score", ("FAIL", 0.0)),
    ("score = 7.5", "score", ("PASS", 7.5)), ("SCORE: -1", "score", None), ("SCORE: ten", "score", None),
])
def test_parse_verdict(reply, fmt, expected):
    if expected is None:
        with pytest.raises(JudgeError):
            parse_verdict(reply, fmt, 10, 7)
    else:
        assert parse_verdict(reply, fmt, 10, 7) == expected


def test_a_judge_only_model_cannot_be_the_only_one():
    from benchwatch.config import ConfigError

    with pytest.raises(ConfigError, match="every model is judge_only"):
        parse_config({"models": [{"name": "j", "backend": "scripted", "judge_only": True}],
                      "datasets": [{"name": "d", "source": "builtin:facts"}]})


@pytest.mark.slow
def test_the_embedded_model_as_judge(tmp_path):
    """SmolLM2-135M grades for real; a model this small may not keep the format: then ERROR, never PASS."""
    pytest.importorskip("llama_cpp")
    data = tmp_path / "caps.jsonl"
    data.write_text("".join(json.dumps({"id": i, "prompt": p, "expected": e}) + "\n" for i, p, e in TASKS[:2]))
    cfg = parse_config({
        "store": f"sqlite:///{tmp_path / 'judge.db'}",
        "runner": {"cooling_s": 0, "attempts": 1, "max_tokens": 8, "task_timeout_s": 120},
        "models": [{"name": "student", "backend": "scripted", "options": {"answers": STUDENT}},
                   {"name": "smollm2", "backend": "embedded", "n_ctx": 1024, "judge_only": True}],
        "datasets": [{"name": "caps", "source": str(data), "evaluator": "llm_judge",
                      "options": {"judge": "smollm2", "max_tokens": 48}}],
    })
    store = Store(cfg.store)
    try:
        outcome = Runner(cfg, store, []).run()
        rows = store.results(outcome.run_id)
    finally:
        store.close()
    assert outcome.status == "finished" and len(rows) == 2
    for r in rows:
        d = r["detail"]
        assert d["judge_model"] == "smollm2" and "Answer to grade:" in d["judge_prompt"]
        assert d["judge_prompt_tokens"] > 50 and 1 <= d["judge_completion_tokens"] <= 48
        assert d["judge_latency_ms"] > 0
        if r["verdict"] == "ERROR":
            assert d["reason"].startswith("judge 'smollm2' failed: ") and d.get("judge_reasoning") is not None
        else:
            assert r["verdict"] == d["judge_verdict"] and "VERDICT" in d["judge_reasoning"].upper()


def test_the_report_counts_the_judge_as_its_own_model(tmp_path):
    from benchwatch.report.data import load_report

    outcome, rows, _ = _run(tmp_path, {"Answer to grade:\nParis": "VERDICT: PASS", "*": "VERDICT: FAIL"})
    store = Store(f"sqlite:///{tmp_path / 'judge.db'}")
    try:
        report = load_report(store, outcome.run_id)
    finally:
        store.close()
    m = report.matrix
    assert m.models == ["student", "judge"] and m.datasets == ["caps", "caps (judge)"]
    assert m.cell("student", "caps").as_dict()["total"] == 4
    judged = m.cell("judge", "caps (judge)").as_dict()
    assert (judged["total"], judged["pass"]) == (4, 1)
    assert len(report.rows) == 4  # the stored results are the student's alone
    assert report.dists["latency_ms"]["judge"].values  # the judge's own latencies
