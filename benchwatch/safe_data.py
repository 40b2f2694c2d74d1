"""One check for data from outside (config files, dataset lines, ingested events): valid Unicode text, finite
numbers, bounded nesting. Returns where the first problem is, so each door can name the file:line or the field.

A lone surrogate ("\\ud800" is legal JSON and legal in a YAML double-quoted string) can't be encoded as UTF-8:
taken in, it would fail later in the store or in every SSE message. NaN and Infinity are not JSON: taken in, they
make the state and the stream invalid JSON for the page. Both are refused at the door, never repaired, so what is
stored is what the user wrote.
"""
from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 32  # nesting below the event or task object; the contract itself needs 4


class Problem(tuple):
    """(path, reason): path is a tuple of keys / indexes from the checked object's root."""

    @property
    def path(self) -> tuple[Any, ...]:
        return self[0]

    @property
    def reason(self) -> str:
        return self[1]

    def field(self) -> str:
        return dotted(self.path)


def dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(top level)"


def text_problem(s: str) -> str | None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not valid Unicode: lone surrogate U+{ord(s[exc.start]):04X} at character {exc.start}"
    return None


def find_problem(obj: Any, max_depth: int = MAX_DEPTH) -> Problem | None:
    """The first string that isn't valid Unicode, number that isn't finite, or container nested deeper than
    `max_depth`, as (path, reason); None when the data is clean. Iterative, and safe on shared or cyclic
    containers (a YAML alias): each container is visited once."""
    seen: set[int] = set()
    stack: list[tuple[tuple[Any, ...], Any]] = [((), obj)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            why = text_problem(node)
            if why:
                return Problem((path, why))
        elif isinstance(node, float):
            if not math.isfinite(node):
                return Problem((path, f"not a finite number ({node!r}); NaN and Infinity are refused"))
        elif isinstance(node, (dict, list)):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if len(path) >= max_depth:
                return Problem((path, f"nested deeper than {max_depth} levels"))
            if isinstance(node, dict):
                for k, v in reversed(list(node.items())):
                    if isinstance(k, str) and text_problem(k):
                        return Problem((path, f"a key is {text_problem(k)}"))
                    stack.append((path + (k,), v))
            else:
                for i in range(len(node) - 1, -1, -1):
                    stack.append((path + (i,), node[i]))
    return None
