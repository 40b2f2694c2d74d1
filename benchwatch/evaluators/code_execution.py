"""Code execution: the model's Python runs in the sandbox; the task's tests run in a trusted verifier process
that calls its functions (benchwatch.sandbox, docs/sandbox.md).

The code is the answer's fenced block (```python ... ```; the one defining the entry point when there are
several), else the raw answer. For HumanEval-style tasks (meta.code_prompt) a whole function is run after the
prompt (so the prompt's imports and helpers stay defined); anything else is taken as a completion of the prompt.

Task fields: meta.test (Python: assertions, or a `check(candidate)` function), meta.entry_point (call
`check(entry_point)` after the tests), meta.code_prompt (the code the answer completes; its helpers are also
defined on the trusted side, where the tests run), meta.same_process (true: this task opts into the forgeable
same-process mode).

Verdicts: PASS when every test passed; FAIL when the model's code failed a test, raised, exited early,
returned something that is not plain data, or hit a limit (the limit is in the detail); ERROR (raised, so the
runner records it) when the sandbox could not start, the task's own tests are broken, or they need more than
plain data across the boundary (unless the task opts into same_process).
"""
from __future__ import annotations

import re
from typing import Any

from .. import sandbox
from ..datasets import Task
from .base import Evaluator, EvaluatorError, Verdict, register

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```", re.DOTALL | re.MULTILINE)


def extract_code(response: str, entry_point: str | None = None) -> tuple[str, str]:
    """(code, where it came from): a fenced Python block, else the whole answer."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(response)]
    blocks = [b for lang, b in blocks if lang in ("", "python", "py", "python3")]
    if blocks:
        if entry_point:
            defining = [b for b in blocks if re.search(rf"^def\s+{re.escape(entry_point)}\s*\(", b, re.M)]
            if defining:
                return defining[0], "fenced block"
        return blocks[0], "fenced block"
    unclosed = re.search(r"^[ \t]*```[ \t]*(?:python|py|python3)?[ \t]*\n(.*)\Z", response, re.DOTALL | re.M)
    if unclosed:  # an answer cut off by max_tokens inside its block
        return unclosed.group(1), "unclosed fenced block"
    return response, "raw answer"


def build_program(task: Task, response: str) -> tuple[str, str]:
    entry = task.meta.get("entry_point")
    code, origin = extract_code(response, entry)
    prompt = task.meta.get("code_prompt")
    if not prompt:
        return code, origin
    if entry and re.search(rf"^def\s+{re.escape(entry)}\s*\(", code, re.M):
        return f"{prompt}\n\n{code}", f"{origin}, whole function after the prompt"
    return prompt + code, f"{origin}, completion of the prompt"


