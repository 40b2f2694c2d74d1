"""The `openai` backend through the real runner against a STAND-IN OpenAI-compatible server
(tests/standins/openai_sse.py), for what a real server won't do on demand: reasoning deltas, stalls, malformed
and truncated streams, a server going away. The real third-party server test is
tests/integration/test_backend_openai_llamacpp.py."""
from __future__ import annotations

import pytest

from benchwatch import events as ev
from tests.standins.base import Behaviour
from tests.standins.harness import run, states
from tests.standins.openai_sse import StandinOpenAI


@pytest.fixture
def server():
    s = StandinOpenAI().start()
    yield s
    s.stop()


def model(s: StandinOpenAI, name: str, **extra) -> dict:
    return {"name": name, "backend": "openai", "base_url": f"{s.url}/v1", **extra}


def test_reasoning_content_is_thinking_usage_and_api_key(tmp_path, server, monkeypatch):
    monkeypatch.setenv("BW_TEST_KEY", "sk-standin")
    server.api_key = "sk-standin"
    server.behaviours = {"Qwen/QwQ": Behaviour(thinking="22 and 10 make 32", delay_s=0.03)}
    outcome, [row], events = run(tmp_path, [model(server, "qwq", model="Qwen/QwQ", api_key_env="BW_TEST_KEY",
                                                  options={"top_p": 0.5})], ["arith-01"])
    assert outcome.counts == {"PASS": 1}, row["error"]
    assert row["thinking"] == "22 and 10 make 32" and row["response"] == "The answer is 32"
    assert row["ttft_ms"] - row["first_token_ms"] >= 5 * 30 * 0.9  # 5 reasoning chunks before the first visible
    assert row["thinking_tokens"] == 5 and row["visible_tokens"] == 4
    assert row["completion_tokens"] == 9 and row["backend_stats"]["usage"]["completion_tokens"] == 9
    assert row["backend_stats"]["finish_reason"] == "stop"
    [req] = server.requests
    assert req["headers"]["Authorization"] == "Bearer sk-standin"
    body = req["body"]
    assert body["model"] == "Qwen/QwQ" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["seed"], body["top_p"]) == (64, 0.0, 42, 0.5)
    assert [s for s, _ in states(events)] == ["connected"]
    assert [e.stage for e in events if isinstance(e, ev.StageChanged)][1:3] == ["thinking", "streaming"]


def test_think_tags_and_a_field_removed_by_null(tmp_path, server):
    server.behaviours = {"r1": Behaviour(thinking="tens first", think_tags=True)}
    outcome, [row], _ = run(tmp_path, [model(server, "r1", options={"stream_options": None})], ["arith-01"])
    assert outcome.counts == {"PASS": 1}
    assert row["thinking"] == "tens first" and row["response"] == "The answer is 32"
    assert "stream_options" not in server.requests[0]["body"]
    assert row["completion_tokens"] is None  # no usage asked for: our own chunk count stands alone
    assert row["visible_tokens"] == 4


def test_missing_api_key_and_unknown_model_are_readable_errors(tmp_path, server, monkeypatch):
    monkeypatch.delenv("BW_NO_SUCH_KEY", raising=False)
    server.behaviours = {"ok": Behaviour()}
    outcome, rows, events = run(tmp_path, [model(server, "keyless", api_key_env="BW_NO_SUCH_KEY"),
                                           model(server, "typo"), model(server, "ok")], ["arith-01"])
    assert outcome.status == "finished"
    final = {r["model"]: r for r in rows if r["final"]}
    assert final["ok"]["verdict"] == "PASS"
    assert "BW_NO_SUCH_KEY (models[].api_key_env) is not set" in final["keyless"]["error"]
    assert "HTTP 404" in final["typo"]["error"] and "does not exist" in final["typo"]["error"]
    assert states(events, "keyless")[0][0] == "disconnected"


@pytest.mark.parametrize("behaviour, reason", [
    (Behaviour(fault="stall", fault_after=1), "no token within 1 s"),  # after the role chunk: no token yet
    (Behaviour(fault="stall", fault_after=3), "answer not complete after 2 s"),
    (Behaviour(fault="malformed", fault_after=2), "malformed chunk"),
    (Behaviour(fault="truncated", fault_after=3), "truncated stream"),
])
def test_faults_are_errors_with_a_reason_retried_and_the_run_goes_on(tmp_path, server, behaviour, reason):
    server.behaviours = {"m": [behaviour, Behaviour()]}
    outcome, rows, _ = run(tmp_path, [model(server, "m")], ["arith-01", "arith-02"],
                           first_token_timeout_s=1.0, task_timeout_s=2.0)
    assert outcome.status == "finished" and outcome.counts == {"PASS": 2}, [(r["attempt"], r["error"]) for r in rows]
    assert [(r["task_id"], r["attempt"], r["verdict"]) for r in rows] == [
        ("arith-01", 1, "ERROR"), ("arith-01", 2, "PASS"), ("arith-02", 1, "PASS")]
    assert reason in rows[0]["error"]
    assert rows[0]["latency_ms"] < 2000 + 1500


def test_backend_down_then_back(tmp_path, server):
    server.behaviours = {"m": Behaviour()}
    server.stop()

    def bring_back(event):
        if isinstance(event, ev.TaskFinished) and event.error:
            server.restart()

    outcome, rows, events = run(tmp_path, [model(server, "m")], ["arith-01", "arith-02"], on_event=bring_back)
    assert outcome.counts == {"PASS": 2}
    assert "connection refused" in rows[0]["error"] and rows[0]["verdict"] == "ERROR"
    assert [s for s, _ in states(events)] == ["disconnected", "connected"]
