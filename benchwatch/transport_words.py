"""How a failed connection to a model server is worded, once for both transports: the runner's small requests
(httpx, backends/http.py) and the stream worker's streams (aiohttp, stream_worker.py). Standard library only, so
the worker can import it without the runner's packages."""
from __future__ import annotations


def no_connection(where: str, connect_s: float) -> str:
    return f"cannot reach {where}: no connection within {connect_s:g} s (runner.connect_timeout_s)"


def cannot_reach(where: str, why: str, refused: bool = False) -> str:
    if refused or "refused" in why.lower():
        why = "connection refused (is the server running?)"
    return f"cannot reach {where}: {why}"


def truncated(where: str, exc: BaseException) -> str:
    return f"{where} closed the connection mid-answer (truncated stream: {exc})"


def other(where: str, exc: BaseException) -> str:
    return f"{where}: {type(exc).__name__}: {exc}"
