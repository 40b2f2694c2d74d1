"""The monitor page and its assets, served from benchwatch/web/static (the page is issue 4's)."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, redirect, send_from_directory

from .. import endpoints

STATIC = Path(str(resources.files("benchwatch") / "web" / "static"))
bp = Blueprint("monitor", __name__)


@bp.get(endpoints.MONITOR)
def monitor_page() -> Any:
    return send_from_directory(STATIC, "benchmark_monitor.html", max_age=0)


@bp.get("/js/endpoints.js")
def endpoints_js() -> Any:
    """The paths the page uses, from benchwatch/endpoints.py (one definition for server and page)."""
    body = "".join(f"export const {k} = {json.dumps(v)};\n" for k, v in endpoints.FOR_PAGE.items())
    return Response(body, mimetype="text/javascript", headers={"Cache-Control": "no-cache"})


@bp.get("/js/<path:path>")
def js(path: str) -> Any:
    return send_from_directory(STATIC / "js", path, max_age=0)


@bp.get("/css/<path:path>")
def css(path: str) -> Any:
    return send_from_directory(STATIC / "css", path, max_age=0)


@bp.get("/")
def index() -> Any:
    return redirect(endpoints.MONITOR)
