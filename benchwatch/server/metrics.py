"""`GET /metrics`: benchwatch's figures in the Prometheus text format, through prometheus_client.

Where each figure comes from (docs/metrics.md has the table and the OpenTelemetry GenAI mapping):
- verdicts and the latency / token histograms: the store, aggregated at scrape time. The store is the truth and
  every server worker reads the same one, so every worker answers the same totals: a scrape through gunicorn's
  shared port may reach any worker and nothing is counted twice or lost when a worker restarts (a counter that
  each worker kept from the events it folded would differ between workers and look like resets to Prometheus).
  Counting rules are the report's (report/data.py): final attempts; timings from final PASS/FAIL attempts.
- host telemetry, tasks in flight, the run: the live state, which every worker folds from the same event stream.
  A host figure that can't be read (or whose sample is stale) is absent, not 0.
- SSE clients: each worker holds its own streams; with a Redis bus each posts its count there every 2 s and a
  scrape sums them (ClientCounts).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, Iterable

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import and_, case, func, select
from sqlalchemy.exc import SQLAlchemyError

from ..report.data import VERDICTS
from ..store import Store
from ..store import results as results_table

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TOKEN_BUCKETS = (1, 4, 16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# histogram name -> (results column, scale to the base unit, buckets, help)
HISTOGRAMS = {
    "benchwatch_ttft_seconds": ("ttft_ms", 1e-3, LATENCY_BUCKETS,
                                "Time to the first visible token (the spec's TTFT), from the request being sent."),
    "benchwatch_first_token_seconds": ("first_token_ms", 1e-3, LATENCY_BUCKETS,
                                       "Time to the first token of any kind (thinking included)."),
    "benchwatch_e2e_latency_seconds": ("latency_ms", 1e-3, LATENCY_BUCKETS,
                                       "End-to-end latency of an attempt, from the request to the verdict."),
    "benchwatch_output_tokens": ("completion_tokens", 1.0, TOKEN_BUCKETS,
                                 "Output tokens per answer, as the backend reported them."),
    "benchwatch_itl_seconds": ("itl_ms", 1e-3, ITL_BUCKETS,
                               "Mean inter-token latency of an answer, (t_last - t_first) / (n - 1) "
                               "(loadmetrics.py)."),
}
HOST_GAUGES = {  # metric -> (telemetry field, help)
    "benchwatch_host_cpu_percent": ("cpu_pct", "Host CPU load, percent."),
    "benchwatch_server_open_fds": ("fds", "Open file descriptors of the sampling server process."),
    "benchwatch_disk_mb_per_second": ("disk_mbps", "Disk I/O, read plus write, MB/s."),
    "benchwatch_gpu_utilization_percent": ("gpu_pct", "GPU utilisation, percent (NVML)."),
    "benchwatch_gpu_temperature_celsius": ("gpu_temp_c", "GPU temperature, degrees Celsius (NVML)."),
}
STALE_S = 10.0  # a host sample older than this is not exported (the sampler stopped, or no worker holds it)
MAX_LABEL_SETS = 2000  # (model, dataset) pairs exported; beyond, the rest are dropped and counted
CACHE_S = 1.0  # the store's results are checked for a change at most this often
CLIENTS_KEY = "benchwatch:sse_clients"  # worker -> {"n": open streams, "ts"} (several workers on a Redis bus)
CLIENTS_EVERY_S = 2.0
CLIENTS_FRESH_S = 10.0


class StoreSection:
    """Verdict counts and histogram buckets per (model, dataset), aggregated in the database, rendered once per
    change of the results table: its row count and newest id are checked at most every CACHE_S, and the
    aggregate query and the rendering (most of a scrape's cost) run again only when a result was added."""

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._checked = float("-inf")
        self._body = b""

    def invalidate(self) -> None:
        with self._lock:
            self._key, self._checked = None, float("-inf")

    def render(self) -> bytes:
        with self._lock:
            now = time.monotonic()
            if self._key is not None and now - self._checked < CACHE_S:
                return self._body
            self._checked = now
            r = results_table.c
            try:
                with self.store.engine.connect() as c:
                    key = tuple(c.execute(select(func.count(), func.max(r.id))).one())
                if key != self._key:
                    self._body = generate_latest(_Families(list(self._families(self._query()))))
                    self._key = key
            except SQLAlchemyError as exc:  # the store unreachable: serve the live figures, leave these out
                log.warning("/metrics: the store's figures left out: %s", exc)
                self._key, self._body = None, b""
            return self._body

    def _query(self) -> dict[str, Any]:
        r = results_table.c
        final = r.final.is_(True)
        with self.store.engine.connect() as c:
            verdicts = c.execute(select(r.model, r.dataset, r.verdict, func.count())
                                 .where(final).group_by(r.model, r.dataset, r.verdict)).all()
            hists: dict[str, list[Any]] = {}
            for name, (column, scale, buckets, _) in HISTOGRAMS.items():
                col = r[column]
                cols = [func.count(col), func.sum(col)] + [
                    func.sum(case((col <= b / scale, 1), else_=0)) for b in buckets]
                hists[name] = c.execute(
                    select(r.model, r.dataset, *cols)
                    .where(and_(final, r.verdict.in_(("PASS", "FAIL")), col.is_not(None)))
                    .group_by(r.model, r.dataset)).all()
        return {"verdicts": verdicts, "histograms": hists}

    @staticmethod
    def _families(agg: dict[str, Any]) -> Iterable[Any]:
        allowed = _bounded({(m, d) for m, d, _, _ in agg["verdicts"]})
        verdicts = CounterMetricFamily("benchwatch_verdicts", "Final verdicts (one per task), as stored.",
                                       labels=["model", "dataset", "verdict"])
        seen: set[tuple[str, str, str]] = set()
        for model, dataset, verdict, n in agg["verdicts"]:
            if (model, dataset) in allowed:
                seen.add((model, dataset, verdict))
                verdicts.add_metric([model, dataset, verdict], n)
        for model, dataset in sorted(allowed):  # every verdict of a pair, 0 included: rate() needs the series
            for v in VERDICTS:
                if (model, dataset, v) not in seen:
                    verdicts.add_metric([model, dataset, v], 0)
        yield verdicts
        for name, (_, scale, buckets, help_) in HISTOGRAMS.items():
            fam = HistogramMetricFamily(name, help_, labels=["model", "dataset"])
            for model, dataset, count, total, *cum in agg["histograms"][name]:
                if (model, dataset) not in allowed:
                    continue
                edges = [(_edge(b), float(n or 0)) for b, n in zip(buckets, cum)] + [("+Inf", float(count))]
                fam.add_metric([model, dataset], edges, float(total or 0) * scale)
            yield fam
        dropped = GaugeMetricFamily("benchwatch_metrics_label_sets_dropped",
                                    f"(model, dataset) pairs left out of /metrics past {MAX_LABEL_SETS}.")
        dropped.add_metric([], len({(m, d) for m, d, _, _ in agg["verdicts"]}) - len(allowed))
        yield dropped


class _Families:
    """Families already built, in the shape generate_latest reads (a collector's collect())."""

    def __init__(self, families: list[Any]):
        self.families = families

    def collect(self) -> list[Any]:
        return self.families


class ClientCounts:
    """SSE streams are held per worker. With a Redis bus every worker posts its count into one hash every
    CLIENTS_EVERY_S; a scrape, whichever worker answers it, sums the counts posted in the last CLIENTS_FRESH_S
    (a worker that stopped posting has ended: its entry is removed)."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.bus = ctx.bus

    def start(self) -> None:
        threading.Thread(target=self._loop, name="sse-client-count", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.post()
            time.sleep(CLIENTS_EVERY_S)

    def post(self) -> None:
        try:
            self.bus._writer.hset(CLIENTS_KEY, self.bus.me,
                                  json.dumps({"n": self.ctx.hub.stream_count, "ts": time.time()}))
        except self.bus._errors:
            pass  # the bus says it is unreachable in its own status; the next post tries again

    def total(self) -> int | None:
        own = self.ctx.hub.stream_count
        try:
            entries = self.bus._writer.hgetall(CLIENTS_KEY)
        except self.bus._errors:
            return None
        total, ended, now = own, [], time.time()
        for worker, raw in entries.items():
            if worker.decode() == self.bus.me:
                continue
            try:
                entry = json.loads(raw)
                fresh = now - float(entry["ts"]) <= CLIENTS_FRESH_S
            except (ValueError, KeyError, TypeError):
                fresh = False
            if fresh:
                total += int(entry["n"])
            else:
                ended.append(worker)
        if ended:
            try:
                self.bus._writer.hdel(CLIENTS_KEY, *ended)
            except self.bus._errors:
                pass
        return total


class Exporter:
    """One per app: the store section (cached, see StoreSection) and the live-state section (every scrape)."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.store_section = StoreSection(ctx.store) if ctx.store is not None else None
        self.client_counts = ClientCounts(ctx) if getattr(ctx.bus, "kind", "local") == "redis" else None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def render(self) -> bytes:
        head = self.store_section.render() if self.store_section is not None else b""
        return head + generate_latest(self.registry)

    def collect(self) -> Iterable[Any]:  # the prometheus_client collector protocol: the live-state figures
        yield from self._from_state()

    def _from_state(self) -> Iterable[Any]:
        state, _ = self.ctx.hub.snapshot()
        sample = state["telemetry"][-1] if state["telemetry"] else None
        fresh = sample is not None and time.time() - sample["ts"] <= STALE_S
        for name, (key, help_) in HOST_GAUGES.items():
            fam = GaugeMetricFamily(name, help_)
            if fresh and sample.get(key) is not None:  # unreadable or stale: absent, never 0
                fam.add_metric([], float(sample[key]))
            yield fam
        run, cur = state["run"], state["current"]
        in_flight = GaugeMetricFamily("benchwatch_tasks_in_flight", "Task attempts started and not yet finished.")
        in_flight.add_metric([], 1.0 if run and run["status"] == "running" and cur and cur.get("verdict") is None
                             else 0.0)
        yield in_flight
        clients = GaugeMetricFamily("benchwatch_sse_clients", "Open SSE streams, all workers together.")
        total = self.client_counts.total() if self.client_counts is not None else self.ctx.hub.stream_count
        if total is not None:  # None: the bus is unreachable and the other workers' counts unknown
            clients.add_metric([], float(total))
        yield clients
        info = GaugeMetricFamily("benchwatch_run_info", "The run the live view holds (1), by id and status.",
                                 labels=["run_id", "status"])
        if run is not None:
            info.add_metric([run["id"], run["status"]], 1.0)
        yield info


def _edge(b: float) -> str:
    return repr(float(b)) if b != int(b) else f"{float(b):.1f}"


def _bounded(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return pairs if len(pairs) <= MAX_LABEL_SETS else set(sorted(pairs)[:MAX_LABEL_SETS])


@bp.record_once
def _start(setup: Any) -> None:
    """At registration (create_app, the bus already started): the exporter, and with a Redis bus the posting of
    this worker's SSE client count."""
    ext = setup.app.extensions
    ext["benchwatch.metrics"] = Exporter(ext["benchwatch"])
    if ext["benchwatch.metrics"].client_counts is not None:
        ext["benchwatch.metrics"].client_counts.start()


def exporter() -> Exporter:
    return current_app.extensions["benchwatch.metrics"]


@bp.get("/metrics")
def metrics() -> Any:
    return Response(exporter().render(), mimetype=None, content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store", "X-Benchwatch-Worker": str(os.getpid())})
