"""The judge's verdict, reasoning, score and prompt on the monitor's Result panel: the detail made by the real
llm_judge evaluator (a scripted judge: a stand-in model that answers what the test scripts), published to a real
server through its ingest endpoint, read back from the page in headless Chromium."""
from __future__ import annotations

from playwright.sync_api import expect

from benchwatch import events as ev
from benchwatch.backends import make_backend
from benchwatch.config import parse_config
from benchwatch.datasets import Task
from benchwatch.evaluators import get_evaluator

from .harness import Script, open_monitor

REASONING = "The answer names Paris, as the reference does.\nSCORE: 9"


def _judge_detail() -> tuple[str, dict]:
    cfg = parse_config({"models": [{"name": "m", "backend": "scripted"},
                                   {"name": "judge", "backend": "scripted", "judge_only": True,
                                    "options": {"answers": {"*": REASONING}}}],
                        "datasets": [{"name": "d", "source": "builtin:facts"}]})
    judge = get_evaluator("llm_judge", {"judge": "judge", "format": "score"})
    judge.bind(cfg.models, cfg.runner, make_backend)
    v = judge.evaluate(Task("q1", "What is the capital of France?", "Paris"), "Paris")
    judge.close()
    return v.verdict, v.detail


def test_the_result_panel_shows_the_judges_verdict_reasoning_and_prompt(server, browser, shots):
    verdict, detail = _judge_detail()
    assert verdict == "PASS" and detail["judge_score"] == 9
    s = Script("run-judge")
    t = dict(model="m", dataset="open", task_id="q1")
    server.post([
        s(ev.RunStarted, models=[ev.PlanModel(name="m", backend="scripted")],
          datasets=[ev.PlanDataset(name="open", evaluator="llm_judge", task_ids=["q1"])], cooling_s=0),
        s(ev.ModelStarted, model="m", backend="scripted", ordinal=1, total=1),
        s(ev.DatasetStarted, model="m", dataset="open", task_ids=["q1"]),
        s.task(ev.TaskStarted, prompt="What is the capital of France?", **t),
        s.task(ev.StageChanged, stage="streaming", at_s=0.1, **t),
        s.task(ev.TokenDelta, kind="visible", text="Paris", n_tokens=1, tps=10.0, **t),
        s.task(ev.StageChanged, stage="evaluating", at_s=0.2, **t),
        s.task(ev.StageChanged, stage="done", at_s=0.9, **t),
        s.task(ev.TaskFinished, verdict=verdict, final=True, ttft_ms=100.0, latency_ms=900.0, tokens_per_s=10.0,
               completion_tokens=1, detail=detail, stages={"streaming": [0.1, 0.2], "evaluating": [0.2, 0.9],
                                                           "done": [0.9, 0.9]}, **t),
    ])
    page = open_monitor(browser, server.url)
    panel = page.locator("#panel-result")
    expect(panel.locator(".verdict")).to_have_text("PASS")
    terms = panel.locator("dt").all_inner_texts()
    assert terms[:5] == ["judge_model", "judge_verdict", "judge_reasoning", "judge_score", "max_score"]
    assert "judge_prompt" in terms
    values = dict(zip(terms, panel.locator("dd").all_inner_texts()))
    assert values["judge_model"] == "judge" and values["judge_verdict"] == "PASS" and values["judge_score"] == "9"
    assert values["judge_reasoning"] == REASONING  # line breaks kept
    assert values["judge_prompt"].startswith("You are grading an answer")
    assert "Answer to grade:\nParis" in values["judge_prompt"]
    # A long prompt scrolls inside its row instead of stretching the panel.
    prompt_dd = panel.locator("dd").nth(terms.index("judge_prompt"))
    assert prompt_dd.evaluate("e => getComputedStyle(e).overflowY") == "auto"
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "result-panel-judge.png"), full_page=True)
    assert not page.errors
