"""A task, as every dataset source produces it, and the error a source raises when it can't be read."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Task:
    id: str
    prompt: str
    expected: Any = None
    system: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # per-task evaluator options
    meta: dict[str, Any] = field(default_factory=dict)  # anything else the source carries (e.g. tests)


class DatasetError(ValueError):
    """A dataset that can't be read; the message names the file, the line and the field."""


class JsonNumber(float):
    """A JSON number with a fraction or exponent, as written in the file: `str()` gives the text back (a gold
    `3.10` stays "3.10", not "3.1"); arithmetic and comparisons use the value."""
    raw: str

    def __new__(cls, text: str) -> "JsonNumber":
        obj = super().__new__(cls, text)
        obj.raw = text
        return obj

    def __str__(self) -> str:
        return self.raw

    def __reduce__(self) -> Any:
        return (JsonNumber, (self.raw,))


def as_written(value: Any) -> str:
    """A gold answer as text the way the dataset wrote it: JSON literals stay JSON (`true`, `null`, `3.10`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)
