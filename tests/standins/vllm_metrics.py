"""A STAND-IN for a vLLM server's `/metrics` (no vLLM can run here: it needs a GPU). It serves vLLM's documented
metric names (docs "Production Metrics": vllm:num_requests_running, vllm:num_requests_waiting,
vllm:kv_cache_usage_perc, the histograms vllm:time_to_first_token_seconds and vllm:inter_token_latency_seconds,
labelled by model_name) through prometheus_client, the library vLLM itself exposes them with. The test drives the
figures, and can make the endpoint fail (HTTP 500, or stop listening) and come back, mid-run."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LABEL = {"model_name": "Qwen/Qwen2.5-0.5B-Instruct"}


class VllmMetricsStandin:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.running = Gauge("vllm:num_requests_running", "Requests in model execution batches.",
                             list(LABEL), registry=r).labels(**LABEL)
        self.waiting = Gauge("vllm:num_requests_waiting", "Requests waiting to be processed.",
                             list(LABEL), registry=r).labels(**LABEL)
        self.kv_cache = Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
                              list(LABEL), registry=r).labels(**LABEL)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                              list(LABEL), registry=r,
                              buckets=(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1.0)
                              ).labels(**LABEL)
        self.itl = Histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                             list(LABEL), registry=r,
                             buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)).labels(**LABEL)
        self.fail_with: int | None = None  # answer this HTTP status instead of the metrics
        self.scrapes = 0
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> "VllmMetricsStandin":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                standin.scrapes += 1
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                if standin.fail_with is not None:
                    self.send_error(standin.fail_with, explain="stand-in failing on purpose")
                    return
                body = generate_latest(standin.registry)
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are then refused); start() again serves on the same port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, ttft_s: float, itl_s: list[float]) -> None:
        """One request served: its TTFT and inter-token latencies go into the histograms."""
        self.ttft.observe(ttft_s)
        for x in itl_s:
            self.itl.observe(x)
