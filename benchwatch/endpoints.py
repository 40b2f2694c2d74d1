"""Every HTTP path the server serves and its clients use, defined once.

The server's routes, the runner's HTTP sink, the CLI's messages, the reports' links and the page (through
/js/endpoints.js, generated from this module by server/static.py) all read these.
"""
from __future__ import annotations

MONITOR = "/docs/benchmark_monitor.html"  # the live monitor page
INGEST = "/api/benchmark/telemetry/events"  # POST: the runner's event batches
STREAM = "/api/benchmark/telemetry/stream"  # GET: the SSE stream (snapshot, then patches)
STATE = "/api/benchmark/state"  # GET: the live state now, as JSON
RUNS_API = "/api/runs"  # GET: the stored runs; /api/runs/<run_id>: one run and its results
HEALTH = "/healthz"
RUNS_PAGE = "/runs"  # the runs list
REPORTS = "/reports"  # /reports/<run_id>: a run's report
COMPARE = "/compare"

# What the page's scripts need, as the ES module /js/endpoints.js exports them.
FOR_PAGE = {"STREAM": STREAM, "REPORTS": REPORTS, "MONITOR": MONITOR}
