"""Ingest as an adversary with a valid token: every malformed batch gets the exact 4xx, a message naming the
event and field (or the body), and leaves the live state, the stream's version and the store as they were.

The app is the real Flask app with a real SQLite store, driven in-process (the suite has several hundred cases);
tests/integration/test_bad_input_server.py sends the cases that need a real socket (chunked bodies, slow
clients) to `benchwatch serve`.
"""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from benchwatch.config import parse_config
from benchwatch.server import create_app
from benchwatch.store import Store
from tests.integration.live_server import run_events

TOKEN = "fuzz-token"
LIVE = "r-live"
PATH = "/api/benchmark/telemetry/events"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    cfg = parse_config({"store": f"sqlite:///{tmp / 'fuzz.db'}", "models": [{"name": "m", "backend": "scripted"}],
                        "datasets": [{"name": "d", "source": "builtin:facts"}]})
    store = Store(cfg.store)
    store.create_run({"models": [], "datasets": []}, None, run_id="r-stored-old")
    app = create_app(cfg, store=store, token=TOKEN, start_sampler=False)
    client = app.test_client()
    live = run_events(LIVE, n_tasks=3)[:-1]  # a run in progress: started, its tasks done, not finished
    live = live[:-4] + [e for e in live[-4:] if e["type"] != "task_finished"]  # the last task still streaming
    r = client.post(PATH, data=json.dumps(live), headers=HEADERS)
    assert r.status_code == 200, r.get_json()
    hub = app.extensions["benchwatch"].hub
    assert hub.foreign_events == 0 and hub.state["models"][0]["status"] == "running"  # every event folded
    return app


def _store_counts(store: Store) -> tuple[int, int, int]:
    from sqlalchemy import func, select

    from benchwatch.store import results, runs, telemetry
    with store.engine.connect() as c:
        return tuple(c.execute(select(func.count()).select_from(t)).scalar() for t in (runs, results, telemetry))


def _post_raw(app, body: bytes | str, headers: dict[str, str] | None = None):
    ctx = app.extensions["benchwatch"]
    before = (copy.deepcopy(ctx.hub.state), ctx.hub.version, _store_counts(ctx.store))
    r = app.test_client().post(PATH, data=body, headers=headers or HEADERS)
    after = (ctx.hub.state, ctx.hub.version, _store_counts(ctx.store))
    assert after == before, "a refused batch changed the live state, the stream or the store"
    return r


# ---- the valid events of the live run's current task, one per type, to mutate field by field
REF = {"run_id": LIVE, "model": "m", "dataset": "d", "task_id": "t2", "attempt": 1}
VALID: dict[str, dict[str, Any]] = {
    "run_started": {"type": "run_started", "run_id": "r-new", "seq": 1, "cooling_s": 0.0,
                    "models": [{"name": "m", "backend": "scripted"}],
                    "datasets": [{"name": "d", "evaluator": "exact_match", "task_ids": ["a"]}]},
    "model_started": {"type": "model_started", "run_id": LIVE, "seq": 900, "model": "m", "backend": "scripted",
                      "ordinal": 1, "total": 1},
    "backend_state": {"type": "backend_state", "run_id": LIVE, "seq": 900, "model": "m", "state": "connected",
                      "detail": "ok"},
    "dataset_started": {"type": "dataset_started", "run_id": LIVE, "seq": 900, "model": "m", "dataset": "d",
                        "task_ids": ["t0"]},
    "task_started": {"type": "task_started", **REF, "seq": 900, "prompt": "p"},
    "stage": {"type": "stage", **REF, "seq": 900, "stage": "evaluating", "at_s": 1.0},
    "token": {"type": "token", **REF, "seq": 900, "kind": "visible", "text": "x", "n_tokens": 1, "tps": 3.0},
    "task_finished": {"type": "task_finished", **REF, "seq": 900, "verdict": "PASS", "final": True,
                      "detail": {"f1": 1.0}, "ttft_ms": 5.0, "latency_ms": 9.0, "tokens_per_s": 4.0,
                      "completion_tokens": 3, "stages": {"streaming": [0.1, 0.2]}},
    "dataset_finished": {"type": "dataset_finished", "run_id": LIVE, "seq": 900, "model": "m", "dataset": "d"},
    "model_finished": {"type": "model_finished", "run_id": LIVE, "seq": 900, "model": "m"},
    "run_finished": {"type": "run_finished", "run_id": LIVE, "seq": 900, "status": "finished", "detail": ""},
    "telemetry": {"type": "telemetry", "run_id": LIVE, "seq": 900, "cpu_pct": 1.0, "fds": 3, "gpu_temp_c": 50.0},
}
STRING_FIELDS = {"run_id", "model", "dataset", "task_id", "prompt", "text", "detail", "backend"}
NUMBER_FIELDS = {"seq", "ts", "attempt", "ordinal", "total", "at_s", "n_tokens", "tps", "ttft_ms", "latency_ms",
                 "tokens_per_s", "completion_tokens", "cooling_s", "cpu_pct", "fds", "gpu_temp_c"}
