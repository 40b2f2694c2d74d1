"""The report file in headless Chromium with the network cut off: it draws its charts, filters its task list,
and shows hostile model output as text. Screenshots go to artifacts/screenshots/ (git-ignored) to be looked at."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchwatch.report import render_compare, render_report
from benchwatch.report.data import METRICS as REPORT_METRICS
from tests.conftest import ROOT
from tests.report_runs import EVIL_RESPONSE, EVIL_TASK_ID, MODEL_GOOD, make_run

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    store, run_id = make_run(tmp)
    path = tmp / "report.html"
    path.write_text(render_report(store, run_id), encoding="utf-8")
    return path, store, run_id


def open_offline(browser, path: Path, **context_args):
    """A page with every non-file request aborted and recorded, CSP violations and script errors recorded."""
    ctx = browser.new_context(**context_args)
    page = ctx.new_page()
    attempted: list[str] = []
    errors: list[str] = []

    def block(route):
        attempted.append(route.request.url)
        route.abort()
    page.route(lambda url: not url.startswith("file:"), block)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-charts]", timeout=15000)
    return ctx, page, attempted, errors


def canvas_ink(page, selector: str) -> int:
    """How many pixels of the chart's canvas differ from its first pixel: 0 means nothing was drawn."""
    return page.eval_on_selector(selector, """el => {
        const c = el.querySelector('canvas'); if (!c) return -1;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (d[i] !== d[0] || d[i+1] !== d[1] || d[i+2] !== d[2] || d[i+3] !== d[3]) n++;
        return n; }""")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_report_draws_offline(browser, report_file, scheme):
    path, _, run_id = report_file
    ctx, page, attempted, errors = open_offline(browser, path, color_scheme=scheme,
                                                viewport={"width": 1280, "height": 900})
    try:
        assert attempted == [] and errors == []
        # one distribution per timing metric (TTFT, tokens/s, latency, ITL, TPOT) and the telemetry
        assert page.get_attribute("body", "data-charts") == str(len(REPORT_METRICS) + 1)
        for chart in ("#chart-ttft_ms", "#chart-tokens_per_s", "#chart-latency_ms", "#chart-telemetry"):
            assert canvas_ink(page, chart) > 2000, chart
        # Hostile output is shown as text and ran nothing.
        assert page.evaluate("window.pwned") is None
        page.select_option("#f-dataset", "odd")
        page.select_option("#f-model", "good")
        page.click("#problem-list details.task:not(.hidden) >> nth=0")
        shown = page.inner_text("#problem-list details.task:not(.hidden) pre.response")
        assert EVIL_RESPONSE in shown
        assert EVIL_TASK_ID in page.inner_text("#problem-list")
        page.select_option("#f-dataset", "")
        page.select_option("#f-model", "")
        # The task-start marker's tooltip names the task, as text.
        page.evaluate("""() => {
            const c = echarts.getInstanceByDom(document.getElementById('chart-telemetry'));
            const series = c.getOption().series;
            const s = series.findIndex(x => x.name === 'task started · FAIL');
            const i = series[s].data.findIndex(d => d && d.name && d.name.includes('pwned=3'));
            c.dispatchAction({type: 'showTip', seriesIndex: s, dataIndex: i});
        }""")
        page.wait_for_function("document.getElementById('chart-telemetry').innerText.includes('window.pwned=3')")
        assert EVIL_TASK_ID in page.inner_text("#chart-telemetry") and page.evaluate("window.pwned") is None
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"report-{scheme}.png"), full_page=True)
        page.locator("#telemetry").screenshot(path=str(SHOTS / f"report-{scheme}-telemetry.png"))
    finally:
        ctx.close()


