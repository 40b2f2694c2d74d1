"""The monitor against a real server fed a scripted run through the real ingest endpoint: every section of the
spec checked by what the DOM shows."""
from __future__ import annotations

import re
import threading
import time

from playwright.sync_api import expect

from benchwatch import events as ev

from . import scripted_run as sr
from .harness import Script, no_sideways_scroll, open_monitor

# The palette of monitor.css (light theme): what "grey / amber / green / red" means on screen.
GREY, AMBER, GREEN, RED = "rgb(185, 191, 199)", "rgb(240, 164, 0)", "rgb(46, 157, 79)", "rgb(214, 69, 61)"


def bg(locator) -> str:
    return locator.evaluate("e => getComputedStyle(e).backgroundColor")


def text(page, sel: str):
    return page.locator(sel)


def card(page, card_id: str, key: str):
    return page.locator(f"#{card_id} [data-k='{key}']")


def test_a_scripted_run_fills_the_page_live(server, browser, shots):
    page = open_monitor(browser, server.url)
    expect(page.locator("#waiting-banner")).to_be_visible()
    expect(page.locator("#waiting-banner")).to_have_text("Waiting for benchmark events…")

    s = Script("run-live")
    server.post(sr.run_start(s))
    server.post(sr.first_task_streaming(s))

    # The run fills in without a reload.
    expect(page.locator("#waiting-banner")).to_be_hidden()
    expect(page.locator("#run-chip")).to_have_text("Run run-live · running")
    expect(page.locator("#report-link")).to_have_attribute("href", "/reports/run-live")
    # Models: ordinal and status, running in amber.
    m1 = page.locator("#pills-models .pill").nth(0)
    expect(m1).to_contain_text("1/2")
    expect(m1).to_contain_text("smollm2-135m")
    expect(m1).to_contain_text("running")
    assert bg(m1) == AMBER
    expect(page.locator("#pills-models .pill").nth(1)).to_contain_text("2/2")
    # Tasks: a1 amber with the halo (LLM call active), a2/a3 grey; hover text names id and status.
    a1 = page.locator("#pills-tasks [data-id='a1']")
    expect(a1).to_have_class(re.compile(r"\bhalo\b"))
    assert bg(a1) == AMBER and bg(page.locator("#pills-tasks [data-id='a2']")) == GREY
    assert a1.evaluate("e => getComputedStyle(e, '::after').animationName") == "halo"  # pulsing
    expect(a1).to_have_attribute("title", "a1 · running")
    # Streaming details: passed stages show their elapsed time; Status is the stage in upper case.
    expect(page.locator("[data-stage='cooling'] .stage-time")).to_have_text("0.50 s")
    expect(page.locator("[data-stage='thinking'] .stage-time")).to_have_text("0.75 s")
    expect(page.locator("[data-stage='streaming']")).to_have_attribute("data-phase", "active")
    expect(page.locator("[data-stage='evaluating'] .stage-time")).to_have_text("–")
    expect(page.locator("#panel-status")).to_have_text("STREAMING")
    assert page.locator("#panel-prompt").text_content() == sr.SYSTEM_PROMPT  # exactly as sent
    # Thinking is shown apart from the visible answer; the hostile answer is text, and nothing ran.
    expect(page.locator("#response-thinking")).to_have_text("The user wants 2+2. That is 4.")
    expect(page.locator("#response-visible")).to_have_text(sr.HOSTILE)
    assert page.locator("#panel-response img, #panel-response script").count() == 0
    assert page.evaluate("window.__pwned") is None
    # Token by token: the answer grows as deltas arrive.
    t = dict(model=sr.MODELS[0][0], dataset=sr.D1[0], task_id="a1")
    for piece in [" is", " the", " answer"]:
        server.post([s.task(ev.TokenDelta, kind="visible", text=piece, n_tokens=1, tps=41.0, **t)])
    expect(page.locator("#response-visible")).to_have_text(sr.HOSTILE + " is the answer")
    # KPI cards.
    expect(card(page, "card-server", "active_model")).to_have_text("smollm2-135m")
    expect(card(page, "card-server", "connection")).to_have_text("connected")
    expect(card(page, "card-progress", "model_pos")).to_have_text("1/2 · smollm2-135m")
    expect(card(page, "card-progress", "dataset_pos")).to_have_text("1/2 · arithmetic")
    expect(card(page, "card-progress", "task_pos")).to_have_text("1/3 · a1")
    expect(card(page, "card-progress", "remaining")).to_have_text("10")
    expect(card(page, "card-task", "which")).to_have_text("(current task)")
    expect(card(page, "card-task", "attempt")).to_have_text("1")
    expect(card(page, "card-task", "status_label")).to_have_text("STREAMING")
    expect(card(page, "card-task", "ttft")).to_have_text("750 ms")
    expect(card(page, "card-task", "tps")).to_have_text("41.0 tok/s")
    page.screenshot(path=str(shots / "running.png"), full_page=True)

    # A reload mid-run restores the whole picture from the snapshot.
    page.reload()
    page.wait_for_selector("body[data-rendered='1']")
    expect(page.locator("#response-visible")).to_have_text(sr.HOSTILE + " is the answer")
    expect(page.locator("[data-stage='thinking'] .stage-time")).to_have_text("0.75 s")
    expect(page.locator("#pills-tasks [data-id='a1']")).to_have_class(re.compile(r"\bhalo\b"))
    expect(card(page, "card-progress", "task_pos")).to_have_text("1/3 · a1")
    assert page.evaluate("window.__pwned") is None

    # Evaluated: green, halo gone, Result shows verdict and detail, every stage timed.
    server.post(sr.first_task_finished(s))
    a1 = page.locator("#pills-tasks [data-id='a1']")
    expect(a1).to_have_attribute("data-status", "pass")
    expect(a1).not_to_have_class(re.compile(r"\bhalo\b"))
    assert bg(a1) == GREEN
    expect(a1).to_have_attribute("title", "a1 · pass · PASS")
    expect(page.locator("#panel-result .verdict")).to_have_text("PASS")
    result = page.locator("#panel-result dl").inner_text()
    assert "expected" in result and "actual" in result and "score" in result
    for stage, elapsed in [("cooling", "0.50 s"), ("thinking", "0.75 s"), ("streaming", "0.50 s"),
                           ("evaluating", "0.05 s"), ("done", "0.00 s")]:
        expect(page.locator(f"[data-stage='{stage}'] .stage-time")).to_have_text(elapsed)
        expect(page.locator(f"[data-stage='{stage}']")).to_have_attribute("data-phase", "passed")
    expect(card(page, "card-task", "latency")).to_have_text("1300 ms")
    expect(card(page, "card-task", "status_label")).to_have_text("PASS")

    # FAIL and ERROR are red; a finished dataset with an ERROR says so in the error colour, not a pass's green;
    # live OK/KO/OTHER %.
    server.post(sr.rest_of_first_dataset(s))
    expect(page.locator("#pills-tasks [data-id='a3']")).to_have_attribute("data-status", "error")
    assert bg(page.locator("#pills-tasks [data-id='a2']")) == RED
    assert bg(page.locator("#pills-tasks [data-id='a3']")) == RED
    expect(page.locator("#pills-tasks [data-id='a2']")).to_have_attribute("title", "a2 · fail · FAIL")
    expect(page.locator("#pills-tasks [data-id='a3']")).to_have_attribute("title", "a3 · error · ERROR")
    ds = page.locator("#pills-datasets .pill[data-name='arithmetic']")
    expect(ds).to_have_attribute("data-status", "done")
    expect(ds).to_contain_text("done, 1 error")
    assert bg(ds) == "rgb(168, 42, 138)"  # --error
    assert bg(page.locator("#pills-datasets .pill[data-name='facts']")) != GREEN
    expect(card(page, "card-progress", "done")).to_have_text("3/10")
    expect(card(page, "card-progress", "ok_pct")).to_have_text("33.3 %")
    expect(card(page, "card-progress", "ko_pct")).to_have_text("33.3 %")
    expect(card(page, "card-progress", "other_pct")).to_have_text("33.3 %")
    expect(card(page, "card-progress", "remaining")).to_have_text("7")
    expect(page.locator("#panel-result dl")).to_contain_text("backend timed out")

    # The run ends: the last task stays on screen, labelled so.
    server.post(sr.run_end(s))
    expect(page.locator("#run-chip")).to_have_text("Run run-live · finished")
    expect(card(page, "card-task", "which")).to_have_text("(last task)")
    expect(page.locator("#stream-which")).to_have_text("· last task")
    page.screenshot(path=str(shots / "finished.png"), full_page=True)
    assert page.errors == []