NAN, INF, NINF, SURR = "__NAN__", "__INF__", "__NINF__", "__SURR__"
RAW = {f'"{NAN}"': "NaN", f'"{INF}"': "Infinity", f'"{NINF}"': "-Infinity", f'"{SURR}"': '"a\\ud800b"'}


def _dumps(obj: Any) -> str:
    text = json.dumps(obj)
    for marker, raw in RAW.items():
        text = text.replace(marker, raw)
    return text


def _field_cases() -> list[Any]:
    cases = []
    for etype, event in VALID.items():
        for name in event:
            if name == "type":
                continue
            if name in NUMBER_FIELDS:
                for marker, why in ((NAN, "not a finite number"), (INF, "not a finite number"),
                                    (NINF, "not a finite number")):
                    cases.append(pytest.param(etype, name, marker, 400, why, id=f"{etype}-{name}-{marker}"))
                cases.append(pytest.param(etype, name, "twelve", 400, "", id=f"{etype}-{name}-string"))
                cases.append(pytest.param(etype, name, [1], 400, "", id=f"{etype}-{name}-list"))
                if name in ("seq", "attempt", "ordinal", "total", "n_tokens", "completion_tokens"):
                    cases.append(pytest.param(etype, name, 10**30, 400, "", id=f"{etype}-{name}-huge"))
                if name in ("seq", "attempt", "ordinal", "total", "at_s", "n_tokens", "ts"):
                    cases.append(pytest.param(etype, name, -1, 400, "greater than", id=f"{etype}-{name}-neg"))
            if name in STRING_FIELDS:
                if name != "detail":
                    cases.append(pytest.param(etype, name, SURR, 400, "lone surrogate U+D800",
                                              id=f"{etype}-{name}-surrogate"))
                    cases.append(pytest.param(etype, name, 5, 400, "", id=f"{etype}-{name}-number"))
                    cases.append(pytest.param(etype, name, {"a": 1}, 400, "", id=f"{etype}-{name}-object"))
            if name not in ("ts", "detail", "tps", "ttft_ms", "latency_ms", "tokens_per_s", "completion_tokens",
                            "stages", "cooling_s", "cpu_pct", "fds", "gpu_temp_c", "seq"):
                cases.append(pytest.param(etype, name, "__DELETE__", 400, "Field required",
                                          id=f"{etype}-{name}-missing"))
        cases.append(pytest.param(etype, "unknown_field", 1, 400, "Extra inputs", id=f"{etype}-extra-field"))
    return cases


FIELD_CASES = _field_cases()


@pytest.mark.parametrize("etype, name, value, status, words", FIELD_CASES)
def test_bad_field_is_refused_naming_event_and_field(app, etype, name, value, status, words):
    good = dict(VALID["token"])
    bad = copy.deepcopy(VALID[etype])
    if value == "__DELETE__":
        del bad[name]
    else:
        bad[name] = value
    r = _post_raw(app, _dumps([good, bad]))  # the bad one second: the good one must not be folded either
    assert r.status_code == status, r.get_json()
    msg = r.get_json()["error"]
    assert msg.startswith("event[1]") and f"'{name}" in msg and words in msg, msg


