"""The sandbox's two sides: assertions counted (on the trusted side) without moving line numbers, failures named
by their test line, a forked copy of the candidate cannot add a verdict, broken tests are the harness's error,
tests that need objects across the boundary are an ERROR unless the task opts into the (forgeable)
same-process mode, and HumanEval-style helpers from the prompt are defined where the tests run."""
from __future__ import annotations

import gc
import threading
import time

import pytest

from benchwatch import sandbox
from benchwatch.datasets import Task
from benchwatch.evaluators import get_evaluator

TESTS = '''def check(c):
    assert c(1) == 2, "one; two"
    if True: assert c(2) == 3
    for i in range(3):
        assert (c(i)
                == i + 1)
    x = 1; assert x; y = 2
    s = "é"; assert s == "é"
'''


def test_instrumenting_keeps_every_line_where_it_was():
    out = sandbox.instrument_tests(TESTS)
    assert len(out.splitlines()) == len(TESTS.splitlines())
    assert out.count("__bw_tick__()") == 5
    compile(out, "<tests>", "exec")


class _YieldsOnCollect:
    """Cyclic garbage whose finalizer gives up the GIL, as subprocess and file objects can."""

    def __init__(self):
        self.me = self

    def __del__(self):
        time.sleep(0)


def test_instrumenting_from_several_threads_at_once():
    # CPython 3.11 raised "AST constructor recursion depth mismatch" when a collection inside one thread's parse
    # let another thread parse (CI saw it evaluating HumanEval in two threads). Frequent collections with
    # GIL-yielding finalizers make that switch likely: unguarded, this failed every run.
    errors, source = [], "def check(c):\n" + "".join(f"    assert c([1, [2, (3, 4)]]) == {k}\n" for k in range(20))

    def instrument(n):
        for i in range(300):
            [_YieldsOnCollect() for _ in range(5)]
            try:
                sandbox.instrument_tests(f"{source}# {n} {i}\n")  # a new text each time: no cache hit
            except SystemError as e:
                errors.append(e)

    threshold = gc.get_threshold()
    gc.set_threshold(20)
    try:
        threads = [threading.Thread(target=instrument, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        gc.set_threshold(*threshold)
    assert errors == []


def test_assertions_counted_and_the_failing_line_named():
    ok = sandbox.run("def f(x):\n    return x + 1\n", TESTS, "f")
    assert ok.final["status"] == "passed" and ok.final["asserts_passed"] == 7  # the loop's assert thrice
    bad = sandbox.run("def f(x):\n    return x + (x != 2)\n", TESTS, "f")
    assert bad.final["status"] == "failed" and bad.final["asserts_passed"] == 1
    assert bad.final["failing_line"] == 3 and bad.final["failing_test"] == "if True: assert c(2) == 3"


def test_a_forked_copy_reporting_success_does_not_outvote_a_failure():
    # The child copy returns the right answer and writes fake results everywhere; the original answers wrong.
    code = ("import os, json\n_child = os.fork() == 0\nif _child:\n    for fd in range(3, 40):\n        try:\n"
            "            os.write(fd, json.dumps({'status': 'passed', 'stage': 'final'}).encode())\n"
            "        except OSError:\n            pass\ndef f(x):\n    return x + 1 if _child else x\n")
    out = sandbox.run(code, TESTS, "f")
    assert out.final["status"] == "failed"


def test_broken_tests_are_an_error_not_a_fail():
    ev = get_evaluator("code_execution", {"timeout_s": 5})
    with pytest.raises(sandbox.SandboxError, match="tests do not compile"):
        ev.evaluate(Task(id="t", prompt="p", meta={"test": "assert (\n"}), "x = 1")


def ev_task(test, entry_point=None, **meta):
    return Task(id="t", prompt="p", meta={"test": test, **({"entry_point": entry_point} if entry_point else {}), **meta})


def test_tests_that_need_objects_are_an_error_unless_the_task_opts_into_same_process():
    from benchwatch.evaluators import EvaluatorError
    ev = get_evaluator("code_execution", {"timeout_s": 5})
    klass = "class Counter:\n    def __init__(self):\n        self.n = 0\n    def add(self):\n        self.n += 1\n        return self.n\n"
    test = "c = Counter()\nc.add()\nassert c.add() == 2\n"
    with pytest.raises(EvaluatorError, match="'Counter', a class of the answer.*same_process"):
        ev.evaluate(ev_task(test), klass)
    with pytest.raises(EvaluatorError, match="argument that is not plain data"):
        ev.evaluate(ev_task("assert apply(lambda x: x + 1, 1) == 2\n"), "def apply(f, x):\n    return f(x)\n")
    v = ev.evaluate(ev_task(test, same_process=True), klass)
    assert v.verdict == "PASS" and v.detail["forgeable"] is True and "forgeable" in v.detail["verdict_by"]
    assert v.detail["isolation"] == sandbox.isolation().summary()
    if sandbox.isolation().mode == "full":  # `sandbox: require`: a task's opt-in is refused, not forgeable
        strict = get_evaluator("code_execution", {"timeout_s": 5})
        strict.require_full_isolation("d")
        with pytest.raises(EvaluatorError, match="sandbox: require refuses"):
            strict.evaluate(ev_task(test, same_process=True), klass)
    # and a forgery that the same-process mode cannot stop is exactly why it says so
    forged = get_evaluator("code_execution", {"timeout_s": 5, "same_process": True}).evaluate(
        ev_task("assert solve() == 42\n"), "class A:\n    __eq__ = lambda s, o: True\ndef solve():\n    return A()\n")
    assert forged.verdict == "PASS" and forged.detail["forgeable"] is True
    trusted = ev.evaluate(ev_task("assert solve() == 42\n"),
                          "class A:\n    __eq__ = lambda s, o: True\ndef solve():\n    return A()\n")
    assert trusted.verdict == "FAIL" and trusted.detail["forgeable"] is False


def test_prompt_helpers_are_defined_on_the_trusted_side():
    # HumanEval/38-style: the tests call a helper the prompt defines, and the candidate's own copy is not used.
    prompt = "def encode(s):\n    return s[::-1]\n\ndef decode(s):\n    \"\"\"Undo encode.\"\"\"\n"
    test = "def check(candidate):\n    assert candidate(encode('abc')) == 'abc'\n"
    ev = get_evaluator("code_execution", {"timeout_s": 5})
    task = ev_task(test, "decode", code_prompt=prompt)
    assert ev.evaluate(task, "    return s[::-1]\n").verdict == "PASS"
    # an answer that redefines the helper to make its wrong decode look right: the tests use the prompt's helper
    cheat = "```python\ndef encode(s):\n    return s\n\ndef decode(s):\n    return s\n```"
    assert ev.evaluate(task, cheat).verdict == "FAIL"


def test_values_of_every_plain_type_cross_both_ways():
    code = "def echo(*a, **k):\n    return [a, k]\n"
    test = ("v = (None, True, 3, 2 ** 80, 1.5, float('inf'), 1j, 's', b'b', [1], (2,), {3}, frozenset({4}), {5: (6,)})\n"
            "assert echo(*v, key={'x': [v]}) == [v, {'key': {'x': [v]}}]\n"
            "import math\nassert math.isnan(echo(float('nan'))[0][0])\n")
    assert sandbox.run(code, test).final["status"] == "passed"


def test_tests_that_never_finish_are_an_error_and_the_next_evaluation_still_works():
    ev = get_evaluator("code_execution", {"timeout_s": 1})
    with pytest.raises(sandbox.SandboxError, match="did not finish"):
        ev.evaluate(ev_task("assert solve() == 42\nwhile True:\n    pass\n"), "def solve():\n    return 42\n")
    assert ev.evaluate(ev_task("assert solve() == 42\n"), "def solve():\n    return 42\n").verdict == "PASS"


def test_a_missing_entry_point_is_a_fail_not_an_error():
    ev = get_evaluator("code_execution", {"timeout_s": 5})
    v = ev.evaluate(ev_task("def check(c):\n    assert c(1) == 2\n", "f"), "def g(x):\n    return x + 1\n")
    assert v.verdict == "FAIL" and v.detail["exception"] == "NameError" and "does not define" in v.detail["error"]


def test_an_entry_point_that_is_not_a_function_is_a_fail_when_the_prompt_says_function():
    ev = get_evaluator("code_execution", {"timeout_s": 5})
    task = ev_task("def check(c):\n    assert c(1) == 2\n", "f", code_prompt="def f(x):\n    \"\"\"x + 1\"\"\"\n")
    for answer in ("```python\nclass f:\n    def __eq__(s, o):\n        return True\n```", "```python\nf = 2\n```"):
        v = ev.evaluate(task, answer)
        assert v.verdict == "FAIL" and "where the task expects a function" in v.detail["reason"], v.detail


def test_a_killed_runner_leaves_no_sandbox_behind(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from tests.conftest import ROOT
    from tests.integration.test_hostile_code import sandbox_processes
    script = ("from benchwatch import sandbox\nimport sys\nprint('go', flush=True)\n"
              "sandbox.run('import time\\ntime.sleep(60)\\n', 'assert 1', limits=sandbox.Limits(wall_s=60))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout.readline().strip() == b"go"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not [p for p in sandbox_processes() if "sleep" not in " ".join(p.cmdline())]:
            time.sleep(0.1)  # until its sandboxes (spares, the sleeping candidate) are up
        assert sandbox_processes()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sandbox_processes()
    h = sandbox.isolation().cgroup
    if h is not None:  # its empty cgroups are swept by the next runner's probe (here: at once, whatever their age)
        sandbox.shutdown()  # this process's own spares: their cgroups go with them
        sandbox.cgroups.sweep(h, min_age_s=0)
        assert not list(h.pids.glob("benchwatch-sandbox-*")) and not list(h.memory.glob("benchwatch-sandbox-*"))
