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
    elif name == "events":
        schema = {"title": f"Event (contract v{CONTRACT_VERSION})",
                  "description": "One event a runner posts (a JSON list of them per batch), chosen by `type`.",
                  **TypeAdapter(Event).json_schema(by_alias=True)}
    else:
        raise ValueError(f"unknown schema {name!r}; expected one of {', '.join(NAMES)}")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
