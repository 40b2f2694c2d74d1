"""The report's model-server chart in headless Chromium (offline): drawn, on the same time axis as the telemetry
chart, with the client's first-token dots, the TTFT comparison table, and the scrape failures said. The run is
made by the real runner (scripted stand-in backend); its model-server samples are stored as the server's sampler
stores them (a vLLM server's per-interval means, and two failed scrapes)."""
from __future__ import annotations

import math

import pytest

from benchwatch.report import render_report
from tests.browser.test_report_browser import SHOTS, browser, canvas_ink, open_offline  # noqa: F401 - fixture
from tests.report_runs import make_run

pytestmark = pytest.mark.slow
# The reason phrase comes from the model server: hostile text must stay text.
WHY = 'scrape of http://gpu-box:8000/metrics failed: HTTP 503 <img src=x onerror="window.pwned=9">'



def add_model_server_samples(store, run_id: str, n: int = 40) -> None:
    run = store.get_run(run_id)
    t0, t1 = run["created_at"], run["finished_at"]
    rows = []
    for i in range(n):
        failed = i in (20, 21)
        ms = {"model": "good", "kind": "vllm", "running": None if failed else 1 + i % 3,
              "waiting": None if failed else i % 4, "kv_cache_pct": None if failed else 20 + 15 * math.sin(i / 6),
              "ttft_s": None if failed or i == 0 else 0.002 + 0.0005 * (i % 5), "ttft_n": None if failed or i == 0 else 2,
              "itl_s": None if failed or i == 0 else 0.001, "itl_n": None if failed or i == 0 else 30,
              "unavailable": {k: WHY for k in ("running", "waiting", "kv_cache_pct", "ttft_s", "itl_s")} if failed
              else {}}
        if failed:
            ms["error"] = WHY
        rows.append({"run_id": run_id, "ts": t0 + (t1 - t0) * i / (n - 1), "cpu_pct": 30.0, "fds": 20,
                     "disk_mbps": 0.1, "tps": 10.0, "gpu_pct": None, "gpu_temp_c": None, "unavailable": {},
                     "model_server": ms})
    store.add_telemetry(rows)


def test_report_draws_the_model_server_on_the_run_time_axis(browser, tmp_path):  # noqa: F811
    store, run_id = make_run(tmp_path, telemetry=False)
    add_model_server_samples(store, run_id)
    path = tmp_path / "report.html"
    path.write_text(render_report(store, run_id), encoding="utf-8")
    ctx, page, attempted, errors = open_offline(browser, path, viewport={"width": 1300, "height": 900})
    try:
        assert attempted == [] and errors == []
        assert canvas_ink(page, "#chart-model-server") > 2000
        axes = page.evaluate("""() => ['chart-telemetry', 'chart-model-server'].map(id => {
            const o = echarts.getInstanceByDom(document.getElementById(id)).getOption();
            return o.xAxis.map(a => [a.min, a.max]); })""")
        assert axes[0] == axes[1], "the model server's chart is not on the telemetry chart's time axis"
        names = page.evaluate("echarts.getInstanceByDom(document.getElementById('chart-model-server'))"
                              ".getOption().series.map(s => s.name)")
        assert names == ["Requests running", "Requests waiting", "KV cache", "Server TTFT", "Server ITL",
                         "Client first token"]
        row = page.locator("table.ttft-compare tbody tr")
        assert row.count() == 1 and row.locator("td").nth(0).inner_text() == "good"
        assert page.locator("#model-server ~ ul.unavailable li").inner_text() == f"unavailable in 2 scrape(s): {WHY}"
        assert page.evaluate("window.pwned") is None
        page.locator("#model-server").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "report-model-server.png"), full_page=True)
    finally:
        ctx.close()
