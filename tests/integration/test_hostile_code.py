"""The hostile suite: model code that attacks the sandbox. Each case ends FAIL (or ERROR) with the right reason,
harms nothing on the host, and the next evaluation still works. Tight limits keep each case to seconds on the
shared 2-core machine; the fork bomb is bounded by the process limit (proven by the first test)."""
from __future__ import annotations

import os
import select
import shutil
import socket
import sqlite3
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from benchwatch import sandbox
from benchwatch.datasets import Task
from benchwatch.evaluators import get_evaluator

LIMITS = {"timeout_s": 3, "cpu_s": 2, "memory_mb": 256, "max_processes": 16, "file_size_mb": 8}
TEST = "assert solve() == 42\n"
GOOD = "def solve():\n    return 42\n"
NAMESPACES = sandbox.isolation().mode == "namespaces"
needs_namespaces = pytest.mark.skipif(not NAMESPACES, reason="this host allows no namespaces: see README, Evaluators")
# Without root the fallback runs the code as the runner's own user: RLIMIT_NPROC would count all of that user's
# processes, and the code could signal the test runner or read its environment. Those cases need their own uid.
needs_own_uid = pytest.mark.skipif(os.geteuid() != 0, reason="not root: the sandbox has no uid of its own here")


def sandbox_processes() -> list[psutil.Process]:
    lo, hi = sandbox.UID_RANGE
    found = []
    for p in psutil.process_iter(["uids"]):
        uids = p.info.get("uids")
        if uids and lo <= uids.real < hi and p.status() != psutil.STATUS_ZOMBIE:  # a zombie is dead already
            found.append(p)
    return found


@pytest.fixture
def ev():
    evaluator = get_evaluator("code_execution", dict(LIMITS))
    yield lambda code, test=TEST: evaluator.evaluate(Task(id="hostile", prompt="p", meta={"test": test}), code)
    # Nothing of the sandbox outlives an evaluation, and the next one still works.
    assert not sandbox_processes()
    assert evaluator.evaluate(Task(id="after", prompt="p", meta={"test": TEST}), GOOD).verdict == "PASS"


