"""The `ollama` backend through the real runner, against a STAND-IN Ollama server (tests/standins/ollama.py:
Ollama can't run here; the stand-in follows its documented NDJSON wire format)."""
from __future__ import annotations

import pytest

from benchwatch import events as ev
from tests.standins.base import Behaviour
from tests.standins.harness import run, states
from tests.standins.ollama import StandinOllama


@pytest.fixture
def ollama():
    server = StandinOllama().start()
    yield server
    server.stop()


def model(server: StandinOllama, name: str, **extra) -> dict:
    return {"name": name, "backend": "ollama", "base_url": server.url, **extra}


def test_thinking_then_streaming_with_ttft_at_first_visible_token(tmp_path, ollama):
    ollama.behaviours = {"qwen3:0.6b": Behaviour(thinking="I add the tens then the ones", delay_s=0.04)}
    outcome, rows, events = run(tmp_path, [model(ollama, "qwen3:0.6b", think=True, keep_alive="5m", n_ctx=4096,
                                                 options={"top_k": 20})], ["arith-01"])
    assert outcome.counts == {"PASS": 1}
    [row] = rows
    assert row["thinking"] == "I add the tens then the ones" and row["response"] == "The answer is 32"
    # 7 thinking chunks 40 ms apart come before the first visible one: TTFT is the first *visible* token
    assert row["first_token_ms"] < row["ttft_ms"]
    assert row["ttft_ms"] - row["first_token_ms"] >= 7 * 40 * 0.9
    assert row["thinking_tokens"] == 7 and row["visible_tokens"] == 4
    assert row["stages"]["streaming"][0] * 1000 >= row["ttft_ms"]  # Streaming starts at the first visible token
    assert row["stages"]["thinking"][1] == row["stages"]["streaming"][0]
    # Ollama's own counts and durations are stored beside ours
    stats = row["backend_stats"]
    assert stats["eval_count"] == 11 and stats["prompt_eval_count"] > 0
    assert {"eval_duration", "prompt_eval_duration", "load_duration", "total_duration"} <= set(stats)
    assert row["completion_tokens"] == 11
    # the request: native chat API, options from the config
    [req] = ollama.requests
    body = req["body"]
    assert body["model"] == "qwen3:0.6b" and body["stream"] is True and body["think"] is True
    assert body["keep_alive"] == "5m"
    assert body["options"] == {"temperature": 0.0, "seed": 42, "num_predict": 64, "num_ctx": 4096, "top_k": 20}
    # connection state: loading (model not in memory) until the first token, then connected
    assert [s for s, _ in states(events)] == ["loading", "connected"]
    stage_seq = [e.stage for e in events if isinstance(e, ev.StageChanged)]
    assert stage_seq == ["cooling", "thinking", "streaming", "evaluating", "done"]
    kinds = [e.kind for e in events if isinstance(e, ev.TokenDelta)]
    assert kinds[0] == "thinking" and kinds[-1] == "visible" and "thinking" not in kinds[kinds.index("visible"):]


def test_think_tags_in_content_become_thinking(tmp_path, ollama):
    # 10 ms between chunks: the thinking arrives before the answer (stamped as it comes off the socket, pieces
    # that arrive in one read share a time).
    ollama.behaviours = {"deepseek-r1": Behaviour(thinking="ten plus twenty two", think_tags=True, delay_s=0.01)}
    ollama.loaded.add("deepseek-r1")
    outcome, [row], events = run(tmp_path, [model(ollama, "deepseek-r1")], ["arith-01"])
    assert outcome.counts == {"PASS": 1}
    assert row["thinking"] == "ten plus twenty two" and row["response"] == "The answer is 32"
    assert row["first_token_ms"] < row["ttft_ms"]
    body = ollama.requests[0]["body"]
    assert "think" not in body and "keep_alive" not in body and "num_ctx" not in body["options"]
    assert [s for s, _ in states(events)] == ["connected"]  # already in memory: /api/ps lists it


