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


def _random_value(rng, depth=0):
    roll = rng.random()
    if depth > 2 or roll < 0.3:
        return rng.choice([1, 2, "a", "ab", None, 1.5, True])
    if roll < 0.65:
        return {rng.choice("abcde"): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 600 if depth == 0 else 5))]


def _changed_like_the_reducer(rng, value, depth=0):
    """A new value sharing every unchanged branch with the old one, as the reducer builds its states."""
    if isinstance(value, dict):
        new = {k: (_changed_like_the_reducer(rng, v, depth + 1) if rng.random() < 0.3 else v) for k, v in value.items()}
        if new and rng.random() < 0.1:
            new.pop(rng.choice(list(new)))
        if rng.random() < 0.1:
            new[rng.choice("abcdef")] = _random_value(rng, depth + 1)
        return new
    if isinstance(value, list):
        new = list(value)
        for _ in range(rng.choice([0, 1, 1, 2, 3, 70])):  # 70: past the item-diff limit, one "set"
            if new:
                i = rng.randrange(len(new))
                new[i] = _changed_like_the_reducer(rng, new[i], depth + 1)
        if rng.random() < 0.1:
            new.append(_random_value(rng, depth + 1))  # a push
        if new and rng.random() < 0.1:
            new = new[1:] + [_random_value(rng, depth + 1)]  # a sliding window
        return new
    if isinstance(value, str) and rng.random() < 0.3:
        return value + "zz"  # an append
    return _random_value(rng, depth + 1) if rng.random() < 0.3 else value


def test_any_change_round_trips_through_the_wire():
    """Fuzz: whatever the reducer changes (lists of hundreds of items, pushes, slides, removed keys, grown
    strings), the receiver that applies the ops holds exactly the new state."""
    import random
    rng = random.Random(14)
    for _ in range(1500):
        old = {"s": _random_value(rng)}
        new = _changed_like_the_reducer(rng, old)
        assert roundtrip(old, new) == new
