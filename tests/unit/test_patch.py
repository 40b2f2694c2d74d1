import json

from benchwatch.patch import apply_ops, diff


def roundtrip(old, new):
    return apply_ops(json.loads(json.dumps(old)), json.loads(json.dumps(diff(old, new))))


def test_a_removed_key_is_gone_on_the_receiving_side():
    old = {"current": {"stages": {"cooling": {"start": 0}}, "response": "ab"}}
    new = {"current": {"stages": {}, "response": "ab"}}
    assert roundtrip(old, new) == new


def test_appends_pushes_and_sets_round_trip():
    old = {"t": [1, 2, 3], "s": "he", "n": 1, "items": [{"a": 1}, {"a": 2}]}
    new = {"t": [2, 3, 4], "s": "hello", "n": 2, "items": [{"a": 1}, {"a": 5}]}
    ops = diff(old, new)
    assert ["append", ["s"], "llo"] in ops and ["push", ["t"], 4, 3] in ops
    assert roundtrip(old, new) == new