def test_charts_toggle_and_scroll_a_60_sample_window(server, browser):
    page = open_monitor(browser, server.url)
    # Six charts, each with its toggle button above the grid.
    assert page.locator("#chart-toggles button").all_inner_texts() == ["TPS", "FD", "CPU", "Disk", "GPU", "Temp"]
    assert page.locator("#charts .chart-box canvas").count() == 6
    tps_btn, tps_box = page.locator("#chart-toggles [data-chart='tps']"), page.locator(".chart-box[data-chart='tps']")
    tps_btn.click()
    expect(tps_box).to_be_hidden()
    expect(tps_btn).to_have_attribute("aria-pressed", "false")
    tps_btn.click()
    expect(tps_box).to_be_visible()
    expect(tps_btn).to_have_attribute("aria-pressed", "true")

    # Feed 70 samples through the ingest endpoint: the charts hold the last 60; an unavailable GPU shows as such.
    s = Script("telemetry-only")
    now = time.time()
    reason = "NVML: driver not loaded (test sample)"
    server.post([s(ev.Telemetry, ts=now - 70 + i, cpu_pct=float(i % 100), fds=20 + i, disk_mbps=1.0, tps=10.0,
                   gpu_pct=None, gpu_temp_c=None, unavailable={"gpu_pct": reason, "gpu_temp_c": reason})
                 for i in range(70)])
    series = "k => echarts.getInstanceByDom(document.querySelector(`.chart-box[data-chart='${k}'] .chart`))" \
             ".getOption().series[0].data"
    page.wait_for_function(f"({series})('fds').some(p => p[1] === 89)")
    # The server's own sampler keeps adding samples: the window is 60 wherever it stands.
    assert page.evaluate(f"({series})('fds').length") == 60
    gpu_box = page.locator(".chart-box[data-chart='gpu_pct']")
    # Unavailable is said, with the reason, never drawn as zero. (The real sampler may report a real
    # reason of its own a second later: compare with what the server says.)
    badge = gpu_box.locator(".chart-unavailable")
    expect(badge).to_be_visible()
    assert badge.get_attribute("title")
    # The reason is also written across the chart itself (no hover on a touch screen).
    overlay = gpu_box.evaluate("b => getComputedStyle(b, '::after').content")
    assert overlay == f'"unavailable: {gpu_box.get_attribute("data-reason")}"' and "NVML" in overlay
    assert all(p[1] is None for p in page.evaluate(f"({series})('gpu_pct')"))
    # CPU colour bands: green < 20, blue 20-50, yellow 50-70, red > 70.
    pieces = page.evaluate("echarts.getInstanceByDom(document.querySelector(\".chart-box[data-chart='cpu_pct'] .chart\"))"
                           ".getOption().visualMap[0].pieces")
    assert [(p.get("lte"), p["color"]) for p in pieces] == [
        (20, "#2e9d4f"), (50, "#2f7fd8"), (70, "#e0b000"), (None, "#d6453d")]
    assert page.errors == []


