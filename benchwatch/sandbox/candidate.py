"""The untrusted side: runs the model's program inside the sandbox and answers calls to its functions.

Run as `python -I -S -c <codec.py + this file> REQUEST_FD REPLY_FD` inside bubblewrap (it never imports
benchwatch). It holds nothing the verdict depends on: it receives the program, runs it, then answers
{"op": "get", "name"} with what the name is and {"op": "call", "name", "args", "kwargs"} with the return value
(plain data, codec.py) or the exception raised. Whatever the program does to this interpreter can only change these
answers, which the trusted side decodes strictly and judges itself.
"""
import sys


def _describe(exc):
    try:
        return f"{type(exc).__name__}: {exc}"[-2000:]
    except BaseException:  # noqa: B902 - a hostile __str__
        return type(exc).__name__


def _raised(exc, phase=None):
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<solution>":
            line = tb.tb_lineno
        tb = tb.tb_next
    out = {"raised": type(exc).__name__, "message": _describe(exc)}
    if line is not None:
        out["solution_line"] = line
    if phase:
        out["phase"] = phase
    return out


def _flush():
    """The program's output reaches our files before each answer (the process is killed after the last)."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:  # noqa: B902 - replaced or closed by the program: its output, its loss
            pass


def _kind(value):
    if isinstance(value, type):
        return "class"
    if callable(value):
        return "function"
    return "value"


def reply(wfd, message):
    _flush()
    send(wfd, message)


def serve(rfd, wfd):
    import _signal
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_DFL)  # a file over the size limit ends the process (Python ignores it)
    me = os.getpid()
    send(wfd, {"ready": True})  # before any of the model's code runs: the sandbox started
    job = recv(rfd)
    try:
        program = compile(job.get("program", ""), "<solution>", "exec")
    except (SyntaxError, ValueError) as exc:
        reply(wfd, _raised(exc, "compile"))
        return
    env = {"__name__": "__solution__", "__builtins__": __builtins__}
    try:
        exec(program, env)
    except BaseException as exc:  # noqa: B902 - SystemExit too: the program ended before the tests
        if os.getpid() != me:
            os._exit(0)
        reply(wfd, _raised(exc, "program"))
        return
    if os.getpid() != me:  # a copy the program forked: one process answers
        os._exit(0)
    try:  # what each top-level name is, so the tests' lookups need no round trip
        names = {k: _kind(v) for k, v in env.items() if type(k) is str and not k.startswith("__")}
    except BaseException:  # noqa: B902 - a hostile object: the trusted side asks name by name instead
        names = {}
    reply(wfd, {"loaded": True, "names": names if len(names) <= 10000 else {}})
    while True:
        req = recv(rfd)
        name = req.get("name")
        if name not in env:
            reply(wfd, {"kind": "missing"})
            continue
        target = env[name]
        if req.get("op") == "get":
            kind = _kind(target)
            if kind == "value":
                try:
                    reply(wfd, {"kind": kind, "value": target})
                except NotPlain as exc:
                    reply(wfd, {"kind": "other", "message": str(exc)})
            else:
                reply(wfd, {"kind": kind})
            continue
        try:
            result = target(*req["args"], **req["kwargs"])
        except BaseException as exc:  # noqa: B902 - raised by the model's code: the trusted side judges it
            if os.getpid() != me:
                os._exit(0)
            reply(wfd, _raised(exc))
            continue
        if os.getpid() != me:
            os._exit(0)
        try:
            reply(wfd, {"value": result})
        except NotPlain as exc:
            reply(wfd, {"not_plain": str(exc)})


if len(sys.argv) > 3 and sys.argv[3] == "block-sockets":  # the fallback mode: no seccomp filter to do it
    def _refuse(event, args):
        if event in ("socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.socketpair"):
            raise PermissionError(f"network access is blocked in the sandbox ({event})")
    sys.addaudithook(_refuse)
try:
    serve(int(sys.argv[1]), int(sys.argv[2]))
except EOFError:  # the trusted side is done
    pass
