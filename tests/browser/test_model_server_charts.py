"""The model server's charts on the monitor, end to end: a real server scrapes a STAND-IN vLLM /metrics
(tests/standins/vllm_metrics.py, vLLM's documented names through prometheus_client; no vLLM can run here) while
the run's model with that metrics_url is active. Hidden when no model has a metrics_url; toggleable like the
six; a failing scrape shows unavailable with the reason."""
from __future__ import annotations

import threading

from playwright.sync_api import expect

from benchwatch import events as ev
from tests.standins.vllm_metrics import VllmMetricsStandin

from .harness import Script, open_monitor

SERIES = "k => echarts.getInstanceByDom(document.querySelector(`.chart-box[data-chart='${k}'] .chart`))" \
         ".getOption().series.map(s => s.data)"


def start_run(server, run_id: str, metrics_url: str | None) -> Script:
    s = Script(run_id)
    model = {"name": "qwen", "backend": "openai", **({"metrics_url": metrics_url} if metrics_url else {})}
    server.post([s(ev.RunStarted, models=[ev.PlanModel(name="qwen", backend="openai")],
                   datasets=[ev.PlanDataset(name="facts", evaluator="contains", task_ids=["a1", "a2"])],
                   config={"models": [model]}),
                 s(ev.ModelStarted, model="qwen", backend="openai", ordinal=1, total=1)])
    return s


def test_model_server_charts_follow_the_scrape(server, browser, shots):
    vllm = VllmMetricsStandin().start()
    stop = threading.Event()
    try:
        page = open_monitor(browser, server.url)
        group = page.locator("#server-chart-toggles")
        plain = start_run(server, "run-plain", None)
        expect(page.locator("#run-chip")).to_have_text("Run run-plain · running")
        expect(group).to_be_hidden()  # no model has a metrics_url: no extra charts
        assert page.locator(".server-chart:visible").count() == 0
        assert page.locator("#chart-toggles button").count() == 6
        server.post([plain(ev.RunFinished, status="finished")])

        vllm.running.set(2)
        vllm.waiting.set(5)
        vllm.kv_cache.set(0.375)

        def traffic():
            while not stop.wait(0.25):
                vllm.answer(0.05, [0.02, 0.02])
        threading.Thread(target=traffic, daemon=True).start()
        s = start_run(server, "run-vllm", vllm.url)
        expect(group).to_be_visible()
        assert group.locator("button").all_inner_texts() == ["Requests", "KV cache", "Server TTFT / ITL"]
        kv = page.locator(".chart-box[data-chart='ms_kv']")
        expect(kv.locator(".chart-value")).to_have_text("37.5", timeout=15000)
        expect(page.locator(".chart-box[data-chart='ms_queue'] .chart-value")).to_have_text("2 / 5")
        # The server's TTFT and ITL: per-interval means of its histograms, drawn in ms.
        page.wait_for_function(f"({SERIES})('ms_latency')[0].filter(p => p[1] !== null).length >= 5", timeout=20000)
        ttft, itl = page.evaluate(f"({SERIES})('ms_latency')")
        assert {round(p[1], 3) for p in ttft if p[1] is not None} == {50.0}
        assert {round(p[1], 3) for p in itl if p[1] is not None} == {20.0}
        page.screenshot(path=str(shots / "model-server-charts.png"), full_page=True)

        # Toggle like the six: hidden, remembered, shown again.
        btn = group.locator("[data-chart='ms_kv']")
        btn.click()
        expect(kv).to_be_hidden()
        expect(btn).to_have_attribute("aria-pressed", "false")
        page.reload()
        page.wait_for_selector("body[data-rendered='1']")
        expect(page.locator(".chart-box[data-chart='ms_kv']")).to_be_hidden()
        expect(page.locator(".chart-box[data-chart='ms_queue']")).to_be_visible()
        page.locator("#server-chart-toggles [data-chart='ms_kv']").click()
        expect(page.locator(".chart-box[data-chart='ms_kv']")).to_be_visible()

        # The model server fails: unavailable, with the reason, over every server chart.
        vllm.fail_with = 500
        queue = page.locator(".chart-box[data-chart='ms_queue']")
        expect(queue).to_have_class("chart-box server-chart is-unavailable", timeout=15000)
        why = f"scrape of {vllm.url} failed: HTTP 500 Internal Server Error"
        assert queue.get_attribute("data-reason") == why
        assert queue.evaluate("b => getComputedStyle(b, '::after').content") == f'"unavailable: {why}"'
        expect(queue.locator(".chart-value")).to_have_text("n/a")
        page.screenshot(path=str(shots / "model-server-unavailable.png"), full_page=True)
        vllm.fail_with = None
        expect(queue).to_have_class("chart-box server-chart", timeout=15000)
        server.post([s(ev.RunFinished, status="finished")])
        assert page.errors == []
    finally:
        stop.set()
        vllm.stop()