def test_report_filters_failed_tasks(browser, report_file):
    path, store, run_id = report_file
    rows = store.results(run_id)
    ctx, page, attempted, _ = open_offline(browser, path)
    try:
        visible = lambda: page.eval_on_selector_all(  # noqa: E731
            "#problem-list details.task:not(.hidden)",
            "els => els.map(e => [e.dataset.model, e.dataset.dataset, e.dataset.verdict, e.dataset.final])")
        final_problems = [r for r in rows if r["final"] and r["verdict"] != "PASS"]
        assert len(visible()) == len(final_problems)
        page.select_option("#f-model", "flaky")
        page.select_option("#f-verdict", "ERROR")
        want = [r for r in final_problems if r["model"] == "flaky" and r["verdict"] == "ERROR"]
        assert len(want) == 1 and len(visible()) == 1
        page.check("#f-retried")  # the retried ERROR attempt joins the final one
        assert len(visible()) == len([r for r in rows if r["model"] == "flaky" and r["verdict"] == "ERROR"]) == 2
        page.select_option("#f-model", "good")
        page.select_option("#f-verdict", "FAIL")
        page.select_option("#f-dataset", "arith")
        want = [r for r in final_problems if r["model"] == "good" and r["verdict"] == "FAIL" and r["dataset"] == "arith"]
        assert {tuple(v[:3]) for v in visible()} == {("good", "arith", "FAIL")} and len(visible()) == len(want)
        assert page.inner_text("#f-count") == f"{len(want)} of {page.locator('#problem-list details.task').count()} shown"
        assert attempted == []
    finally:
        ctx.close()


def test_report_on_a_phone(browser, report_file):
    path, _, _ = report_file
    ctx, page, attempted, errors = open_offline(browser, path, viewport={"width": 390, "height": 844},
                                                device_scale_factor=2, is_mobile=True, color_scheme="dark")
    try:
        assert attempted == [] and errors == []
        # Nothing but the scrollable tables may be wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert canvas_ink(page, "#chart-telemetry") > 2000
        page.screenshot(path=str(SHOTS / "report-phone.png"), full_page=True)
    finally:
        ctx.close()


def test_compare_page_offline(browser, tmp_path):
    store, a = make_run(tmp_path, telemetry=False)
    fixed = {**MODEL_GOOD, "options": {**MODEL_GOOD["options"],
                                       "answers": {**MODEL_GOOD["options"]["answers"], "3 times 10": "30"}}}
    _, b = make_run(tmp_path, models=[fixed, {"name": "flaky", "backend": "scripted", "options": {"answers": {"*": "30"}}}],
                    telemetry=False)
    path = tmp_path / "compare.html"
    path.write_text(render_compare(store, a, b), encoding="utf-8")
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    attempted: list[str] = []
    page.route(lambda url: not url.startswith("file:"), lambda route: (attempted.append(route.request.url), route.abort()))
    try:
        page.goto(path.as_uri())
        flips = page.eval_on_selector_all("#flip-list details.flip", "els => els.map(e => e.dataset.task)")
        assert "arith-03" in flips and attempted == []
        page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
    finally:
        ctx.close()


def test_runs_page_served_links_to_reports(browser, tmp_path):
    from tests.integration.live_server import LiveServer
    store, a = make_run(tmp_path)
    live = store.create_run({"models": [{"name": "good"}], "datasets": [{"name": "arith"}]}, None)
    srv = LiveServer(tmp_path, store=f"sqlite:///{tmp_path / 'bench.db'}")
    ctx = browser.new_context(viewport={"width": 1280, "height": 700})
    page = ctx.new_page()
    outside: list[str] = []
    page.route(lambda url: not url.startswith(srv.url), lambda route: (outside.append(route.request.url), route.abort()))
    try:
        page.goto(srv.url + "/runs")
        assert page.locator("table.runs tbody tr").count() == 2
        assert page.locator(f'tr[data-run="{live}"] a.live').get_attribute("href") == "/docs/benchmark_monitor.html"
        assert page.locator(f'tr[data-run="{a}"] a.live').count() == 0
        page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)
        page.click(f'a[href="/reports/{a}"]')
        page.wait_for_selector("body[data-charts]", timeout=15000)
        assert page.get_attribute("body", "data-charts") == str(len(REPORT_METRICS) + 1) and canvas_ink(page, "#chart-telemetry") > 2000
        assert outside == []
    finally:
        ctx.close()
        srv.stop()
