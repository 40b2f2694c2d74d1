"""The plain-data codec of the sandbox's channel: every built-in value type round-trips exactly; anything else
is refused on the way out, and anything that is not a valid encoding is refused on the way in."""
from __future__ import annotations

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
    return codec.decode(codec.encode(value))


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


def n(k: int) -> bytes:
    return k.to_bytes(4, "big")


@pytest.mark.parametrize("wire", [
    b"", b"X", b"NN", b"i" + n(2) + b"12", b"i" + n(3) + b"0xz", b"f" + n(3) + b"xyz", b"l" + n(5) + b"N",
    b"S" + n(1) + b"l" + n(0), b"d" + n(1) + b"l" + n(0) + b"N", b"s" + n(1) + b"\xff", b"s" + n(9) + b"ab",
    b"c" + b"s" + n(0) + b"N", b"l" + n(0x7FFFFFFF), (b"l" + n(1)) * 200 + b"N",
], ids=repr)
def test_invalid_encodings_are_refused_on_the_way_in(wire):
    with pytest.raises(codec.NotPlain):
        codec.decode(wire)


def test_too_many_values_in_one_frame_are_refused_quickly():
    import time
    wire = b"l" + n(codec.MAX_ITEMS + 1) + b"N" * (codec.MAX_ITEMS + 1)
    t0 = time.monotonic()
    with pytest.raises(codec.NotPlain, match="more than"):
        codec.decode(wire)
    assert time.monotonic() - t0 < 5
    assert codec.decode(b"l" + n(1000) + b"N" * 1000) == [None] * 1000


def test_frames_round_trip_and_oversized_or_broken_frames_are_refused():
    r, w = os.pipe()
    try:
        codec.send(w, {"value": [1, "two", (3.5, None)]})
        assert codec.recv(r) == {"value": [1, "two", (3.5, None)]}
        os.write(w, n(codec.MAX_FRAME + 1))
        with pytest.raises(ValueError, match="frame of"):
            codec.recv(r)
        os.write(w, n(5) + b"l" + n(0))
        with pytest.raises(ValueError, match="not a message"):
            codec.recv(r)
        os.write(w, n(6) + b"d" + n(1) + b"N")
        with pytest.raises(codec.NotPlain):
            codec.recv(r)
    finally:
        os.close(w)
    with pytest.raises(EOFError):
        codec.recv(r)
    os.close(r)
