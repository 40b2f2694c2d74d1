"""The monitor with 32 tasks in flight (runner.concurrency 32), fed through a real server's ingest endpoint: every
in-flight pill amber with the halo, the "now" strip visible without scrolling at 1440x900 and at 390 px wide,
Streaming Details following one task (pinned by a click, unpinned by a second), the aggregate TPS chart, "last
task" when nothing runs; and with one slot the strip stays hidden (the page as before)."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from benchwatch import events as ev

from .harness import Script, no_sideways_scroll, open_monitor

MODEL, DATASET = "vllm-served", "arith"
IDS = [f"t{i:02d}" for i in range(1, 65)]
N = 32
AMBER = "rgb(240, 164, 0)"


def start(s: Script, concurrency: int) -> list:
    return [
        s(ev.RunStarted, models=[ev.PlanModel(name=MODEL, backend="openai")],
          datasets=[ev.PlanDataset(name=DATASET, evaluator="numeric", task_ids=IDS)], cooling_s=0.0),
        s(ev.ModelStarted, model=MODEL, backend="openai", ordinal=1, total=1, concurrency=concurrency),
        s(ev.BackendState, model=MODEL, state="connected", detail="stand-in"),
        s(ev.DatasetStarted, model=MODEL, dataset=DATASET, task_ids=IDS),
    ]


def in_flight(s: Script, task_id: str, stage: str = "streaming", text: str | None = None) -> list:
    t = dict(model=MODEL, dataset=DATASET, task_id=task_id)
    out = [s.task(ev.TaskStarted, prompt=f"prompt of {task_id}", **t),
           s.task(ev.StageChanged, stage="cooling", at_s=0.0, **t),
           s.task(ev.StageChanged, stage="thinking", at_s=0.01, **t)]
    if stage == "streaming":
        out += [s.task(ev.StageChanged, stage="streaming", at_s=0.31, **t),
                s.task(ev.TokenDelta, kind="visible", text=text or f"answer of {task_id} ", n_tokens=5, tps=40.0,
                       **t)]
    elif stage == "throttled":
        out.append(s.task(ev.StageChanged, stage="throttled", at_s=0.02, **t))
    return out


def finish(s: Script, task_id: str) -> list:
    t = dict(model=MODEL, dataset=DATASET, task_id=task_id)
    return [s.task(ev.StageChanged, stage="evaluating", at_s=0.8, **t),
            s.task(ev.StageChanged, stage="done", at_s=0.81, **t),
            s.task(ev.TaskFinished, verdict="PASS", final=True, ttft_ms=300.0, latency_ms=800.0, tokens_per_s=40.0,
                   itl_ms=25.0, output_tokens=20, stages={"cooling": [0.0, 0.01], "thinking": [0.01, 0.31],
                                                          "streaming": [0.31, 0.8], "evaluating": [0.8, 0.81],
                                                          "done": [0.81, 0.81]}, **t)]


def strip_in_view(page) -> bool:
    return page.evaluate("""() => { const r = document.querySelector('#now-strip').getBoundingClientRect();
        return r.height > 0 && r.top >= 0 && r.bottom <= innerHeight && r.right <= innerWidth + 1; }""")


def test_32_in_flight(server, browser, shots):
    page = open_monitor(browser, server.url, viewport={"width": 1440, "height": 900})
    s = Script("run-conc-32")
    server.post(start(s, N))
    events = []
    for i, tid in enumerate(IDS[:N]):
        events += in_flight(s, tid, stage="throttled" if tid == "t07" else "thinking" if i % 5 == 4 else "streaming")
    server.post(events)

    strip = page.locator("#now-strip")
    expect(strip).to_be_visible()
    expect(strip.locator("[data-k='inflight']")).to_have_text(f"{N}/{N} in flight · 1 throttled")
    expect(strip.locator("[data-k='position']")).to_have_text("0/64 done")
    assert strip_in_view(page)
    # Every in-flight pill amber with the halo (the throttled one striped, also haloed: it is still its call).
    running = page.locator("#pills-tasks .dot.halo")
    expect(running).to_have_count(N - 1)
    for tid in ("t01", "t16", "t32"):
        pill = page.locator(f"#pills-tasks [data-id='{tid}']")
        expect(pill).to_have_class(re.compile(r"\bhalo\b"))
        assert pill.evaluate("e => getComputedStyle(e).backgroundColor") == AMBER
    expect(page.locator("#pills-tasks [data-id='t07']")).to_have_attribute("data-status", "throttled")
    # 31 halos pulse together: one timer beats the grid (no 60 fps animation per pill).
    grid = page.locator("#pills-tasks")
    expect(grid).to_have_class(re.compile(r"\bmany\b"))
    beats = {grid.evaluate("e => e.classList.contains('beat')")}
    for _ in range(6):
        page.wait_for_timeout(300)
        beats.add(grid.evaluate("e => e.classList.contains('beat')"))
    assert beats == {True, False}
    assert page.locator("#pills-tasks [data-id='t01']").evaluate(
        "e => getComputedStyle(e, '::after').animationName") == "none"
    # ...and each halo is an outline on an unpositioned pill: a halo coming or going repaints, never lays out.
    assert page.locator("#pills-tasks [data-id='t01']").evaluate(
        "e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).position]") == ["solid", "static"]
    expect(page.locator("#pills-tasks [data-id='t33']")).not_to_have_class(re.compile(r"\bhalo\b"))
    # The TPS chart is the aggregate, and says so.
    expect(page.locator(".chart-box[data-chart='tps'] .chart-title")).to_have_text("TPS (output tokens/s, all streams)")
    # Streaming Details follows one task: the server keeps the first started until it finishes.
    which = page.locator("#stream-which")
    expect(which).to_contain_text("t01")
    expect(which).to_contain_text("most recently started")
    expect(strip.locator("[data-k='task']")).to_have_text("t01")
    expect(strip.locator("[data-k='stage']")).to_have_text("STREAMING")
    expect(strip.locator("[data-k='ttft']")).to_have_text("TTFT 300 ms")
    page.screenshot(path=str(shots / "monitor-concurrency-32-1440x900.png"))

    # Click a running pill: pinned; the cards show its stream.
    page.locator("#pills-tasks [data-id='t21']").click()
    expect(which).to_contain_text("t21 · pinned")
    expect(page.locator("#response-visible")).to_have_text("answer of t21")
    expect(page.locator("#card-task [data-k='task']")).to_have_text(f"t21 · {DATASET}")
    expect(page.locator("#card-task [data-k='which']")).to_have_text("(pinned task)")
    expect(page.locator("#pills-tasks [data-id='t21']")).to_have_class(re.compile(r"\bpinned\b"))
    expect(strip.locator("[data-k='task']")).to_have_text("📌 t21")
    # Its stream goes on while pinned.
    server.post([s.task(ev.TokenDelta, model=MODEL, dataset=DATASET, task_id="t21", kind="visible", text="more",
                        n_tokens=1, tps=41.0)])
    expect(page.locator("#response-visible")).to_have_text("answer of t21 more")
    # Finished while pinned: the card keeps it and says so.
    server.post(finish(s, "t21"))
    expect(which).to_contain_text("t21 · pinned, finished")
    # A second click unpins: back to the server's choice.
    page.locator("#pills-tasks [data-id='t21']").click()
    expect(which).to_contain_text("t01 · most recently started")
    expect(page.locator("#pills-tasks .dot.pinned")).to_have_count(0)

    # 390 px wide: the strip is still on screen without scrolling, nothing scrolls sideways.
    narrow = open_monitor(browser, server.url, viewport={"width": 390, "height": 844})
    expect(narrow.locator("#now-strip")).to_be_visible()
    assert strip_in_view(narrow) and no_sideways_scroll(narrow)
    narrow.screenshot(path=str(shots / "monitor-concurrency-32-390.png"))
    narrow.context.close()

    # The grid is laid out in rows of as many pills as fit, in plan order, and re-rowed when its width changes.
    rows_js = """() => { const box = document.querySelector('#pills-tasks');
        const rows = [...box.querySelectorAll('.dot-row')];
        return {width: box.clientWidth, sizes: rows.map((r) => r.children.length),
                overflow: rows.some((r) => r.scrollWidth > r.clientWidth),
                ids: [...box.querySelectorAll('.dot')].map((d) => d.dataset.id)}; }"""
    wide = page.evaluate(rows_js)
    page.set_viewport_size({"width": 500, "height": 900})
    page.wait_for_function("() => document.querySelector('#pills-tasks .dot-row').children.length < %d"
                           % wide["sizes"][0])
    small = page.evaluate(rows_js)
    for grid in (wide, small):
        assert grid["ids"] == IDS and not grid["overflow"]
        assert sum(grid["sizes"]) == 64 and len(set(grid["sizes"][:-1])) <= 1 and grid["sizes"][-1] <= grid["sizes"][0]
    assert len(small["sizes"]) > len(wide["sizes"])
    page.set_viewport_size({"width": 1440, "height": 900})

    # Everything finishes: nothing in flight, the card shows the last task.
    done = []
    for tid in IDS[:N]:
        if tid != "t21":
            done += finish(s, tid)
    done.append(s(ev.DatasetFinished, model=MODEL, dataset=DATASET))
    done.append(s(ev.ModelFinished, model=MODEL))
    done.append(s(ev.RunFinished, status="finished"))
    server.post(done)
    expect(which).to_have_text("· last task")
    expect(page.locator("#pills-tasks .dot.halo")).to_have_count(0)
    assert page.errors == []
    page.context.close()


def test_one_slot_keeps_the_page_as_before(server, browser):
    page = open_monitor(browser, server.url, viewport={"width": 1440, "height": 900})
    s = Script("run-conc-1")
    server.post(start(s, 1) + in_flight(s, "t01"))
    expect(page.locator("#stream-which")).to_have_text("· t01")
    expect(page.locator("#card-task [data-k='which']")).to_have_text("(current task)")
    expect(page.locator("#now-strip")).to_be_hidden()
    expect(page.locator(".chart-box[data-chart='tps'] .chart-title")).to_have_text("TPS (tokens/s)")
    expect(page.locator("#pills-tasks .dot.halo")).to_have_count(1)
    assert page.locator("#pills-tasks [data-id='t01']").evaluate(
        "e => getComputedStyle(e, '::after').animationName") == "halo"  # one halo: pulsing as before
    server.post([s(ev.RunFinished, status="finished")])
    page.context.close()
