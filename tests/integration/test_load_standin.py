"""The load stand-in (tests/standins/load_openai.py), the instrument behind the concurrency figures, in its own
process on loopback: it answers in the OpenAI streaming format, keeps connections open, times its answers from the
moment a request reached the kernel, and says so in /timeline."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

TTFT_MS, TOKENS, GAP_MS = 120.0, 4, 10.0


@pytest.fixture(scope="module")
def standin_proc():
    proc = subprocess.Popen([sys.executable, "-m", "tests.standins.load_openai", "--ttft-ms", str(TTFT_MS),
                             "--tokens", str(TOKENS), "--gap-ms", str(GAP_MS)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening "), line
        proc.url = f"http://127.0.0.1:{int(line.split()[1])}"
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def chat(client: httpx.Client, url: str, prompt: str) -> list[str]:
    with client.stream("POST", f"{url}/v1/chat/completions", content=body_of(prompt),
                       headers={"Content-Type": "application/json"}) as resp:
        assert resp.status_code == 200
        return [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]


def body_of(prompt: str) -> bytes:
    return json.dumps({"model": "load", "stream": True, "messages": [{"role": "user", "content": prompt}]}).encode()


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)))


def read_answer(sock: socket.socket) -> bytes:
    """The raw answer, up to its `data: [DONE]`."""
    answer = b""
    while b"[DONE]" not in answer:
        piece = sock.recv(65536)
        assert piece, answer
        answer += piece
    return answer


def test_answers_in_the_streaming_format_on_one_kept_open_connection(standin_proc):
    standin = standin_proc.url
    httpx.post(f"{standin}/reset")
    with httpx.Client() as client:
        for a in (2, 40):
            events = chat(client, standin, f"What is {a} plus 3?")
            assert events[-1] == "[DONE]"
            chunks = [json.loads(e) for e in events[:-1]]
            text = "".join(c["choices"][0]["delta"]["content"] for c in chunks if c["choices"])
            assert text.split()[-1] == str(a + 3)
            assert chunks[-1]["usage"]["completion_tokens"] == TOKENS
    stats = httpx.get(f"{standin}/stats").json()
    assert stats["served"] == 2


def test_times_the_answer_from_the_first_part_of_the_request(standin_proc):
    standin = standin_proc.url
    """The request is written in two parts 300 ms apart: the stand-in's clock starts with the first part's arrival
    (the kernel's time for it), so the first token is due 120 ms after that, not after the whole request was in.
    The margins are wide, for a loaded machine: the two cases are 300 ms apart."""
    httpx.post(f"{standin}/reset")
    prompt = "What is 7 plus 5?"
    body = body_of(prompt)
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with connect(standin) as sock:
        sent = time.monotonic()
        sock.sendall(head)
        time.sleep(0.3)
        sock.sendall(body)
        answer = read_answer(sock)
    reached, read_at, written = httpx.get(f"{standin}/timeline").json()[prompt]
    # the head's arrival, not the body's 300 ms later (the kernel's clock is read on another: a few µs either way)
    assert sent - 0.001 <= reached < sent + 0.15
    assert reached <= read_at
    # libuv's timers count whole milliseconds: a token may be written up to a millisecond before its time
    assert TTFT_MS / 1000 - 0.002 <= written - reached < TTFT_MS / 1000 + 0.25
    assert b"12" in answer


def test_a_client_that_hangs_up_mid_answer_leaves_the_stand_in_serving(standin_proc):
    standin = standin_proc.url
    body = body_of("What is 1 plus 1?")
    for _ in range(3):
        with connect(standin) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            sock.recv(10)  # the status line has begun: the answer is under way
    time.sleep((TTFT_MS + TOKENS * GAP_MS) / 1000 + 0.1)
    with httpx.Client() as client:
        assert chat(client, standin, "What is 2 plus 2?")[-1] == "[DONE]"


def test_a_request_read_late_is_still_timed_from_its_arrival(standin_proc):
    """The stand-in's process is stopped (SIGSTOP) while the request arrives, and reads it 80 ms later: its
    clock still starts at the kernel's arrival time, so this server's own lateness in reading is not counted."""
    standin = standin_proc.url
    httpx.post(f"{standin}/reset")
    prompt = "What is 9 plus 4?"
    body = body_of(prompt)
    with connect(standin) as sock:
        time.sleep(0.05)  # the stand-in has accepted the connection
        os.kill(standin_proc.pid, signal.SIGSTOP)
        try:
            sent = time.monotonic()
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (len(body), body))
            time.sleep(0.08)
        finally:
            os.kill(standin_proc.pid, signal.SIGCONT)
        read_answer(sock)
    reached, read_at, written = httpx.get(f"{standin}/timeline").json()[prompt]
    assert sent - 0.001 <= reached < sent + 0.03 < sent + 0.08 <= read_at
    assert TTFT_MS / 1000 - 0.002 <= written - reached < TTFT_MS / 1000 + 0.25
