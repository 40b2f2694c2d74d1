"""The plain-data codec of the sandbox's channel: every built-in value type round-trips exactly; anything else
is refused on the way out, and anything that is not a valid encoding is refused on the way in."""
from __future__ import annotations

import json
import math
import os

import pytest

from benchwatch.sandbox import codec

VALUES = [
    None, True, False, 0, -1, 2 ** 53, -(2 ** 200), 10 ** 4000, 0.1, -0.0, 1e308, float("inf"), float("-inf"),
    1 + 2j, complex(float("inf"), -0.5), "", "é\u0000\ud800", b"", b"\x00\xff", [], (), set(), frozenset(), {},
    [1, (2, 3), {4: [5]}, {"a": frozenset({(1, 2)})}], ((),), {(1, "a"): {b"k": {1.5, None}}},
    [[[[[[[[[[1]]]]]]]]]],
]


def roundtrip(value):
    return codec.decode(json.loads(json.dumps(codec.encode(value))))


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_plain_values_round_trip_with_their_exact_types(value):
    back = roundtrip(value)
    assert back == value and type(back) is type(value)
    if isinstance(value, (list, tuple)):
        assert [type(v) for v in back] == [type(v) for v in value]


def test_nan_round_trips_and_bool_is_not_int():
    assert math.isnan(roundtrip(float("nan")))
    assert roundtrip([True, 1]) == [True, 1] and [type(v) for v in roundtrip([True, 1])] == [bool, int]
    assert type(roundtrip(1.0)) is float and type(roundtrip(1)) is int


class AlwaysEqual:
    def __eq__(self, other):
        return True


class SneakyInt(int):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value, name", [
    (AlwaysEqual(), "AlwaysEqual"), (SneakyInt(3), "SneakyInt"), (type("S", (str,), {})("x"), "S"),
    ((i for i in range(3)), "generator"), (bytearray(b"x"), "bytearray"), (object(), "object"),
    ([1, [AlwaysEqual()]], "AlwaysEqual"), ({1: len}, "builtin_function_or_method"), (range(3), "range"),
])
def test_anything_else_is_refused_on_the_way_out(value, name):
    with pytest.raises(codec.NotPlain, match=name):
        codec.encode(value)


def test_self_reference_and_depth_are_refused():
    loop: list = []
    loop.append(loop)
    with pytest.raises(codec.NotPlain, match="deeper"):
        codec.encode(loop)
    deep: list = []
    for _ in range(codec.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(codec.NotPlain):
        codec.encode(deep)


@pytest.mark.parametrize("wire", [
    {"__class__": "x"}, ["zz", 1], [], [1, 2], ["d", 1], ["s", ["l", 1]], ["d", ["l"], 1], ["i", "12x"],
    ["b", "zz"], ["c", "1", 2], ["fs", ["s"]], ["i", 5],
])
def test_invalid_encodings_are_refused_on_the_way_in(wire):
    with pytest.raises(codec.NotPlain):
        codec.decode(wire)


def test_frames_round_trip_and_oversized_or_broken_frames_are_refused():
    r, w = os.pipe()
    try:
        codec.send(w, {"value": codec.encode([1, "two"])})
        assert codec.decode(codec.recv(r)["value"]) == [1, "two"]
        os.write(w, (codec.MAX_FRAME + 1).to_bytes(4, "big"))
        with pytest.raises(ValueError, match="frame of"):
            codec.recv(r)
        os.write(w, (2).to_bytes(4, "big") + b"[]")
        with pytest.raises(ValueError, match="not a JSON object"):
            codec.recv(r)
    finally:
        os.close(w)
    with pytest.raises(EOFError):
        codec.recv(r)
    os.close(r)
