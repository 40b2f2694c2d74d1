"""JSON Schemas of the two contracts: the live state the page sees (state.LiveState) and the events that reach
the server (events.Event). `benchwatch schema state|events` prints them."""
from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from .events import CONTRACT_VERSION, Event
from .state import LiveState

NAMES = ("state", "events")


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of "state" or "events"; ValueError for any other name."""
    if name == "state":
        schema = LiveState.model_json_schema(by_alias=True)
        title = "benchwatch live state (the SSE snapshot, kept current by patches)"
    elif name == "events":
        schema = TypeAdapter(Event).json_schema(by_alias=True)
        title = f"benchwatch event (contract v{CONTRACT_VERSION}): one of the types below"
    else:
        raise ValueError(f"unknown schema {name!r}; expected one of {', '.join(NAMES)}")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **schema}