def test_server_status_shows_gpu_temperature_and_thermal_class(server, browser):
    """Thresholds are the config's (70 / 85 °C by default). This machine has no GPU, so the server's own 1 Hz
    sampler says "unavailable": samples with a temperature are posted every 100 ms meanwhile."""
    page = open_monitor(browser, server.url)
    s = Script("thermal")
    for temp, cls in ((90.0, "hot"), (75.0, "warm"), (40.0, "cool")):
        stop = threading.Event()

        def feed() -> None:
            while not stop.is_set():
                server.post([s(ev.Telemetry, gpu_temp_c=temp, gpu_pct=50.0)])
                time.sleep(0.1)
        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            expect(card(page, "card-server", "thermal")).to_have_text(cls)
            expect(card(page, "card-server", "gpu_temp")).to_have_text(f"{temp:.0f} °C")
        finally:
            stop.set()
            feeder.join(5)


def test_phone_and_4k_widths_do_not_scroll_sideways(server, browser, shots):
    page = open_monitor(browser, server.url, viewport={"width": 390, "height": 844})
    expect(page.locator("#pills-tasks [data-id='a1']")).to_be_visible()
    assert no_sideways_scroll(page)
    page.screenshot(path=str(shots / "phone-390.png"))
    page.locator("#h-dash").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "phone-390-cards.png"))
    page = open_monitor(browser, server.url, viewport={"width": 3840, "height": 2160})
    assert no_sideways_scroll(page)


def test_dark_theme_follows_the_system(server, browser, shots):
    page = open_monitor(browser, server.url, color_scheme="dark")
    assert bg(page.locator("body")) == "rgb(15, 18, 22)"
    assert bg(page.locator("#pills-tasks [data-id='a1']")) == "rgb(63, 191, 102)"  # dark-theme green
    page.screenshot(path=str(shots / "dark.png"), full_page=True)