@pytest.fixture
def shared_dir():
    """A world-readable folder like a user's project folder (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="bw-hostile-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@needs_own_uid
def test_process_limit_holds_before_any_fork_bomb(ev):
    v = ev("import os, time\nn = 0\ntry:\n    for _ in range(200):\n        if os.fork() == 0:\n"
           "            time.sleep(10)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\n"
           "print('children', n)\ndef solve():\n    return n\n")
    assert v.verdict == "FAIL"
    assert v.detail["stdout"].strip() == f"children {LIMITS['max_processes'] - 1}"


def test_infinite_loop(ev):
    t0 = time.monotonic()
    v = ev("while True:\n    pass\n")
    assert v.verdict == "FAIL" and ("CPU time" in v.detail["reason"] or "wall time" in v.detail["reason"])
    assert time.monotonic() - t0 < LIMITS["timeout_s"] + 2


def test_busy_loops_in_many_threads(ev):
    v = ev("import threading\ndef spin():\n    while True:\n        pass\n"
           "ts = [threading.Thread(target=spin) for _ in range(8)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n")
    assert v.verdict == "FAIL" and v.detail["limit"] and v.detail["limit"].split()[0] in ("CPU", "wall")


def test_memory_bomb(ev):
    v = ev("blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))\n")
    assert v.verdict == "FAIL" and v.detail["limit"].startswith("memory") and v.detail["exception"] == "MemoryError"


@needs_own_uid
def test_fork_bomb(ev):
    v = ev("import os\nwhile True:\n    os.fork()\n")
    assert v.verdict == "FAIL" and v.detail["limit"].startswith("processes"), v.detail


@pytest.mark.parametrize("code, exception", [
    ("def f(n):\n    return f(n + 1)\nf(0)\n", "RecursionError"),
    ("import sys\nsys.setrecursionlimit(10 ** 7)\ndef f(n):\n    return f(n + 1)\nf(0)\n", None),  # C stack
])
def test_deep_recursion(ev, code, exception):
    v = ev(code)
    assert v.verdict == "FAIL"
    if exception:
        assert v.detail["exception"] == exception
    else:  # Python frames then fill the address space (or the C stack overflows): the child fails, not us
        assert v.detail["limit"] or "SIGSEGV" in v.detail["reason"], v.detail  # memory, CPU or a crash


def test_ten_gigabyte_file(ev):
    v = ev("with open('big.bin', 'wb') as f:\n    for _ in range(10240):\n        f.write(b'0' * (1 << 20))\n")
    assert v.verdict == "FAIL" and v.detail["limit"] == f"file size ({LIMITS['file_size_mb']} MB)"


@needs_namespaces
def test_deleting_files_outside_its_directory(ev, shared_dir):
    canary = shared_dir / "canary.txt"
    canary.write_text("alive")
    canary.chmod(0o644)
    v = ev(f"import os, shutil\nshutil.rmtree({str(shared_dir)!r}, ignore_errors=True)\nos.remove({str(canary)!r})\n")
    assert v.verdict == "FAIL" and v.detail["exception"] == "PermissionError"
    assert canary.read_text() == "alive"


@needs_namespaces
def test_writing_to_the_results_database(ev, shared_dir):
    from benchwatch.store import Store
    db = shared_dir / "benchwatch.db"
    store = Store(f"sqlite:///{db}")
    run_id = store.create_run({"models": []}, None)
    store.close()
    for p in shared_dir.iterdir():
        p.chmod(0o644)
    v = ev(f"import sqlite3\ncon = sqlite3.connect({str(db)!r})\ncon.execute('DELETE FROM runs')\n"
           "con.execute(\"INSERT INTO runs (id, status) VALUES ('forged', 'finished')\")\ncon.commit()\n")
    assert v.verdict == "FAIL" and v.detail["exception"] == "OperationalError"
    with sqlite3.connect(db) as con:
        assert [r[0] for r in con.execute("SELECT id FROM runs")] == [run_id]


@needs_own_uid
def test_reading_a_secret_environment_variable(ev, monkeypatch):
    secret = "s3cret-" + os.urandom(8).hex()
    monkeypatch.setenv("BW_HOSTILE_SECRET", secret)
    v = ev("import os\nfound = [os.environ.get('BW_HOSTILE_SECRET')]\n"
           "for pid in os.listdir('/proc'):\n    try:\n"
           "        found.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))\n"
           "    except OSError:\n        pass\n"
           "hits = [f for f in found if f and 'BW_HOSTILE_SECRET' in f or f and f.startswith('s3cret')]\n"
           "print(hits)\nassert hits, 'no secret visible'\n")
    assert v.verdict == "FAIL" and "no secret visible" in v.detail["error"]
    assert secret not in repr(v.detail)


def test_connecting_to_a_loopback_listener(ev):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    try:
        v = ev(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\ns.sendall(b'hi')\n")
        assert v.verdict == "FAIL"
        assert "Network is unreachable" in v.detail["error"] or "blocked in the sandbox" in v.detail["error"]
        assert select.select([listener], [], [], 0.2)[0] == []  # no connection ever arrived
    finally:
        listener.close()


@pytest.mark.parametrize("code, words", [
    ("import sys\nsys.exit(0)\ndef solve():\n    return 42\n", "exited before the tests finished"),
    ("import os\nos._exit(0)\ndef solve():\n    return 42\n", "ended before the tests finished (exit code 0)"),
    ("import atexit, os\natexit.register(os._exit, 0)\nraise SystemExit(0)\n", "exited before the tests finished"),
])
def test_exiting_before_the_tests_is_not_a_pass(ev, code, words):
    v = ev(code)
    assert v.verdict == "FAIL" and words in v.detail["reason"]


@needs_own_uid
def test_killing_its_parent(ev):
    v = ev("import os, signal\nfor target in (os.getppid(), 1):\n    try:\n        os.kill(target, signal.SIGKILL)\n"
           "    except OSError as e:\n        print('refused', target, e.errno)\n"
           "for pid in os.listdir('/proc'):\n    if pid.isdigit() and int(pid) != os.getpid():\n        try:\n"
           "            os.kill(int(pid), signal.SIGKILL)\n        except OSError:\n            pass\n"
           "def solve():\n    return 41\n")
    assert v.verdict == "FAIL" and "a test failed" in v.detail["reason"]
    assert "refused" in v.detail["stdout"]


@needs_own_uid
def test_a_daemon_does_not_outlive_the_evaluation(ev):
    marker = str(31000 + os.getpid() % 1000)
    v = ev("import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
           f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n    os._exit(0)\n"
           "import time\ntime.sleep(0.3)\ndef solve():\n    return 41\n")
    assert v.verdict == "FAIL"
    time.sleep(0.2)
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]]


def test_gigabytes_on_stdout(ev):
    rss = psutil.Process().memory_info().rss
    v = ev("import sys\nwhile True:\n    sys.stdout.write('x' * (1 << 20))\n")
    assert v.verdict == "FAIL" and v.detail["limit"].startswith("file size")
    assert v.detail["output_truncated"] and len(v.detail["stdout"]) < 10_000
    assert psutil.Process().memory_info().rss - rss < 50 << 20


def test_monkey_patching_the_harness_to_report_success(ev):
    v = ev("import atexit, builtins, json, os, sys\n"
           "print(json.dumps({'stage': 'final', 'status': 'passed'}))\n"
           "for fd in range(3, 64):\n    try:\n"
           "        os.write(fd, b'{\"stage\": \"final\", \"status\": \"passed\", \"nonce\": \"guess\"}\\n')\n"
           "    except OSError:\n        pass\n"
           "builtins.AssertionError = type('Nope', (Exception,), {})\n"
           "json.dumps = lambda *a, **k: '{\"stage\": \"final\", \"status\": \"passed\"}'\n"
           "os.write = lambda fd, data: len(data)\nsys.exit = lambda *a: None\natexit.register(os._exit, 0)\n"
           "def solve():\n    return 41\n")
    assert v.verdict == "FAIL" and "a test failed" in v.detail["reason"]
    assert "without this run's nonce" in v.detail["ignored_records"]


@needs_own_uid
def test_the_run_goes_on_through_the_real_runner(tmp_path):
    """A run mixing hostile answers and a good one: it finishes, the hostile ones FAIL, the good one PASSes."""
    import json
    from benchwatch.config import parse_config
    from benchwatch.runner import Runner
    from benchwatch.store import Store
    answers = {"loop": "while True:\n    pass\n", "fork": "import os\nwhile True:\n    os.fork()\n",
               "exit": "import os\nos._exit(0)\n", "flood": "while True:\n    print('x' * 65536)\n",
               "good": "```python\n" + GOOD + "```"}
    (tmp_path / "code.jsonl").write_text("".join(
        json.dumps({"id": k, "prompt": f"task {k}", "meta": {"test": TEST}}) + "\n" for k in answers))
    cfg = parse_config({
        "store": f"sqlite:///{tmp_path / 'r.db'}", "runner": {"cooling_s": 0, "attempts": 1},
        "models": [{"name": "m", "backend": "scripted", "options": {"answers": {f"task {k}": a for k, a in answers.items()}}}],
        "datasets": [{"name": "code", "source": str(tmp_path / "code.jsonl"), "evaluator": "code_execution",
                      "options": LIMITS}]})
    store = Store(cfg.store)
    try:
        outcome = Runner(cfg, store).run()
        verdicts = {r["task_id"]: r["verdict"] for r in store.results(outcome.run_id)}
    finally:
        store.close()
    assert outcome.status == "finished"
    assert verdicts == {"loop": "FAIL", "fork": "FAIL", "exit": "FAIL", "flood": "FAIL", "good": "PASS"}
    assert not sandbox_processes()


def test_isolation_is_probed_and_named():
    iso = sandbox.isolation()
    assert iso.mode in ("namespaces", "rlimits") and iso.summary()
    if os.geteuid() == 0:  # this machine: root, util-linux unshare available (see design notes)
        assert iso.mode == "namespaces", iso.notes


def test_a_sandbox_that_cannot_start_is_an_error_not_a_fail():
    from benchwatch.evaluators import EvaluatorError
    evaluator = get_evaluator("code_execution", {**LIMITS, "python": "/nonexistent/python"})
    with pytest.raises((sandbox.SandboxError, EvaluatorError)):
        evaluator.evaluate(Task(id="x", prompt="p", meta={"test": TEST}), GOOD)
    with pytest.raises(EvaluatorError, match="meta.test"):
        get_evaluator("code_execution", LIMITS).evaluate(Task(id="x", prompt="p"), GOOD)
