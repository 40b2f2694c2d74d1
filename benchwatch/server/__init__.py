"""The live server: event ingest, run state, the SSE stream, host telemetry, the JSON API."""
from .app import create_app

__all__ = ["create_app"]