@register("code_execution")
class CodeExecution(Evaluator):
    """Options: timeout_s (wall, default 10), cpu_s (default: timeout_s), memory_mb (512, the whole evaluation),
    max_processes (32, the whole evaluation), file_size_mb (16), tmp_mb (64, the private /tmp), output_bytes
    (8192 kept of stdout and of stderr), python (the candidate's interpreter), site_packages (false: the
    standard library only), same_process (false: true runs program and tests in one interpreter, forgeable)."""

    def __init__(self, opts: dict[str, Any]):
        wall = float(opts.pop("timeout_s", 10.0))
        self.limits = sandbox.Limits(wall_s=wall, cpu_s=float(opts.pop("cpu_s", wall)),
                                     memory_mb=int(opts.pop("memory_mb", 512)),
                                     processes=int(opts.pop("max_processes", 32)),
                                     file_size_mb=int(opts.pop("file_size_mb", 16)),
                                     tmp_mb=int(opts.pop("tmp_mb", 64)),
                                     output_bytes=int(opts.pop("output_bytes", 8192)),
                                     site_packages=bool(opts.pop("site_packages", False)))
        self.python = opts.pop("python", None)
        self.same_process = bool(opts.pop("same_process", False))
        self.required = False  # set by require_full_isolation() (config `sandbox: require`)
        if opts:
            raise TypeError(f"unknown option(s) {sorted(opts)} for code_execution")
        self.isolation = sandbox.isolation(self.python)  # probed now: a run says at its start what it has

    def require_full_isolation(self, dataset: str) -> None:
        """`sandbox: require` in the config: refuse to start without the full isolation."""
        if self.isolation.mode != "full":
            raise EvaluatorError(f"dataset {dataset!r}: sandbox: require, but this host gives the code sandbox "
                                 f"only {self.isolation.summary()} ({'; '.join(self.isolation.notes)})")
        if self.same_process:
            raise EvaluatorError(f"dataset {dataset!r}: sandbox: require refuses same_process: true (its "
                                 "verdicts can be forged by the code it judges)")
        self.required = True  # and a task that opts into same_process is an ERROR, not a forgeable verdict

    def evaluate(self, task: Task, response: str) -> Verdict:
        test = task.meta.get("test")
        if not isinstance(test, str) or not test.strip():
            raise EvaluatorError(f"task {task.id}: code_execution needs the tests in meta.test")
        program, origin = build_program(task, response)
        same = self.same_process or task.meta.get("same_process") is True
        if same and self.required:
            raise EvaluatorError(f"task {task.id}: opts into same_process, which sandbox: require refuses "
                                 "(its verdict could be forged by the code it judges)")
        out = sandbox.run(program, test, task.meta.get("entry_point"), self.limits, self.python,
                          prompt=task.meta.get("code_prompt"), same_process=same)
        if not out.ready:  # the harness never started: nothing of the model's ran
            raise sandbox.SandboxError(f"the sandbox did not start (exit {out.exit_code}): {out.stderr[-500:]}")
        final = out.final or {}
        if final.get("status") in ("harness_error", "error"):
            raise EvaluatorError(f"task {task.id}: {final.get('error')}")
        detail: dict[str, Any] = {
            "code_from": origin, "tests_passed": final.get("asserts_passed", 0),
            "limit": out.limit, "exit_code": out.exit_code, "duration_s": round(out.duration_s, 3),
            "stdout": _trunc(out.stdout, out.stdout_bytes), "stderr": _trunc(out.stderr, out.stderr_bytes),
            "output_truncated": out.stdout_bytes > len(out.stdout.encode()) or
            out.stderr_bytes > len(out.stderr.encode()),
            "isolation": out.isolation,
            "forgeable": out.forgeable,
            "verdict_by": "same process as the code (forgeable)" if out.forgeable else "trusted verifier process",
        }
        if out.forged_records:
            detail["ignored_records"] = f"{out.forged_records} result record(s) without this run's nonce"
        if final.get("status") == "passed" and out.limit is None:
            return Verdict("PASS", {**detail, "tests_failed": 0})
        detail["tests_failed"] = 1
        for key in ("phase", "exception", "error", "failing_test", "failing_line", "solution_line", "raised_by"):
            if key in final:
                detail[key] = final[key]
        detail["reason"] = _reason(final, out)
        return Verdict("FAIL", detail)


def _reason(final: dict[str, Any], out: sandbox.Outcome) -> str:
    if out.limit:
        return f"limit hit: {out.limit}"
    if not final or final.get("gone"):
        if final and (final.get("protocol") or out.exit_code is None):  # it wrote what the tests never asked
            return f"the program broke its channel to the tests: {final.get('error', '')[:200]}"
        how = f"killed by {out.signal}" if out.signal else f"exit code {out.exit_code}"
        return f"the program ended before the tests finished ({how})"
    if final.get("phase") == "compile":
        return f"the code does not compile: {final.get('error', '')[:200]}"
    if final.get("exception") == "SystemExit":
        return "the program exited before the tests finished (SystemExit)"
    if final.get("phase") == "program":
        return f"the program raised before the tests ran: {final.get('error', '')[:200]}"
    if final.get("wrong_kind"):
        return final["wrong_kind"][:200]
    if final.get("not_plain"):
        return f"a function returned a value that is not plain data: {final['not_plain'][:200]}"
    where = f" (test: {final['failing_test']})" if final.get("failing_test") else ""
    if final.get("raised_by") == "candidate":
        return f"the answer raised {final.get('error', '')[:200]}{where}"
    if final.get("exception") == "AssertionError":
        return f"a test failed: {final.get('failing_test') or final.get('error')}"
    return f"a test raised {final.get('error', '')[:200]}"


def _trunc(text: str, total: int) -> str:
    shown = len(text.encode())
    return text if total <= shown else f"{text}\n... [truncated: {total} bytes in all]"