NESTED = [
    ("detail-nan-deep", {"detail": {"a": [{"b": NAN}]}}, "detail.a[0].b", "not a finite number"),
    ("detail-surrogate-deep", {"detail": {"x": [SURR]}}, "detail.x[0]", "lone surrogate"),
    ("detail-surrogate-key", {"detail": {SURR: 1}}, "detail", "lone surrogate"),
    ("stages-nan", {"stages": {"streaming": [0.1, NAN]}}, "stages.streaming[1]", "not a finite number"),
    ("stages-inf", {"stages": {"thinking": [INF, 1]}}, "stages.thinking[0]", "not a finite number"),
    ("detail-40-deep", {"detail": json.loads("{\"a\":" * 40 + "1" + "}" * 40)}, "detail.a.a", "nested deeper"),
    ("detail-huge-float", {"detail": {"x": "__BIG__"}}, "detail.x", "not a finite number"),
    ("error-surrogate", {"error": SURR}, "error", "lone surrogate"),
]


@pytest.mark.parametrize("case, changes, field, words", [pytest.param(*c, id=c[0]) for c in NESTED])
def test_bad_nested_value_is_refused_naming_its_path(app, case, changes, field, words):
    bad = {**VALID["task_finished"], **changes}
    r = _post_raw(app, _dumps([bad]).replace('"__BIG__"', "1e400"))
    assert r.status_code == 400
    msg = r.get_json()["error"]
    assert msg.startswith("event[0] (type='task_finished')") and field in msg and words in msg, msg


BODIES = [
    ("empty", b"", "body: not valid JSON"),
    ("not-json", b"hello", "body: not valid JSON"),
    ("truncated", b'[{"type": "token"', "body: not valid JSON"),
    ("object-without-events", b'{"foo": 1}', "body: expected a JSON list"),
    ("number", b"42", "body: expected a JSON list"),
    ("string", b'"events"', "body: expected a JSON list"),
    ("null", b"null", "body: expected a JSON list"),
    ("events-not-list", b'{"events": {"type": "token"}}', "body: expected a JSON list"),
    ("list-of-numbers", b"[1, 2]", "event[0]"),
    ("list-of-lists", b"[[]]", "event[0]"),
    ("not-utf8", b'[{"type": "token", "text": "\xff\xfe"}]', "body: not UTF-8"),
    ("latin1", '[{"type":"token","text":"caf\xe9"}]'.encode("latin-1"), "body: not UTF-8"),
    ("deep-10000-list", b"[" * 10000 + b"]" * 10000, "body: nested too deeply"),
    ("deep-10000-object", b'{"a":' * 10000 + b"1" + b"}" * 10000, "body: nested too deeply"),
    ("deep-50-in-events", b"[" + b"[" * 50 + b"]" * 50 + b"]", "event[0]: field '[0][0][0]"),
    ("top-nan", b"NaN", "body: field '(top level)'"),
    ("huge-int-literal", b'[{"type":"token","seq":' + b"9" * 5000 + b"}]", "body: not valid JSON"),
    ("unknown-type", b'[{"type": "explode", "run_id": "r-live", "seq": 1}]', "event[0]"),
    ("no-type", b'[{"run_id": "r-live", "seq": 1}]', "event[0]"),
    ("type-surrogate", b'[{"type": "\\ud800", "run_id": "r-live", "seq": 1}]', "event[0]: field 'type'"),
    ("bare-surrogate-string", b'["\\udfff"]', "event[0]: field '(top level)'"),
    ("version-2", json.dumps([{**VALID["token"], "v": 2}]).encode(), "event[0] (type='token'): field 'v'"),
    ("resync-surrogate", b'{"events": [], "resync": "\\ud800"}', "body: field 'resync'"),
]


@pytest.mark.parametrize("case, body, words", [pytest.param(*b, id=b[0]) for b in BODIES])
def test_bad_body_is_400_naming_the_place(app, case, body, words):
    r = _post_raw(app, body)
    assert r.status_code == 400, r.data
    msg = r.get_json()["error"]
    assert msg.startswith(words.split(":")[0]) and words in msg, msg


FOREIGN = [(etype, etype) for etype in VALID if etype not in ("run_started", "telemetry")]


