"""The monitor page and its assets, served from benchwatch/web/static (the page is issue 4's)."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from flask import Blueprint, redirect, send_from_directory

STATIC = Path(str(resources.files("benchwatch") / "web" / "static"))
bp = Blueprint("monitor", __name__)


@bp.get("/docs/benchmark_monitor.html")
def monitor_page() -> Any:
    return send_from_directory(STATIC, "benchmark_monitor.html", max_age=0)


@bp.get("/js/<path:path>")
def js(path: str) -> Any:
    return send_from_directory(STATIC / "js", path, max_age=0)


@bp.get("/css/<path:path>")
def css(path: str) -> Any:
    return send_from_directory(STATIC / "css", path, max_age=0)


@bp.get("/")
def index() -> Any:
    return redirect("/docs/benchmark_monitor.html")