def test_model_not_pulled_is_an_error_naming_the_pull_command_and_the_run_goes_on(tmp_path, ollama):
    ollama.behaviours = {"llama3.2:1b": Behaviour()}
    outcome, rows, _ = run(tmp_path, [model(ollama, "missing", model="qwen9:99b"), model(ollama, "llama3.2:1b")],
                           ["arith-01"])
    assert outcome.status == "finished" and outcome.counts == {"ERROR": 1, "PASS": 1}
    missing = [r for r in rows if r["model"] == "missing"]
    assert [r["attempt"] for r in missing] == [1, 2]  # retried
    assert "ollama pull qwen9:99b" in missing[-1]["error"] and "'qwen9:99b'" in missing[-1]["error"]
    assert "Traceback" not in missing[-1]["error"]


@pytest.mark.parametrize("behaviour, reason", [
    (Behaviour(fault="stall", fault_after=0), "no token within 1 s"),
    (Behaviour(fault="stall", fault_after=2), "answer not complete after 2 s"),
    (Behaviour(fault="malformed", fault_after=2), "malformed chunk"),
    (Behaviour(fault="truncated", fault_after=2), "truncated stream"),
    (Behaviour(fault="error", fault_after=2), "reported an error mid-answer"),
])
def test_faults_are_errors_with_a_reason_retried_and_the_run_goes_on(tmp_path, ollama, behaviour, reason):
    ollama.behaviours = {"m": [behaviour, Behaviour()]}  # the first request misbehaves, the retry is fine
    outcome, rows, _ = run(tmp_path, [model(ollama, "m")], ["arith-01", "arith-02"],
                           first_token_timeout_s=1.0, task_timeout_s=2.0)
    assert outcome.status == "finished" and outcome.counts == {"PASS": 2}, [(r["attempt"], r["error"]) for r in rows]
    assert [(r["task_id"], r["attempt"], r["verdict"]) for r in rows] == [
        ("arith-01", 1, "ERROR"), ("arith-01", 2, "PASS"), ("arith-02", 1, "PASS")]
    assert reason in rows[0]["error"]
    assert rows[0]["latency_ms"] < 2000 + 1500  # cut at the deadline, not at the stand-in's 30 s stall


def test_server_down_mid_run_publishes_disconnected_then_connected(tmp_path, ollama):
    ollama.behaviours = {"m": [Behaviour(), Behaviour(fault="die", fault_after=2), Behaviour()]}
    ollama.loaded.add("m")

    def bring_back(event):  # once an attempt has found the server gone, it comes back
        if isinstance(event, ev.TaskFinished) and event.error and "connection refused" in event.error:
            ollama.restart()

    outcome, rows, events = run(tmp_path, [model(ollama, "m")], ["arith-01", "arith-02", "arith-03"],
                                on_event=bring_back, attempts=3, retry_backoff_s=0.05)
    assert outcome.status == "finished" and outcome.counts == {"PASS": 3}
    assert [(r["task_id"], r["attempt"], r["verdict"]) for r in rows] == [
        ("arith-01", 1, "PASS"), ("arith-02", 1, "ERROR"), ("arith-02", 2, "ERROR"), ("arith-02", 3, "PASS"),
        ("arith-03", 1, "PASS")]
    assert "closed the connection mid-answer" in rows[1]["error"]
    assert "connection refused" in rows[2]["error"]
    assert [s for s, _ in states(events)] == ["connected", "disconnected", "connected"]


def test_server_down_at_start_is_disconnected_and_every_task_errors_readably(tmp_path, ollama):
    ollama.stop()
    outcome, rows, events = run(tmp_path, [model(ollama, "m")], ["arith-01", "arith-02"], connect_timeout_s=1)
    assert outcome.status == "finished" and outcome.counts == {"ERROR": 2}
    assert len(rows) == 4 and all("connection refused (is the server running?)" in r["error"] for r in rows)
    [(state, detail)] = states(events)
    assert state == "disconnected" and ollama.url in detail
