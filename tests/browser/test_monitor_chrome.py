"""The page with no run active, its chrome (header toggle, keyboard), a missing ECharts asset, and reconnecting
after a server restart. Real server, real Chromium."""
from __future__ import annotations

from playwright.sync_api import expect

from . import scripted_run as sr
from .harness import Script, open_monitor

CARD_FIELDS = "#card-server dd:not([data-k='gpu_temp']), #card-progress dd, #card-task dd"


def test_no_run_shows_dashes_empty_grids_and_the_waiting_banner(server, browser, shots):
    page = open_monitor(browser, server.url)
    banner = page.locator("#waiting-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_text("Waiting for benchmark events…")
    assert banner.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 243, 191)"  # yellow
    assert set(page.locator(CARD_FIELDS).all_inner_texts()) == {"–"}
    for grid in ("models", "datasets", "tasks"):
        assert page.locator(f"#pills-{grid} > *").count() == 0
    for panel in ("#panel-status", "#panel-prompt", "#response-visible", "#panel-result"):
        expect(page.locator(panel)).to_have_text("–")
    expect(page.locator("#conn-chip")).to_have_text("Live")
    page.screenshot(path=str(shots / "waiting.png"), full_page=True)
    assert page.errors == []


def test_hide_header_persists_across_reload(server, browser, shots):
    page = open_monitor(browser, server.url)
    header, btn = page.locator("#site-header"), page.locator("#toggle-header")
    expect(header).to_be_visible()
    btn.click()
    expect(header).to_be_hidden()
    expect(btn).to_have_text("Show header")
    page.reload()
    page.wait_for_selector("body[data-rendered='1']")
    expect(header).to_be_hidden()
    page.screenshot(path=str(shots / "header-hidden.png"))
    btn.click()
    page.reload()
    page.wait_for_selector("body[data-rendered='1']")
    expect(header).to_be_visible()


def test_toggles_are_reachable_by_keyboard_with_visible_focus(server, browser):
    page = open_monitor(browser, server.url)
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "toggle-header":
            break
    assert page.evaluate("document.activeElement.id") == "toggle-header"
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    expect(page.locator("#site-header")).to_be_hidden()
    # The grid toggles follow in tab order, each operable with the keyboard.
    grid_btn = page.locator("[data-grid='tasks']")
    grid_btn.focus()
    page.keyboard.press("Space")
    expect(page.locator("#grid-tasks")).to_be_hidden()
    expect(grid_btn).to_have_attribute("aria-pressed", "false")


def test_missing_echarts_says_so_and_names_the_fix(server, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.route("**/js/vendor/echarts.min.js", lambda route: route.fulfill(status=404, body="not found"))
    page.goto(server.url + "/docs/benchmark_monitor.html")
    page.wait_for_selector("body[data-rendered='1']")
    missing = page.locator("#echarts-missing")
    expect(missing).to_be_visible()
    expect(missing).to_contain_text("scripts/init.sh")
    assert page.locator("#charts canvas").count() == 0
    ctx.close()


def test_reconnects_by_itself_after_a_server_restart(server, browser):
    page = open_monitor(browser, server.url)
    s = Script("run-before-restart")
    server.post(sr.run_start(s))
    expect(page.locator("#run-chip")).to_have_text("Run run-before-restart · running")
    server.restart()  # same port; this run was never in the store, so the new server starts empty
    expect(page.locator("#waiting-banner")).to_be_visible(timeout=20000)
    s2 = Script("run-after-restart")
    server.post(sr.run_start(s2))
    expect(page.locator("#run-chip")).to_have_text("Run run-after-restart · running", timeout=10000)
    expect(page.locator("#pills-models .pill")).to_have_count(2)
    expect(page.locator("#conn-chip")).to_have_text("Live")


def test_patch_js_is_the_twin_of_patch_py(server, browser):
    """The page's applyOps turns the snapshot into the same state the Python reducer reaches, op for op."""
    from benchwatch.patch import apply_ops, diff
    from benchwatch.state import apply, initial_state

    s = Script("twin")
    events = (sr.run_start(s) + sr.first_task_streaming(s) + sr.first_task_finished(s) + sr.rest_of_first_dataset(s)
              + sr.run_end(s))
    state, patches = initial_state(), []
    for e in events:
        new = apply(state, e)
        patches.append(json_copy(diff(state, new)))  # as on the wire (and no aliasing into the reducer's state)
        state = new
    # apply_ops puts the ops' values into the state it mutates: give it its own copy of the patches.
    expected = apply_ops(json_copy(initial_state()), [op for ops in json_copy(patches) for op in ops])
    assert expected == json_copy(state)
    page = open_monitor(browser, server.url)
    got = page.evaluate("""async ([start, patches]) => {
        const { applyOps } = await import('/js/patch.js');
        let st = start;
        for (const ops of patches) st = applyOps(st, ops);
        return st; }""", [json_copy(initial_state()), json_copy(patches)])
    assert got == json_copy(state)


def json_copy(value):
    import json
    return json.loads(json.dumps(value))
