"""The sandbox's harness: assertions counted without moving line numbers, failures named by their test line,
forks of the harness cannot outvote a failure, broken tests are the harness's error."""
from __future__ import annotations

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


def test_assertions_counted_and_the_failing_line_named():
    ok = sandbox.run("def f(x):\n    return x + 1\n", TESTS, "f")
    assert ok.final["status"] == "passed" and ok.final["asserts_passed"] == 7  # the loop's assert thrice
    bad = sandbox.run("def f(x):\n    return x + (x != 2)\n", TESTS, "f")
    assert bad.final["status"] == "failed" and bad.final["asserts_passed"] == 1
    assert bad.final["failing_line"] == 3 and bad.final["failing_test"] == "if True: assert c(2) == 3"


def test_a_forked_copy_reporting_success_does_not_outvote_a_failure():
    # The child copy of the harness returns the right answer; the original returns a wrong one.
    code = "import os\n_child = os.fork() == 0\ndef f(x):\n    return x + 1 if _child else x\n"
    out = sandbox.run(code, TESTS, "f")
    assert out.final["status"] == "failed"


def test_broken_tests_are_an_error_not_a_fail():
    ev = get_evaluator("code_execution", {"timeout_s": 5})
    with pytest.raises(sandbox.SandboxError, match="tests do not compile"):
        ev.evaluate(Task(id="t", prompt="p", meta={"test": "assert (\n"}), "x = 1")
