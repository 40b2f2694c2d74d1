"""HTML for reports, comparisons and the runs list: Jinja2 templates kept in this package.

A report is one self-contained file: styles, scripts, the ECharts library and the data are inline, and a
Content-Security-Policy in the page forbids every fetch, so it opens from disk, offline, years later.
Model output is data: templates autoescape it, and the inline JSON block goes through Jinja's `tojson`,
which escapes <, >, & and ' so a response holding `</script>` cannot end the block.
"""
from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from .. import endpoints
from ..store import Store
from .data import COUNTING_RULE, METRICS, QUANTILES, TELEMETRY_SERIES, compare, load_report, runs_list

ECHARTS = Path(__file__).resolve().parents[1] / "web" / "static" / "js" / "vendor" / "echarts.min.js"
MONITOR_URL = endpoints.MONITOR


class ReportError(Exception):
    pass


@functools.lru_cache(maxsize=1)
def echarts_source() -> Markup:
    """The ECharts library, to inline into a report (about 1 MB; read once per process)."""
    try:
        text = ECHARTS.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"ECharts is missing at {ECHARTS}: run scripts/init.sh (it copies it from npm)") from None
    if "</script" in text.lower():  # would end the inline <script> early
        raise ReportError(f"{ECHARTS} contains '</script' and cannot be inlined")
    return Markup(text)


def _utc(ts: float | None) -> str:
    if ts is None:
        return "–"
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "–"
    s = int(round(end - start))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m:02d}m {sec:02d}s" if h else (f"{m}m {sec:02d}s" if m else f"{sec}s")


def pct(rate: float | None, digits: int = 1) -> str:
    return "–" if rate is None else f"{100.0 * rate:.{digits}f} %"


def num(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def _yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip()


def _rate_hue(rate: float | None) -> str:
    """A background for a pass-rate cell: red at 0 %, green at 100 %; none without tasks."""
    return "" if rate is None else f"--hue:{round(120 * rate)}"


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("benchwatch.report", "templates"),
                      autoescape=select_autoescape(["html"], default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(utc=_utc, pct=pct, num=num, yaml=_yaml, rate_hue=_rate_hue)
    env.globals.update(duration=_duration, METRICS=METRICS, QUANTILES=QUANTILES,
                       TELEMETRY_SERIES=TELEMETRY_SERIES, COUNTING_RULE=COUNTING_RULE, MONITOR_URL=MONITOR_URL)
    return env


def render_report(store: Store, run_id: str, served: bool = False) -> str:
    """The whole report for one run. `served`: links to the server's pages (/runs, the monitor)."""
    report = load_report(store, run_id)
    return environment().get_template("report.html").render(
        r=report, run=report.run, data=report.chart_data(), echarts=echarts_source(), served=served,
        generated=_utc(dt.datetime.now(dt.timezone.utc).timestamp()))


def render_compare(store: Store, run_a: str, run_b: str, served: bool = False) -> str:
    cmp = compare(store, run_a, run_b)
    return environment().get_template("compare.html").render(
        c=cmp, a=cmp.a, b=cmp.b, served=served, generated=_utc(dt.datetime.now(dt.timezone.utc).timestamp()))


def render_runs(store: Store) -> str:
    runs = runs_list(store)
    return environment().get_template("runs.html").render(
        runs=runs, served=True, any_running=any(r["status"] == "running" for r in runs))
