"""The trusted side: holds a task's tests and the prompt's helpers, and computes the verdict.

Run as `python -I -S -c <codec.py + this file> SOCKET_FD` in its own process, under its own uid (never the
candidate's), and kept warm: it serves one evaluation at a time. For each, the runner sends a job frame over
the socket with the two ends of the candidate's channel attached (SCM_RIGHTS); the verifier loads the program
in the candidate, runs the tests here, and answers one result frame.

The tests see the candidate's functions as proxies: a call encodes its arguments as plain data, the candidate
answers with a plain value (decoded here into fresh built-in objects) or the name and message of what it
raised. So every comparison, every `assert`, and the count of passed assertions happen in this interpreter,
which the candidate's code never touches.
"""
import builtins
import socket
import sys


class CandidateGone(BaseException):
    """The candidate ended (or broke the protocol) before the tests finished. A BaseException, so a test's
    `except Exception` cannot swallow it."""


class NeedsObjects(BaseException):
    """The tests need more than plain data across the boundary: the task's problem, not the answer's."""


class NotPlainResult(Exception):
    """The candidate returned something that is not plain data."""


class CandidateRaised(Exception):
    """The candidate raised an exception that is not one of Python's built-in Exception classes."""


class Session:
    def __init__(self, req_fd, resp_fd):
        self.req, self.resp = req_fd, resp_fd
        self.not_plain = None  # the first non-plain return value, if any: a FAIL however the tests react
        self.gone = None
        self.broke_protocol = False
        self.wrong_kind = None
        self.needs = None
        self.names = {}  # name -> kind, as the candidate listed them once its program ran

    def ask(self, message):
        if self.gone:
            raise CandidateGone(self.gone)
        data = frame(message)  # NotPlain here is the tests' doing (an argument), not the candidate's
        try:
            while data:
                data = data[os.write(self.req, data):]
            reply = recv(self.resp)
        except (OSError, EOFError) as exc:
            self.gone = f"the candidate ended or closed the channel ({type(exc).__name__}: {exc})"
            raise CandidateGone(self.gone) from None
        except (ValueError, RecursionError) as exc:  # NotPlain included: bytes that encode no plain value
            return self.protocol(f"{type(exc).__name__}: {exc}")
        return reply

    def load(self, program):
        return self.ask({"op": "load", "program": program})

    def lookup(self, name, function_expected=False):
        kind = self.names.get(name)  # what the candidate said after loading; a plain value is still asked for
        if kind not in ("function", "class", "other"):
            reply = self.ask({"op": "get", "name": name})
            kind = reply.get("kind")
        if kind == "function":
            return Proxy(self, name)
        if kind == "missing":
            raise NameError(f"name '{name}' is not defined (the answer does not define it)")
        if function_expected and kind in ("value", "class", "other"):  # the prompt says it is a function
            self.wrong_kind = f"the answer's {name!r} is a {kind}, where the task expects a function"
            raise CandidateRaised(self.wrong_kind)
        if kind == "value":
            return reply.get("value")
        if kind in ("class", "other"):
            self.needs = (f"the tests use {name!r}, a {kind} of the answer: only functions and plain values cross "
                          "the sandbox's boundary (opt into same_process mode for tests that need objects)")
            raise NeedsObjects(self.needs)
        return self.protocol(f"unexpected reply to a lookup: {str(reply)[:200]}")

    def protocol(self, what):
        self.broke_protocol = True
        self.gone = f"the candidate broke the protocol: {what}"
        raise CandidateGone(self.gone)

    def call(self, name, args, kwargs):
        try:
            reply = self.ask({"op": "call", "name": name, "args": list(args), "kwargs": kwargs})
        except (NotPlain, RecursionError) as exc:
            self.needs = (f"the tests pass {name}() an argument that is not plain data ({exc}): only plain data "
                          "crosses the sandbox's boundary (opt into same_process mode for such tests)")
            raise NeedsObjects(self.needs) from None
        if "value" in reply:
            return reply["value"]
        if "not_plain" in reply:
            why = str(reply["not_plain"])[:300]
            if self.not_plain is None:
                self.not_plain = f"{name}() returned {why}"
            raise NotPlainResult(f"{name}() returned {why}")
        if "raised" in reply:
            raise rebuild_exception(str(reply["raised"])[:100], str(reply.get("message", ""))[:2000])
        if reply.get("kind") == "missing":
            raise NameError(f"name '{name}' is not defined (the answer does not define it)")
        return self.protocol(f"unexpected reply to a call: {str(reply)[:200]}")


def rebuild_exception(type_name, message):
    """The candidate's exception as a fresh one here: a built-in Exception class of the same name (so tests that
    expect a ValueError see one), else CandidateRaised. Never SystemExit, KeyboardInterrupt or GeneratorExit."""
    cls = getattr(builtins, type_name, None) if type_name.isidentifier() else None
    text = message[len(type_name) + 2:] if message.startswith(type_name + ": ") else message
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        try:
            exc = cls(text)
        except Exception:  # noqa: BLE001 - classes with required arguments (UnicodeDecodeError...)
            exc = CandidateRaised(text)
    else:
        exc = CandidateRaised(text)
    exc.candidate_type = type_name
    return exc


