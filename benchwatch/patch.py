"""State deltas for the wire: `diff(old, new)` -> a short list of mechanical operations.

The reducer (state.py) is the only place that knows what an event means. The server sends a snapshot of its
state, then, per event, the operations that turn the previous state into the next one. The page applies them
without knowing why (see web/static/js/patch.js); `apply_ops` here is the same thing in Python, for tests.

Operations (paths are lists of keys / list indexes):
  ["set", path, value]          replace the value at path
  ["append", path, text]        a string grew at its end (streaming text)
  ["push", path, item, keep]    a list grew by one item at its end, then keeps its last `keep` items
The reducer shares unchanged branches between states, so `is` comparisons make the diff cheap.
"""
from __future__ import annotations

import copy
import itertools
import operator
from typing import Any

Op = list[Any]
_LIST_ITEM_DIFF_MAX = 64  # past this many changed list items, one "set" of the list is smaller
_RUN = 256  # items compared at once when looking for the changed ones (_changed_indexes)


def diff(old: Any, new: Any, path: list[Any] | None = None) -> list[Op]:
    path = path or []
    if old is new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return _dict_ops(old, new, path)
    if isinstance(old, str) and isinstance(new, str) and len(new) > len(old) and new.startswith(old):
        return [["append", path, new[len(old):]]]
    if isinstance(old, list) and isinstance(new, list):
        return _list_ops(old, new, path)
    if old == new:
        return []
    return [["set", path, new]]


def _dict_ops(old: dict[str, Any], new: dict[str, Any], path: list[Any]) -> list[Op]:
    if not old.keys() <= new.keys():  # (a subset test walks the keys; a difference would build a set)
        # A key went away (e.g. a new task's empty `stages`): replace the dict, so the receiver doesn't keep
        # the key with a null value and both sides hold the same state.
        return [["set", path, new]]
    ops: list[Op] = []
    for key, value in new.items():
        if key not in old:
            ops.append(["set", path + [key], value])
        elif old[key] is not value:  # shared branch: nothing to walk (most of them, per event)
            ops.extend(diff(old[key], value, path + [key]))
    return ops


def _list_ops(old: list[Any], new: list[Any], path: list[Any]) -> list[Op]:
    # One item added at the end, the window possibly slid by one (telemetry): push, keep len(new). The identity
    # checks first, so a list of thousands whose one item changed (task pills) is not sliced and compared twice.
    if new and old and new[-1] is not old[-1] and (
            (len(new) == len(old) + 1 and new[0] is old[0] and new[:-1] == old)
            or (len(new) == len(old) and len(old) > 1 and new[0] is old[1] and new[:-1] == old[1:])):
        return [["push", path, new[-1], len(new)]]
    if new and not old and len(new) == 1:
        return [["push", path, new[-1], 1]]
    if len(new) == len(old):
        changed = _changed_indexes(old, new)
        if len(changed) <= _LIST_ITEM_DIFF_MAX:
            return [op for i in changed for op in diff(old[i], new[i], path + [i])]
    return [["set", path, new]]


def _changed_indexes(old: list[Any], new: list[Any]) -> list[int]:
    """Indexes of the items that differ, up to _LIST_ITEM_DIFF_MAX + 1 of them. The reducer replaces only what
    changed, so most runs of items are the same objects: a run is compared in C first (list equality passes the
    same object at once), and only a run that differs is looked into. A scan of every item of a grid of 3,000
    task pills took 180 us an event; this takes 30."""
    changed: list[int] = []
    for lo in range(0, len(new), _RUN):
        a, b = old[lo:lo + _RUN], new[lo:lo + _RUN]
        if a != b:
            changed.extend(lo + j for j in itertools.compress(range(len(b)), map(operator.is_not, a, b)) if a[j] != b[j])
            if len(changed) > _LIST_ITEM_DIFF_MAX:
                break
    return changed


def apply_ops(state: Any, ops: list[Op]) -> Any:
    """Apply operations in place (tests and the Python SSE client use this; the page has the JS twin). Values
    are copied in, so the state never shares objects with the message (or with another state fed the same one)."""
    for op in ops:
        kind, path = op[0], op[1]
        value = copy.deepcopy(op[2])
        if not path:
            state = value
            continue
        parent = state
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        if kind == "set":
            parent[last] = value
        elif kind == "append":
            parent[last] = (parent[last] or "") + value
        elif kind == "push":
            items = list(parent[last] or []) + [value]
            parent[last] = items[-op[3]:] if op[3] else items
        else:
            raise ValueError(f"unknown op {kind!r}")
    return state
