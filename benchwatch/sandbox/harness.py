"""The same-process mode (opt-in, forgeable): the model's program and the task's tests in one interpreter.

Only for tasks whose tests need objects across the boundary (`same_process: true`); every other evaluation
runs its tests in the trusted verifier (verifier.py). This runs inside the same sandbox as the candidate
(bubblewrap, cgroup, limits), as `python -I -c <this source> FD` (it never imports benchwatch). The job
(program, tests, a per-run nonce) arrives on stdin (a memfd, replaced by /dev/null once read). Records go to
pipe FD as JSON lines carrying the nonce: "ready" before any untrusted code runs, then one "final" record.
What the report needs (os.write, json, the fd, the nonce) is captured before the model's code runs, so naive
patching cannot change what is reported; but the code shares this interpreter with the tests, so code written
to forge a result can (an always-equal object passes): its verdicts say `forgeable: true`.
"""
import json
import os
import sys


def _describe(exc):
    import traceback  # only on failure: a passing run does not pay for importing it
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()[-2000:]


def _failure(exc, test_lines):
    """The exception and, where it happened in the tests, the test line that failed."""
    where = sol = None
    tb = exc.__traceback__
    while tb is not None:  # walked by hand: a million-frame recursion must not take seconds to format
        name = tb.tb_frame.f_code.co_filename
        if name == "<tests>":
            where = tb.tb_lineno
        elif name == "<solution>":
            sol = tb.tb_lineno
        tb = tb.tb_next
    out = {"error": _describe(exc),
           "exception": type(exc).__name__}
    if where is not None and 0 < where <= len(test_lines):
        out["failing_line"] = where
        out["failing_test"] = test_lines[where - 1].replace("; __bw_tick__()", "").strip()[:500]
    if sol is not None:
        out["solution_line"] = sol
    return out


def main():
    write, dumps, fd = os.write, json.dumps, int(sys.argv[1])
    with os.fdopen(os.dup(0), "rb") as f:
        job = json.loads(f.read())
    devnull = os.open(os.devnull, os.O_RDONLY)  # fd 0 was the job file: nothing may read it again
    os.dup2(devnull, 0)
    os.close(devnull)
    nonce = job.pop("nonce")

    def report(**rec):
        rec["nonce"] = nonce
        try:
            write(fd, (dumps(rec, default=repr) + "\n").encode())
        except OSError:
            pass  # the model's code closed or filled the pipe: no record, the parent says FAIL

    report(stage="ready")
    if job.get("block_sockets"):
        _block_sockets()
    try:
        program = compile(job["program"], "<solution>", "exec")
    except (SyntaxError, ValueError) as exc:
        report(stage="final", status="failed", phase="compile", exception=type(exc).__name__,
               error=_describe(exc))
        return
    test_src = job.get("test") or ""
    test_lines = test_src.splitlines()
    try:
        tests = compile(test_src, "<tests>", "exec")  # instrumented by the parent: __bw_tick__() after asserts
    except SyntaxError as exc:  # the dataset's tests are broken: the harness's problem, not the model's
        report(stage="final", status="harness_error", error=f"tests do not compile: {exc}")
        return
    passed = [0]

    def tick():
        passed[0] += 1

    env = {"__name__": "__solution__", "__builtins__": __builtins__}
    phase = "program"
    try:
        exec(program, env)
        phase = "tests"
        env["__bw_tick__"] = tick
        exec(tests, env)
        if job.get("entry_point"):
            entry = job["entry_point"]
            if entry not in env:
                raise NameError(f"the answer does not define {entry}()")
            env["check"](env[entry])
        ok = True
    except BaseException as exc:  # noqa: B902 - SystemExit and KeyboardInterrupt are failures too
        ok = False
        failure = _failure(exc, test_lines)
    if ok:
        report(stage="final", status="passed", asserts_passed=passed[0])
    else:
        report(stage="final", status="failed", phase=phase, asserts_passed=passed[0], **failure)


def _block_sockets():
    """Where no network namespace is available: refuse socket creation and connections in this process."""
    def hook(event, args):
        if event in ("socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo"):
            raise PermissionError(f"network access is blocked in the sandbox ({event})")
    sys.addaudithook(hook)


main()