class Proxy:
    """Stands for one of the candidate's functions in the tests."""

    def __init__(self, session, name):
        self._session, self.__name__ = session, name

    def __call__(self, *args, **kwargs):
        return self._session.call(self.__name__, args, kwargs)

    def __repr__(self):
        return f"<candidate function {self.__name__}>"


class TestGlobals(dict):
    """The tests' globals: the prompt's helpers, then, for any other name, the candidate's (looked up once)."""

    def __init__(self, session):
        super().__init__(__name__="__tests__", __builtins__=builtins)
        self.session = session

    def __missing__(self, name):
        if hasattr(builtins, name):
            return getattr(builtins, name)
        value = self.session.lookup(name)
        self[name] = value
        return value


def _failure(exc, test_lines):
    where = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<tests>":
            where = tb.tb_lineno
        tb = tb.tb_next
    ctype = getattr(exc, "candidate_type", None)
    out = {"exception": ctype or type(exc).__name__, "error": f"{ctype or type(exc).__name__}: {exc}"[:2000],
           "raised_by": "candidate" if ctype else "tests"}
    if where is not None and 0 < where <= len(test_lines):
        out["failing_line"] = where
        out["failing_test"] = test_lines[where - 1].replace("; __bw_tick__()", "").strip()[:500]
    return out


def evaluate(job, session):
    try:
        hello = recv(session.resp)
    except (OSError, EOFError, ValueError):
        hello = None
    if not isinstance(hello, dict) or hello.get("ready") is not True:
        return {"status": "error", "error": "the sandbox did not start", "not_started": True}
    loaded = session.load(job["program"])
    if "raised" in loaded:
        phase = "compile" if loaded.get("phase") == "compile" else "program"
        out = {"status": "failed", "phase": phase, "asserts_passed": 0, "raised_by": "candidate",
               "exception": str(loaded["raised"])[:100], "error": str(loaded.get("message", ""))[:2000]}
        if isinstance(loaded.get("solution_line"), int):
            out["solution_line"] = loaded["solution_line"]
        return out
    if loaded.get("loaded") is not True or type(loaded.get("names", {})) is not dict:
        session.protocol(f"unexpected reply to load: {str(loaded)[:200]}")
    session.names = loaded.get("names", {})
    test_src = job["test"]
    test_lines = test_src.splitlines()
    try:
        tests = compile(test_src, "<tests>", "exec")
    except SyntaxError as exc:
        return {"status": "error", "error": f"the task's tests do not compile: {exc}"}
    env = TestGlobals(session)
    passed = [0]

    def tick():
        passed[0] += 1

    if job.get("prompt"):
        try:  # the prompt's helpers (HumanEval's tests call some): trusted code, run here
            exec(compile(job["prompt"], "<prompt>", "exec"), env)
        except Exception:  # noqa: BLE001 - a prompt that is not a module on its own: no helpers
            pass
    entry = job.get("entry_point")
    env["__bw_tick__"] = tick
    try:
        if entry:  # NameError if the answer does not define it: a FAIL
            stub = dict.get(env, entry)  # the prompt's own definition, if any (a function: HumanEval's signature)
            env[entry] = session.lookup(entry, callable(stub) and not isinstance(stub, type))
        exec(tests, env)
        if entry:
            env["check"](env[entry])
        failure = None
    except CandidateGone:
        failure = {"exception": "CandidateGone", "error": session.gone}
    except NeedsObjects:
        return {"status": "error", "error": session.needs}
    except BaseException as exc:  # noqa: B902 - any failure of the tests is the answer's FAIL
        failure = _failure(exc, test_lines)
    if session.needs:
        return {"status": "error", "error": session.needs}
    if session.gone:
        return {"status": "failed", "phase": "tests", "asserts_passed": passed[0], "gone": True,
                "protocol": session.broke_protocol, "exception": "CandidateGone", "error": session.gone}
    if session.wrong_kind:
        return {"status": "failed", "phase": "tests", "asserts_passed": passed[0], "wrong_kind": session.wrong_kind,
                "exception": "TypeError", "error": session.wrong_kind}
    if session.not_plain:
        return {"status": "failed", "phase": "tests", "asserts_passed": passed[0], "not_plain": session.not_plain,
                "exception": "NotPlainResult", "error": session.not_plain}
    if failure is None:
        return {"status": "passed", "asserts_passed": passed[0]}
    return {"status": "failed", "phase": "tests", "asserts_passed": passed[0], **failure}


def main(fd):
    sock = socket.socket(fileno=fd)
    sys.setrecursionlimit(10000)
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(sock, 1, 2)
        except OSError:
            return
        if len(fds) != 2:
            return  # the runner is gone
        try:
            job = recv(fd)
            session = Session(fds[0], fds[1])
            try:
                result = evaluate(job, session)
            except CandidateGone:
                result = {"status": "failed", "phase": "program", "asserts_passed": 0, "gone": True,
                          "protocol": session.broke_protocol, "exception": "CandidateGone", "error": session.gone}
            except NeedsObjects:
                result = {"status": "error", "error": session.needs}
        except Exception as exc:  # noqa: BLE001 - a broken job is the harness's error, reported as such
            result = {"status": "error", "error": f"verifier: {type(exc).__name__}: {exc}"}
        finally:
            for f in fds:
                try:
                    os.close(f)
                except OSError:
                    pass
        send(fd, result)


main(int(sys.argv[1]))
