"""A small SSE client over httpx (tests, benchmarks, scripts): yields each message as it arrives."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Iterator

import httpx

from benchwatch.patch import apply_ops


@dataclass
class Message:
    kind: str  # "snapshot", "patch", ... or "comment" for a heartbeat line
    id: int | None
    data: Any


def messages(response: httpx.Response) -> Iterator[Message]:
    """Parse an open streaming response (see the SSE spec: fields, blank line ends a message)."""
    kind, msg_id, data = "message", None, []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield Message(kind, msg_id, json.loads("\n".join(data)))
            kind, data = "message", []
        elif line.startswith(":"):
            yield Message("comment", None, line[1:].strip())
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                kind = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                msg_id = int(value)


class LiveState:
    """Follows a stream: the snapshot, then patches applied in order (what the page does)."""

    def __init__(self) -> None:
        self.state: Any = None
        self.last_id: int | None = None

    def feed(self, msg: Message) -> None:
        if msg.kind == "snapshot":
            # Patches apply in place: follow a copy, so the message (which a caller may hold) stays as received.
            self.state = copy.deepcopy(msg.data["state"])
        elif msg.kind == "patch":
            self.state = apply_ops(self.state, msg.data["ops"])
        if msg.id is not None:
            self.last_id = msg.id
