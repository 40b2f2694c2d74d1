"""The weaker modes, forced on this capable host: "rlimits" (no bubblewrap: BENCHWATCH_SANDBOX=rlimits) and
"bwrap" (no cgroup: BENCHWATCH_SANDBOX_CGROUP=off). Limits still hold, sockets are refused, nothing outlives
the evaluation, the mode is named in every verdict, and `sandbox: require` refuses to start in either."""
from __future__ import annotations

import os
import socket

import pytest

from benchwatch import sandbox
from benchwatch.datasets import Task
from benchwatch.evaluators import get_evaluator
from tests.integration.test_hostile_code import GOOD, LIMITS, TEST, sandbox_processes


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="not root: the fallback has no uid of its own here")


def _reprobe():
    sandbox.shutdown()
    sandbox.isolation.cache_clear()
    sandbox.cgroups.probe.cache_clear()


@pytest.fixture
def fallback(monkeypatch):
    monkeypatch.setenv("BENCHWATCH_SANDBOX", "rlimits")
    _reprobe()
    evaluator = get_evaluator("code_execution", dict(LIMITS))
    yield lambda code: evaluator.evaluate(Task(id="t", prompt="p", meta={"test": TEST}), code)
    monkeypatch.delenv("BENCHWATCH_SANDBOX")
    _reprobe()
    assert not sandbox_processes()


@pytest.fixture
def no_cgroup(monkeypatch):
    monkeypatch.setenv("BENCHWATCH_SANDBOX_CGROUP", "off")
    _reprobe()
    evaluator = get_evaluator("code_execution", dict(LIMITS))
    yield lambda code: evaluator.evaluate(Task(id="t", prompt="p", meta={"test": TEST}), code)
    monkeypatch.delenv("BENCHWATCH_SANDBOX_CGROUP")
    _reprobe()
    assert not sandbox_processes()


def test_fallback_mode_says_what_it_lacks(fallback):
    iso = sandbox.isolation()
    assert iso.mode == "rlimits" and "sockets blocked" in iso.network and iso.notes
    v = fallback(GOOD)
    assert v.verdict == "PASS" and v.detail["isolation"].startswith("rlimits")


def test_fallback_limits_and_network(fallback):
    assert fallback("while True:\n    pass\n").detail["limit"].split()[0] in ("CPU", "wall")
    fork, mem = fallback("import os\nwhile True:\n    os.fork()\n"), fallback("x = bytearray(1 << 30)\n")
    if sandbox.isolation().cgroup is not None:  # the cgroup still counts (it does not need bubblewrap)
        assert fork.detail["limit"].startswith("processes") and mem.detail["limit"].startswith("memory")
    else:  # per process: the code meets the limit as an error of its own
        assert fork.detail["exception"] == "BlockingIOError" and mem.detail["exception"] == "MemoryError"
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


@pytest.mark.skipif(sandbox.isolation().mode == "rlimits", reason="no bubblewrap here")
def test_without_a_cgroup_limits_are_per_process_and_the_mode_says_so(no_cgroup):
    iso = sandbox.isolation()
    assert iso.mode == "bwrap" and iso.limits.startswith("per process only") and iso.notes
    assert no_cgroup(GOOD).detail["isolation"].startswith("bwrap: ")
    mem = no_cgroup("x = bytearray(1 << 30)\n")  # over the address-space rlimit: the code's own MemoryError
    assert mem.verdict == "FAIL" and mem.detail["exception"] == "MemoryError" and mem.detail["limit"] is None
    fork = no_cgroup("import os\nwhile True:\n    os.fork()\n")  # RLIMIT_NPROC of the evaluation's own uid
    assert fork.verdict == "FAIL" and fork.detail["exception"] == "BlockingIOError", fork.detail


FULL = pytest.mark.skipif(sandbox.isolation().mode != "full", reason="needs the full isolation (docs/sandbox.md)")


@FULL
@pytest.mark.parametrize("env", [{"BENCHWATCH_SANDBOX": "rlimits"}, {"BENCHWATCH_SANDBOX_CGROUP": "off"}])
def test_sandbox_require_refuses_to_start_without_the_full_isolation(tmp_path, monkeypatch, env):
    import json
    from benchwatch.config import parse_config
    from benchwatch.evaluators import EvaluatorError
    from benchwatch.runner import Runner
    from benchwatch.store import Store
    (tmp_path / "code.jsonl").write_text(json.dumps({"id": "a", "prompt": "p", "meta": {"test": TEST}}) + "\n")
    raw = {"store": f"sqlite:///{tmp_path / 'r.db'}", "runner": {"cooling_s": 0}, "sandbox": "require",
           "models": [{"name": "m", "backend": "scripted", "options": {"answers": {"p": GOOD}}}],
           "datasets": [{"name": "code", "source": str(tmp_path / "code.jsonl"), "evaluator": "code_execution"}]}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    _reprobe()
    store = Store(raw["store"])
    try:
        with pytest.raises(EvaluatorError, match="sandbox: require, but this host gives the code sandbox only"):
            Runner(parse_config(raw), store).run()
        assert store.list_runs() == []  # refused before a run row exists
        for k in env:
            monkeypatch.delenv(k)
        _reprobe()
        outcome = Runner(parse_config(raw), store).run()  # the full isolation: it runs
        assert outcome.status == "finished"
        assert [r["verdict"] for r in store.results(outcome.run_id)] == ["PASS"]
    finally:
        store.close()
    store = Store(raw["store"])
    try:
        with pytest.raises(EvaluatorError, match="refuses same_process"):
            Runner(parse_config({**raw, "datasets": [{**raw["datasets"][0], "options": {"same_process": True}}]}),
                   store).run()
    finally:
        store.close()


@FULL
def test_the_cli_names_the_mode_at_start_up_and_refuses_under_require(tmp_path, write_config):
    import json
    import subprocess
    from tests.conftest import PYTHON, ROOT, cli_env
    (tmp_path / "code.jsonl").write_text(json.dumps({"id": "a", "prompt": "p", "meta": {"test": TEST}}) + "\n")
    raw = {"runner": {"cooling_s": 0}, "sandbox": "require",
           "models": [{"name": "m", "backend": "scripted", "options": {"answers": {"p": GOOD}}}],
           "datasets": [{"name": "code", "source": str(tmp_path / "code.jsonl"), "evaluator": "code_execution"}]}
    cfg = write_config(raw)
    run = [PYTHON, str(ROOT / "run_benchmark.py"), "--config", str(cfg)]
    refused = subprocess.run(run, capture_output=True, text=True, env=cli_env() | {"BENCHWATCH_SANDBOX": "rlimits"},
                             timeout=120, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "code sandbox active: rlimits" in refused.stderr
    assert "sandbox: require, but this host gives the code sandbox only rlimits" in " ".join(refused.stderr.split())
    ok = subprocess.run(run, capture_output=True, text=True, env=cli_env(), timeout=120, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "code sandbox active: full" in ok.stderr
