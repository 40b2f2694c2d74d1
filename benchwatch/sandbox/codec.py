"""Plain data across the sandbox's channel: Python's built-in value types, encoded as tagged JSON.

None, bool, int, float (nan and inf included), str as themselves; the rest as a JSON list whose first item
names the type: ["l", ...] list, ["t", ...] tuple, ["s", ...] set, ["fs", ...] frozenset, ["d", k, v, ...] dict,
["b", HEX] bytes, ["c", REAL, IMAG] complex. Only these exact types cross (a subclass of int, an object whose
`__eq__` is always true, a generator: all refused). Decoding builds fresh built-in values and nothing else, so
whatever arrives cannot run code on the receiving side. Frames are a 4-byte big-endian length and a JSON object.

This file is also pasted into the sandbox's scripts (they run with no access to the benchwatch package): keep
it to the standard library and to module-level functions.
"""
import json
import os

MAX_DEPTH = 100
MAX_FRAME = 64 << 20
_CONTAINERS = {list: "l", tuple: "t", set: "s", frozenset: "fs"}
_BUILD = {"l": list, "t": tuple, "s": set, "fs": frozenset}


class NotPlain(TypeError):
    """A value that is not plain data (its type is named in the message)."""


def encode(value, depth=0):
    """The JSON-ready form of a plain value; NotPlain for anything else."""
    if depth > MAX_DEPTH:
        raise NotPlain(f"nested deeper than {MAX_DEPTH}")
    t = type(value)
    if value is None or t is bool or t is str or t is float:
        return value
    if t is int:
        return value if -(1 << 53) < value < (1 << 53) else ["i", str(value)]
    if t in _CONTAINERS:
        return [_CONTAINERS[t]] + [encode(v, depth + 1) for v in value]
    if t is dict:
        out = ["d"]
        for k, v in value.items():
            out.append(encode(k, depth + 1))
            out.append(encode(v, depth + 1))
        return out
    if t is bytes:
        return ["b", value.hex()]
    if t is complex:
        return ["c", value.real, value.imag]
    raise NotPlain(f"a {_type_name(value)}, which is not plain data")


def decode(obj, depth=0):
    """The plain value an encoded form stands for; NotPlain for anything that is not a valid encoding."""
    if depth > MAX_DEPTH:
        raise NotPlain(f"nested deeper than {MAX_DEPTH}")
    t = type(obj)
    if obj is None or t is bool or t is str or t is float or t is int:
        return obj
    if t is not list or not obj or type(obj[0]) is not str:
        raise NotPlain(f"not an encoded value: {t.__name__}")
    tag, items = obj[0], obj[1:]
    try:
        if tag in _BUILD:
            return _BUILD[tag](decode(v, depth + 1) for v in items)
        if tag == "d" and len(items) % 2 == 0:
            return {decode(items[i], depth + 1): decode(items[i + 1], depth + 1) for i in range(0, len(items), 2)}
        if tag == "i" and len(items) == 1 and type(items[0]) is str:
            return int(items[0])
        if tag == "b" and len(items) == 1 and type(items[0]) is str:
            return bytes.fromhex(items[0])
        if tag == "c" and len(items) == 2 and all(type(v) in (int, float) for v in items):
            return complex(items[0], items[1])
    except (TypeError, ValueError) as exc:  # unhashable key or member, a bad digit string
        raise NotPlain(f"invalid {tag!r} value: {exc}") from None
    raise NotPlain(f"unknown tag {tag!r}")


def _type_name(value):
    t = type(value)
    mod = getattr(t, "__module__", "")
    return t.__qualname__ if mod in ("builtins", "__solution__", "", None) else f"{mod}.{t.__qualname__}"


def send(fd, message):
    """Write one frame (a JSON object) to fd."""
    data = json.dumps(message, separators=(",", ":")).encode()
    data = len(data).to_bytes(4, "big") + data
    while data:
        n = os.write(fd, data)
        data = data[n:]


def recv(fd):
    """Read one frame from fd; EOFError when the other side is gone; ValueError for a malformed frame."""
    size = int.from_bytes(_read_exact(fd, 4), "big")
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes (at most {MAX_FRAME})")
    message = json.loads(_read_exact(fd, size))
    if type(message) is not dict:
        raise ValueError("a frame is not a JSON object")
    return message


def _read_exact(fd, n):
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the channel closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
