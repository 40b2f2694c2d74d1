"""JSON Schemas of the contracts, generated from their pydantic models (one source of truth).

`json_schema("events")` is the event contract of `benchwatch/events.py`. The docs' event reference is
generated from it at build time.
"""
from __future__ import annotations

from typing import Any, Callable

from pydantic import TypeAdapter


def _events() -> dict[str, Any]:
    from .events import CONTRACT_VERSION, Event
    schema = TypeAdapter(Event).json_schema()
    schema["title"] = f"benchwatch event (contract version {CONTRACT_VERSION})"
    return schema


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {"events": _events}


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema named `name`; ValueError naming the known ones otherwise."""
    try:
        make = SCHEMAS[name]
    except KeyError:
        raise ValueError(f"unknown schema {name!r}: expected one of {', '.join(sorted(SCHEMAS))}") from None
    return make()
