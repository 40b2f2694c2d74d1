"""The page tells states apart: a model or dataset whose tasks ended in ERROR is "done, N errors" in the error
colour (not the green of one that passed), and while the stream is down the page is dimmed and says how old its
data is. Real server, real Chromium; screenshots in artifacts/screenshots/."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from benchwatch import events as ev

from .harness import Script, open_monitor

GREEN, ERROR = "rgb(46, 157, 79)", "rgb(168, 42, 138)"  # monitor.css --pass and --error (light theme)


def bg(locator) -> str:
    return locator.evaluate("e => getComputedStyle(e).backgroundColor")


def _run_with_errors(s: Script) -> list:
    """Model `ollama-down` errors on every task of `facts`; model `ok` passes everything."""
    out = [s(ev.RunStarted, models=[ev.PlanModel(name="ok", backend="scripted"),
                                    ev.PlanModel(name="ollama-down", backend="ollama")],
             datasets=[ev.PlanDataset(name="facts", evaluator="exact_match", task_ids=["f1", "f2", "f3"])])]
    for ordinal, (model, verdict) in enumerate((("ok", "PASS"), ("ollama-down", "ERROR")), start=1):
        out += [s(ev.ModelStarted, model=model, backend="scripted", ordinal=ordinal, total=2),
                s(ev.DatasetStarted, model=model, dataset="facts", task_ids=["f1", "f2", "f3"])]
        for t in ("f1", "f2", "f3"):
            out += [s.task(ev.TaskStarted, model, "facts", t, prompt="q"),
                    s.task(ev.TaskFinished, model, "facts", t, verdict=verdict, final=True,
                           error="connection refused" if verdict == "ERROR" else None)]
        out += [s(ev.DatasetFinished, model=model, dataset="facts"), s(ev.ModelFinished, model=model)]
    return out + [s(ev.RunFinished, status="finished")]


def test_errors_are_not_the_green_of_a_pass(server, browser, shots):
    page = open_monitor(browser, server.url)
    server.post(_run_with_errors(Script("run-errors")))
    expect(page.locator("#run-chip")).to_have_text("Run run-errors · finished")
    ok, down = page.locator("#pills-models .pill").nth(0), page.locator("#pills-models .pill").nth(1)
    expect(ok).to_contain_text("done")
    expect(down).to_contain_text("done, 3 errors")
    expect(down).to_have_class(re.compile(r"\bst-done-errors\b"))
    assert bg(ok) == GREEN and bg(down) == ERROR
    # The Datasets Overview follows the active (last) model: its facts ended in errors.
    facts = page.locator("#pills-datasets .pill").nth(0)
    expect(facts).to_contain_text("done, 3 errors")
    assert bg(facts) == ERROR
    expect(facts).to_have_attribute("title", re.compile(r"error 3"))
    page.screenshot(path=str(shots / "monitor-done-with-errors.png"), full_page=True)
    assert page.errors == []


def test_stale_while_the_stream_is_down_then_live_again(server, browser, shots):
    page = open_monitor(browser, server.url)
    s = Script("run-stale")
    server.post(_run_with_errors(s)[:3])
    expect(page.locator("#run-chip")).to_have_text("Run run-stale · running")
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bstale\b"))
    server.stop()
    expect(page.locator("body")).to_have_class(re.compile(r"\bstale\b"), timeout=15000)
    chip = page.locator("#conn-chip")
    expect(chip).to_have_text(re.compile(r"(Reconnecting…|Disconnected, retrying…) · last update \d+ s ago"))
    age = int(re.search(r"last update (\d+) s ago", chip.inner_text()).group(1))
    expect(chip).to_have_text(re.compile(rf"last update (?!{age} )\d+ s ago"), timeout=5000)  # it counts up
    opacity = float(page.locator("main").evaluate("e => getComputedStyle(e).opacity"))
    assert opacity < 0.7
    page.screenshot(path=str(shots / "monitor-stale.png"), full_page=True)
    server.start()
    expect(chip).to_have_text("Live", timeout=20000)
    expect(page.locator("body")).not_to_have_class(re.compile(r"\bstale\b"))
    assert page.errors == []