@pytest.mark.parametrize("etype", [pytest.param(e, id=e) for e, _ in FOREIGN])
@pytest.mark.parametrize("run_id", ["r-never-started", "r-live ", "R-LIVE", "r-liv"])
def test_event_of_a_run_never_started_is_409_and_touches_nothing(app, etype, run_id):
    """The issue's case: a task_finished for a run that never started, with the live run's model and dataset
    names, changed the live counters. Now refused at the door, naming the event and the field."""
    bad = {**VALID[etype], "run_id": run_id}
    r = _post_raw(app, json.dumps([VALID["token"], bad]))
    assert r.status_code == 409
    msg = r.get_json()["error"]
    assert msg.startswith(f"event[1] (type='{etype}'): field 'run_id'") and repr(run_id) in msg
    assert repr(LIVE) in msg


def test_event_of_a_stored_finished_run_is_not_folded_while_another_runs(app):
    """A run the store knows but that is not live: taken at the door (it may be a worker's or a restart's
    case), but while the live run is running it never touches the live state."""
    ctx = app.extensions["benchwatch"]
    bad = {**VALID["task_finished"], "run_id": "r-stored-old", "seq": 5}
    r = _post_raw(app, json.dumps([bad]))
    assert r.status_code == 200 and r.get_json()["changed"] == 0
    assert ctx.hub.foreign_events >= 1


def test_without_token_nothing_is_read(app):
    r = _post_raw(app, b"[" * 100000, headers={"Content-Type": "application/json"})
    assert r.status_code == 401


def test_over_the_size_limit_is_413(app):
    r = _post_raw(app, b"[" + b" " * (9 * 1024 * 1024) + b"]")
    assert r.status_code == 413


def test_good_events_still_fold_after_all_that(app):
    ctx = app.extensions["benchwatch"]
    ok = {**VALID["token"], "seq": 10_000, "text": " caf\u00e9 \u2028 \U0001F600"}
    r = app.test_client().post(PATH, data=json.dumps([ok]), headers=HEADERS)
    assert r.status_code == 200 and r.get_json()["changed"] == 1
    assert ctx.hub.state["current"]["response"].endswith(" caf\u00e9 \u2028 \U0001F600")
    # The snapshot every new stream gets is still valid JSON (no NaN, no lone surrogate).
    snap = app.test_client().get("/api/benchmark/state")
    assert snap.status_code == 200 and json.loads(snap.data)["state"]["run"]["id"] == LIVE


def test_the_suite_has_at_least_300_cases():
    n = len(FIELD_CASES) + len(NESTED) + len(BODIES) + 4 * len(FOREIGN) + 4
    assert n >= 300, n


def test_the_hub_skips_an_event_the_reducer_fails_on_and_folds_the_rest(monkeypatch):
    """A bug in the reducer for one event must not stop the fold, reach the state, or break a stream."""
    from benchwatch import events as ev
    from benchwatch.server import fold as hub_module  # the hub folds through its FoldLog
    from benchwatch.server.hub import Hub

    real = hub_module.reducer.apply

    def apply(state, event):
        if event.type == "token" and event.text == "boom":
            raise RuntimeError("reducer bug")
        return real(state, event)

    monkeypatch.setattr(hub_module.reducer, "apply", apply)
    hub = Hub()
    ref = {"run_id": "r", "model": "m", "dataset": "d", "task_id": "t", "attempt": 1}
    events = [ev.RunStarted(run_id="r", seq=1, models=[ev.PlanModel(name="m", backend="scripted")],
                            datasets=[ev.PlanDataset(name="d", evaluator="exact_match", task_ids=["t"])]),
              ev.TaskStarted(**ref, seq=2, prompt="p"),
              ev.TokenDelta(**ref, seq=3, kind="visible", text="boom", n_tokens=1),
              ev.TokenDelta(**ref, seq=4, kind="visible", text="ok", n_tokens=1)]
    assert hub.fold(events) == 3
    assert hub.bad_events == 1 and hub.state["current"]["response"] == "ok"
    json.loads(hub._snapshot_message().split(b"data: ", 1)[1])  # every new stream still gets valid JSON
