"""Reports and history on the server: /runs, /reports/<run_id>, /compare and per-run exports.

Pages are rendered from the store on each request, so a report of a run still going is as fresh as the store.
"""
from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, current_app, request

from .. import endpoints
from ..store import Store
from .data import RunNotFound
from .export import FORMATS, TABLES, export
from .render import ReportError, render_compare, render_report, render_runs

bp = Blueprint("reports", __name__)
HTML = "text/html; charset=utf-8"
MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def _store() -> Store | None:
    ctx = current_app.extensions.get("benchwatch")
    return getattr(ctx, "store", None)


def _page(status: int, title: str, text: str) -> Response:
    """A plain error page (the app's JSON errors are for the API)."""
    from markupsafe import escape
    body = (f"<!doctype html><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<h1>{escape(title)}</h1><p>{escape(text)}</p><p><a href='/runs'>All runs</a></p>")
    return Response(body, status=status, mimetype="text/html")


def _resolve(store: Store, run_id: str) -> str:
    if run_id == "latest":
        return store.latest_run_id() or run_id
    return run_id


def _guarded(render: Any) -> Response:
    store = _store()
    if store is None:
        return _page(503, "No store", "This server runs without a results store, so it has no history.")
    try:
        return Response(render(store), mimetype="text/html", content_type=HTML)
    except RunNotFound as exc:
        return _page(404, "No such run", str(exc))
    except ReportError as exc:
        return _page(500, "Report unavailable", str(exc))


@bp.get(endpoints.RUNS_PAGE)
def runs() -> Response:
    return _guarded(render_runs)


@bp.get(endpoints.REPORTS + "/<run_id>")
def report(run_id: str) -> Response:
    other = request.args.get("compare")
    if other:
        return _guarded(lambda s: render_compare(s, _resolve(s, run_id), _resolve(s, other), served=True))
    return _guarded(lambda s: render_report(s, _resolve(s, run_id), served=True))


@bp.get(endpoints.COMPARE)
def compare_runs() -> Response:
    a, b = request.args.get("a", ""), request.args.get("b", "")
    if not a or not b:
        return _page(400, "Two runs needed", "Use /compare?a=RUN_ID&b=RUN_ID.")
    return _guarded(lambda s: render_compare(s, _resolve(s, a), _resolve(s, b), served=True))


@bp.get(endpoints.REPORTS + "/<run_id>/export.<fmt>")
def export_run(run_id: str, fmt: str) -> Response:
    store = _store()
    table = request.args.get("table", "results")
    if store is None:
        return _page(503, "No store", "This server runs without a results store.")
    if fmt not in FORMATS or table not in TABLES:
        return _page(404, "Unknown export", f"formats: {', '.join(FORMATS)}; tables: {', '.join(TABLES)}")
    run_id = _resolve(store, run_id)
    if store.get_run(run_id) is None:
        return _page(404, "No such run", f"no run {run_id!r}")
    buf = io.StringIO()
    export(store, run_id, fmt, buf, table)
    name = f"{run_id}-{table}.{fmt}"
    return Response(buf.getvalue(), content_type=MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
