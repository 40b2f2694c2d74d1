"""The fallback sandbox (where namespaces are not allowed), forced here with BENCHWATCH_SANDBOX=rlimits:
limits still hold, sockets are refused in the child, and nothing outlives the evaluation."""
from __future__ import annotations

import os
import socket

import pytest

from benchwatch import sandbox
from benchwatch.datasets import Task
from benchwatch.evaluators import get_evaluator
from tests.integration.test_hostile_code import GOOD, LIMITS, TEST, sandbox_processes


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="not root: the fallback has no uid of its own here")


@pytest.fixture
def fallback(monkeypatch):
    monkeypatch.setenv("BENCHWATCH_SANDBOX", "rlimits")
    sandbox.isolation.cache_clear()
    evaluator = get_evaluator("code_execution", dict(LIMITS))
    yield lambda code: evaluator.evaluate(Task(id="t", prompt="p", meta={"test": TEST}), code)
    sandbox.isolation.cache_clear()
    assert not sandbox_processes()


def test_fallback_mode_says_what_it_lacks(fallback):
    iso = sandbox.isolation()
    assert iso.mode == "rlimits" and "sockets blocked" in iso.network and iso.notes
    v = fallback(GOOD)
    assert v.verdict == "PASS" and v.detail["isolation"].startswith("rlimits")


def test_fallback_limits_and_network(fallback):
    assert fallback("while True:\n    pass\n").detail["limit"].split()[0] in ("CPU", "wall")
    assert fallback("import os\nwhile True:\n    os.fork()\n").detail["limit"].startswith("processes")
    assert fallback("x = bytearray(1 << 30)\n").detail["limit"].startswith("memory")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        v = fallback(f"import socket\nsocket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), 1)\n")
        assert v.verdict == "FAIL" and "network access is blocked" in v.detail["error"]
    finally:
        listener.close()


def test_fallback_kills_a_daemon_that_left_the_session(fallback):
    import psutil, time  # noqa: E401
    v = fallback("import os\nif os.fork() == 0:\n    os.setsid()\n    os.execv('/bin/sleep', ['sleep', '31999'])\n"
                 "def solve():\n    return 41\n")
    assert v.verdict == "FAIL"
    time.sleep(0.2)
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "31999"]]
