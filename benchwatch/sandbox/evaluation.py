"""One evaluation: the candidate under bubblewrap and its cgroup, the warm verifier, and what they tell.

The package docstring (sandbox/__init__.py) gives the whole picture."""
from __future__ import annotations

import atexit
import ctypes
import functools
import json
import logging
import math
import os
import secrets
import select
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import bwrap, cgroups, codec

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
_CODEC = (_HERE / "codec.py").read_text(encoding="utf-8")
CANDIDATE = _CODEC + "\n" + (_HERE / "candidate.py").read_text(encoding="utf-8")
VERIFIER = _CODEC + "\n" + (_HERE / "verifier.py").read_text(encoding="utf-8")
HARNESS = (_HERE / "harness.py").read_text(encoding="utf-8")
UID_RANGE = (200_000, 260_000)  # unmapped uids: one per evaluation, so limits and permissions are its own
VERIFIER_UID = 199_999  # the trusted side's uid (when we are root): never one of the candidates'
RESULT_FD_BYTES = 1 << 20
BWRAP_PROCESSES = 2  # bwrap's own two processes (outside and PID 1) sit in the evaluation's cgroup too


class SandboxError(RuntimeError):
    """The sandbox itself could not start or finish: the harness's ERROR, not the model's FAIL."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: float = 10.0
    memory_mb: int = 512  # the whole evaluation (cgroup); per process where there is no cgroup
    processes: int = 32  # processes and threads of the evaluation
    file_size_mb: int = 16  # any file written, stdout and stderr included
    tmp_mb: int = 64  # the private /tmp (tmpfs: its pages count towards memory too)
    open_files: int = 64
    output_bytes: int = 8192  # kept of stdout and of stderr
    site_packages: bool = False  # let the code import the interpreter's installed packages


@dataclass(frozen=True)
class Isolation:
    mode: str  # "full", "bwrap" or "rlimits"
    python: str
    filesystem: str
    network: str
    processes: str
    limits: str
    user: str
    verdict: str
    notes: tuple[str, ...] = ()
    extra_ro: tuple[str, ...] = ()
    cgroup: cgroups.Hierarchy | None = None

    def summary(self) -> str:
        return f"{self.mode}: {self.filesystem}; {self.network}; {self.processes}; {self.limits}; {self.user}"


@dataclass
class Outcome:
    """What happened. `final` is the trusted side's result (None: none came)."""
    ready: bool
    final: dict[str, Any] | None
    exit_code: int | None
    signal: str | None
    limit: str | None
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int
    duration_s: float
    forged_records: int = 0
    isolation: str = ""
    forgeable: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _uid() -> int:
    return UID_RANGE[0] + secrets.randbelow(UID_RANGE[1] - UID_RANGE[0])


def _forced() -> str:
    return os.environ.get("BENCHWATCH_SANDBOX", "")  # "rlimits": try the fallback on a capable host


@functools.lru_cache(maxsize=None)
def isolation(python: str | None = None) -> Isolation:
    """The strongest isolation this host allows (probed once per interpreter; logged, and named in every
    verdict's `isolation` detail)."""
    notes: list[str] = []
    root = os.geteuid() == 0
    hier, cg_note = cgroups.probe() if root else (None, "not root: no cgroup of our own")
    if hier is None:
        notes.append(cg_note)
    limits = (hier.describe() + "; CPU, file size, open files per process; wall clock") if hier else \
        "per process only: address space, CPU, file size, open files, process count per uid; wall clock"
    verdict = "separate trusted verifier process" + (f" (uid {VERIFIER_UID})" if root else " (same user)")
    ok, why = bwrap.available()
    if _forced() == "rlimits":
        ok, why = False, "bubblewrap skipped: BENCHWATCH_SANDBOX=rlimits"
    if ok:
        exe, extra = bwrap.interpreter(python)
        probe = _probe_bwrap(exe, extra)
        if probe is None:
            iso = Isolation("full" if hier else "bwrap", exe,
                            "bubblewrap: read-only /usr and interpreter, private tmpfs /tmp, nothing else",
                            "no network of any family (network namespace; socket() refused by seccomp)"
                            if _SECCOMP is not None else
                            "network namespace with only its own loopback (no seccomp filter for this architecture)",
                            "own PID namespace, killed as a whole afterwards", limits,
                            "own unprivileged uid per evaluation", verdict, tuple(notes), tuple(extra), hier)
            log.warning("code sandbox active: %s", iso.summary())
            return iso
        why = f"bubblewrap failed with {exe}: {probe}"
    notes.append(why)
    py = _fallback_python(python, root, notes)
    iso = Isolation("rlimits", py, "host filesystem (file permissions only)",
                    "sockets blocked by an audit hook in the candidate (no network namespace)",
                    "process group killed afterwards (no PID namespace)", limits,
                    "own unprivileged uid per evaluation" if root else "same user as the runner", verdict,
                    tuple(notes), (), hier)
    log.warning("code sandbox active: %s; %s", iso.summary(), "; ".join(notes))
    return iso


def _probe_bwrap(exe: str, extra: list[str]) -> str | None:
    """None when bwrap runs the interpreter here with no network; else why not."""
    sfd = _seccomp_fd()
    if sfd is not None:  # socket() itself refused (EPERM)
        check = "import socket\ntry:\n socket.socket()\nexcept OSError as e:\n print('ok' if e.errno == 1 else e)"
    else:  # no filter for this architecture: only the namespace's own loopback (nothing listens on it)
        check = ("import socket\ntry:\n socket.create_connection(('127.0.0.1', 9), 1)\nexcept OSError as e:\n"
                 " print('ok' if e.errno in (101, 111) else e)")
    try:
        cmd = bwrap.command(_uid(), 1 << 20, sfd, None, extra) + [exe, "-I", "-S", "-c", check]
        p = subprocess.run(cmd, capture_output=True, timeout=20, cwd="/", pass_fds=(sfd,) if sfd else (),
                           env={"PATH": os.defpath})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    finally:
        if sfd is not None:
            os.close(sfd)
    if p.returncode == 0 and p.stdout.strip() == b"ok":
        return None
    return (p.stderr or p.stdout).decode(errors="replace").strip()[-300:] or f"exit {p.returncode}"


def _fallback_python(python: str | None, root: bool, notes: list[str]) -> str:
    """The first interpreter an unprivileged uid may run (a pyenv interpreter under /root is not one)."""
    import shutil
    import sys
    candidates = [python] if python else list(dict.fromkeys(
        [sys.executable, shutil.which("python3") or "/usr/bin/python3", "/usr/bin/python3"]))
    for cand in candidates:
        try:
            ok = subprocess.run([cand, "-I", "-c", "print('ok')"], capture_output=True, timeout=20, cwd="/",
                                preexec_fn=functools.partial(_drop, {}, _uid() if root else None, None)
                                ).stdout.strip() == b"ok"
        except (OSError, subprocess.SubprocessError) as exc:
            ok = False
            notes.append(f"{cand}: {exc}")
        if ok:
            return cand
    return candidates[0]


_SECCOMP = bwrap.seccomp_program()


def _seccomp_fd() -> int | None:
    if _SECCOMP is None:
        return None
    r, w = os.pipe()
    os.write(w, _SECCOMP)
    os.close(w)
    return r


_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _drop(rl: dict[str, Any], uid: int | None, group: cgroups.Group | None) -> None:
    """In the child before exec: die with the thread that starts it (so a killed runner leaves no sandbox
    behind: bwrap's --die-with-parent then takes the rest), join the cgroup, set the rlimits, and (fallback
    mode) drop to the uid."""
    import resource
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if group is not None:
        group.join()
    names = {"cpu": resource.RLIMIT_CPU, "as": resource.RLIMIT_AS, "fsize": resource.RLIMIT_FSIZE,
             "nproc": resource.RLIMIT_NPROC, "nofile": resource.RLIMIT_NOFILE, "core": resource.RLIMIT_CORE}
    for k, v in rl.items():
        resource.setrlimit(names[k], v if isinstance(v, tuple) else (v, v))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


# CPython 3.11 keeps ast.parse's recursion depth in one counter per interpreter: a thread switch inside a parse
# (a finalizer run by the collector can give up the GIL) can make it raise "AST constructor recursion depth
# mismatch". Concurrent runs evaluate in several threads, so parses take turns. Re-entrant: a finalizer on the
# same thread may parse too.
_AST_PARSE_LOCK = threading.RLock()


@functools.lru_cache(maxsize=512)  # a dataset's tests are instrumented once, not once per model and attempt
def instrument_tests(test: str) -> str:
    """Count the assertions that pass: `; __bw_tick__()` after every assert statement, on its own line, so the
    line numbers of a failing test stay those of the task's source."""
    import ast
    with _AST_PARSE_LOCK:
        tree = ast.parse(test, "<tests>")
    lines = test.splitlines(keepends=True)
    ends = sorted(((n.end_lineno, n.end_col_offset) for n in ast.walk(tree) if isinstance(n, ast.Assert)),
                  reverse=True)
    for lineno, col in ends:  # offsets are UTF-8 bytes; work from the end so earlier offsets stay valid
        raw = lines[lineno - 1].encode()
        lines[lineno - 1] = (raw[:col] + b"; __bw_tick__()" + raw[col:]).decode()
    return "".join(lines)


# ---------------------------------------------------------------- the sandboxed process


class _Sandboxed:
    """One untrusted process tree: started in its cgroup, namespaces and uid; killed and cleaned up after."""

    def __init__(self, iso: Isolation, limits: Limits, argv: list[str], pass_fds: tuple[int, ...],
                 stdin: int | None = None, uid: int | None = None):
        self.iso, self.limits = iso, limits
        self.uid = (uid or _uid()) if os.geteuid() == 0 else None
        self.group = self.out = self.err = self.status_r = self.status_w = self.work = None
        if iso.cgroup is not None:
            self.group = cgroups.Group.create(iso.cgroup, limits.memory_mb << 20,
                                              limits.processes + (BWRAP_PROCESSES if iso.mode != "rlimits" else 0))
        cpu = max(1, math.ceil(limits.cpu_s))
        rl: dict[str, Any] = {"cpu": (cpu, cpu + 1), "fsize": limits.file_size_mb << 20,
                              "nofile": limits.open_files, "core": 0}
        if self.group is None:  # no cgroup: the documented per-process fallback
            rl["as"] = limits.memory_mb << 20
            rl["nproc"] = limits.processes
        self.out = os.memfd_create("bw-stdout")  # output never touches the host's filesystem
        self.err = os.memfd_create("bw-stderr")
        sfd = None
        fds = tuple(pass_fds)
        try:
            if iso.mode == "rlimits":
                cmd, uid_for_child = argv, self.uid
            else:
                sfd = _seccomp_fd()
                self.status_r, self.status_w = os.pipe()
                cmd = bwrap.command(self.uid, limits.tmp_mb << 20, sfd, self.status_w, list(iso.extra_ro)) + argv
                fds += (self.status_w,) + ((sfd,) if sfd is not None else ())
                uid_for_child = None  # setpriv inside the sandbox drops to the uid
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
            if iso.mode == "rlimits":
                work = Path(os.environ.get("TMPDIR", "/tmp"))
                self.work = Path(__import__("tempfile").mkdtemp(prefix="bw-sandbox-", dir=work))
                if self.uid is not None:
                    os.chown(self.work, self.uid, self.uid)
                env.update(HOME=str(self.work), TMPDIR=str(self.work))
            else:
                self.work = None
            self.t0 = time.monotonic()
            try:
                self.proc = subprocess.Popen(
                    cmd, stdin=stdin if stdin is not None else subprocess.DEVNULL, stdout=self.out, stderr=self.err,
                    cwd=str(self.work or "/"), env=env, pass_fds=fds, start_new_session=True,
                    preexec_fn=functools.partial(_drop, rl, uid_for_child, self.group))
            except OSError as exc:
                raise SandboxError(f"cannot start the sandbox ({cmd[0]}): {exc}") from None
        except BaseException:
            self.cleanup()
            raise
        finally:
            if sfd is not None:
                os.close(sfd)
            if self.status_w is not None:
                os.close(self.status_w)
                self.status_w = None

    def kill(self) -> None:
        if self.proc.returncode is not None and (self.group is None or not self.group.pids()):
            return  # already gone, with everything it started
        if self.group is not None:
            self.group.kill()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        if self.group is None and self.uid is not None:
            _kill_uid(self.uid)

    def exit_status(self) -> tuple[int | None, str | None]:
        """(exit code, signal name) of the candidate: from bwrap's status report (128 + N for signal N)."""
        rc = self.proc.returncode
        if self.status_r is not None:
            try:
                data = os.read(self.status_r, 65536).decode(errors="replace")
                for line in data.splitlines():
                    rec = json.loads(line)
                    if "exit-code" in rec:
                        rc = int(rec["exit-code"])
            except (OSError, ValueError):
                pass
        if rc is None:
            return None, None
        if rc < 0:
            return rc, _signal_name(-rc)
        if self.iso.mode != "rlimits" and rc > 128:
            return rc, _signal_name(rc - 128)
        return rc, None

    def output(self, which: int) -> tuple[str, int]:
        size = os.fstat(which).st_size
        head = os.pread(which, self.limits.output_bytes, 0)
        return head.decode("utf-8", errors="replace"), size

    def cleanup(self) -> None:
        for fd in (self.out, self.err, self.status_r, self.status_w):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.out = self.err = self.status_r = self.status_w = None
        if self.group is not None:
            self.group.remove()
            self.group = None
        if self.work is not None:
            import shutil
            shutil.rmtree(self.work, ignore_errors=True)


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _kill_uid(uid: int, wait_s: float = 2.0) -> None:
    """Fallback mode without a cgroup: kill whatever still runs as the evaluation's uid (session leavers)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        pids = []
        for entry in os.scandir("/proc"):
            try:
                if entry.name.isdigit() and entry.stat().st_uid == uid:
                    state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        pids.append(int(entry.name))
            except (OSError, IndexError):
                continue
        if not pids:
            return
        cgroups.sigkill(pids)
        time.sleep(0.01)
    log.warning("sandbox uid %s: processes still alive after kill", uid)


# ---------------------------------------------------------------- the trusted verifier


class _Verifier:
    """One warm trusted process; serves one evaluation at a time."""

    def __init__(self, iso: Isolation):
        mine, theirs = socket.socketpair()
        self.sock = mine
        argv = [iso.python, "-I", "-S", "-c", VERIFIER, str(theirs.fileno())]
        root = os.geteuid() == 0
        if iso.mode == "rlimits":
            cmd, uid = argv, (VERIFIER_UID if root else None)
        else:
            cmd, uid = bwrap.command(VERIFIER_UID, 16 << 20, None, None, list(iso.extra_ro)) + argv, None
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, cwd="/", env={"PATH": os.defpath},
                                         pass_fds=(theirs.fileno(),), start_new_session=True,
                                         preexec_fn=functools.partial(_drop, {"core": 0}, uid, None))
        except OSError as exc:
            mine.close()
            raise SandboxError(f"cannot start the verifier ({cmd[0]}): {exc}") from None
        finally:
            theirs.close()

    def submit(self, job: dict[str, Any], fds: list[int]) -> None:
        socket.send_fds(self.sock, [b"J"], fds)
        codec.send(self.sock.fileno(), job)

    def result(self, timeout: float) -> dict[str, Any] | None:
        """The result frame, or None if none came in time."""
        if not select.select([self.sock], [], [], max(0.0, timeout))[0]:
            return None
        try:
            return codec.recv(self.sock.fileno())
        except (OSError, EOFError, ValueError) as exc:
            raise SandboxError(f"the verifier failed: {exc}; {self.stderr_tail()}") from None

    def stderr_tail(self) -> str:
        if self.proc.poll() is None:
            return "verifier still running"
        return (self.proc.stderr.read() or b"").decode(errors="replace")[-500:] if self.proc.stderr else ""

    def close(self) -> None:
        self.sock.close()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


class _Pool:
    def __init__(self) -> None:
        self.idle: dict[str, list[_Verifier]] = {}
        self.lock = threading.Lock()
        self.starter: ThreadPoolExecutor | None = None

    def get(self, iso: Isolation) -> _Verifier:
        with self.lock:
            idle = self.idle.setdefault(iso.python + iso.mode, [])
            while idle:
                v = idle.pop()
                if v.proc.poll() is None:
                    return v
                v.close()
            if self.starter is None:
                self.starter = ThreadPoolExecutor(1, thread_name_prefix="sandbox-verifier-start")
        # Started from a thread that lives as long as the process: the parent-death signal follows the thread
        # that started it, and a warm verifier outlives the evaluation (and the worker thread) that asked for it.
        return self.starter.submit(_Verifier, iso).result()

    def put(self, iso: Isolation, v: _Verifier) -> None:
        with self.lock:
            self.idle.setdefault(iso.python + iso.mode, []).append(v)

    def close_all(self) -> None:
        with self.lock:
            for vs in self.idle.values():
                for v in vs:
                    v.close()
            self.idle.clear()


_POOL = _Pool()


class _Candidate:
    """A started candidate sandbox and our ends of its channel (request writer, reply reader)."""

    def __init__(self, iso: Isolation, limits: Limits, uid: int | None = None):
        req_r, self.req_w = os.pipe()
        self.resp_r, resp_w = os.pipe()
        argv = [iso.python, "-I"] + ([] if limits.site_packages else ["-S"]) + \
            ["-c", CANDIDATE, str(req_r), str(resp_w)] + (["block-sockets"] if iso.mode == "rlimits" else [])
        try:
            self.box = _Sandboxed(iso, limits, argv, (req_r, resp_w), uid=uid)
        except BaseException:
            for fd in (self.req_w, self.resp_r):
                os.close(fd)
            raise
        finally:
            os.close(req_r)
            os.close(resp_w)

    def alive(self) -> bool:
        return self.box.proc.poll() is None

    def close_channel(self) -> None:
        for fd in (self.req_w, self.resp_r):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.req_w = self.resp_r = -1

    def discard(self) -> None:
        self.close_channel()
        self.box.kill()
        self.box.cleanup()


class _Spares:
    """Candidates started ahead of need: each evaluation still gets a fresh sandbox of its own, but its start-up
    (bwrap, interpreter) happens while the previous evaluation runs, by as many starter threads as spares are
    wanted. BENCHWATCH_SANDBOX_SPARES=N sets how many (default 2; 0 starts each sandbox on demand)."""

    def __init__(self) -> None:
        self.ready: dict[tuple, list[_Candidate]] = {}
        self.starting: dict[tuple, int] = {}
        self.keys: list[tuple] = []
        self.pending: set[int] = set()  # uids of spares being started
        self.cond = threading.Condition()
        self.workers = 0

    @staticmethod
    def wanted() -> int:
        try:
            return max(0, int(os.environ.get("BENCHWATCH_SANDBOX_SPARES", "2")))
        except ValueError:
            return 2

    def take(self, iso: Isolation, limits: Limits) -> _Candidate:
        key = (iso, limits)
        cand = stale = None
        with self.cond:
            if key not in self.keys:
                self.keys.append(key)
            ready = self.ready.setdefault(key, [])
            while ready and cand is None:
                cand = ready.pop(0)
                if not cand.alive():
                    stale, cand = cand, None
            while self.workers < self.wanted():
                self.workers += 1
                threading.Thread(target=self._work, daemon=True, name="sandbox-spares").start()
            self.cond.notify_all()
        if stale is not None:
            stale.discard()
        if cand is None:
            cand = _Candidate(iso, limits)
        cand.box.t0 = time.monotonic()  # the evaluation's clock starts now
        return cand

    def _deficit(self) -> tuple | None:
        for key in self.keys[-4:]:  # the limits in use lately (a run has one per code dataset)
            if len(self.ready.get(key, [])) + self.starting.get(key, 0) < self.wanted():
                return key
        return None

    def _work(self) -> None:
        while True:
            with self.cond:
                key = self._deficit()
                while key is None:
                    self.cond.wait()
                    key = self._deficit()
                self.starting[key] = self.starting.get(key, 0) + 1
                uid = _uid()
                self.pending.add(uid)
            try:
                cand = _Candidate(*key, uid=uid)
            except Exception as exc:  # noqa: BLE001 - the evaluation that needs one starts its own and reports
                log.debug("spare sandbox failed to start: %s", exc)
                cand = None
            with self.cond:
                if cand is None and key in self.keys:
                    self.keys.remove(key)  # no more spares for it until an evaluation asks again
                self.starting[key] -= 1
                self.pending.discard(uid)
                if cand is not None:
                    self.ready.setdefault(key, []).append(cand)
                self.cond.notify_all()

    def uids(self) -> set[int]:
        with self.cond:
            return self.pending | {c.box.uid for cs in self.ready.values() for c in cs if c.box.uid is not None}

    def close_all(self, wait_s: float = 10.0) -> None:
        deadline = time.monotonic() + wait_s
        with self.cond:
            self.keys.clear()  # no more starts
            while any(self.starting.values()) and time.monotonic() < deadline:  # let those under way finish
                self.cond.wait(0.05)
            cands = [c for cs in self.ready.values() for c in cs]
            self.ready.clear()
            self.keys.clear()
        for c in cands:
            c.discard()


_SPARES = _Spares()


def spare_uids() -> set[int]:
    """The uids of the candidates started ahead of need (idle, not part of any evaluation yet)."""
    return _SPARES.uids()


def shutdown() -> None:
    """Stop the spare candidates and the warm verifiers (also done at exit)."""
    _SPARES.close_all()
    _POOL.close_all()


atexit.register(shutdown)


def run(program: str, test: str = "", entry_point: str | None = None, limits: Limits = Limits(),
        python: str | None = None, prompt: str | None = None, same_process: bool = False) -> Outcome:
    """Evaluate `program` against `test` (and `check(entry_point)` when given). The tests run in the trusted
    verifier and call the candidate's functions; `same_process` runs both in the sandbox's one interpreter
    (forgeable: for tests that need objects across the boundary)."""
    iso = isolation(python)
    try:
        test = instrument_tests(test)
    except SyntaxError as exc:
        raise SandboxError(f"the task's tests do not compile: {exc}") from None
    if same_process:
        return _run_same_process(iso, program, test, entry_point, limits)
    cand = _SPARES.take(iso, limits) if _SPARES.wanted() else _Candidate(iso, limits)
    box = cand.box
    try:
        verifier = _POOL.get(iso)
        job = {"program": program, "test": test, "entry_point": entry_point, "prompt": prompt or ""}
        try:
            try:
                verifier.submit(job, [cand.req_w, cand.resp_r])
            except OSError as exc:
                raise SandboxError(f"the verifier is not answering: {exc}") from None
            cand.close_channel()  # the verifier holds the only ends now
            final = verifier.result(limits.wall_s - (time.monotonic() - box.t0))
            timed_out = final is None
            ended = False  # did the candidate end by itself (rather than break the channel, or be stopped)?
            if final is not None and final.get("gone") and not final.get("protocol"):  # let bwrap say how
                ended = _wait_exit(box.proc, 0.5)
            box.kill()  # the tests are done (or out of time): nothing of the candidate outlives them
            if timed_out:
                final = verifier.result(2.0)  # it sees the channel close and answers at once
                if final is None:
                    raise SandboxError("the task's tests did not finish after the candidate was stopped "
                                       "(a loop in the tests themselves?)")
        except BaseException:
            verifier.close()  # in an unknown state: never reused
            raise
        _POOL.put(iso, verifier)
        duration = time.monotonic() - box.t0
        exit_code, sig = box.exit_status()
        hits = box.group.hits() if box.group else {}
        stdout, n_out = box.output(box.out)
        stderr, n_err = box.output(box.err)
    finally:
        cand.close_channel()
        box.kill()
        box.cleanup()
    if final.get("not_started"):
        raise SandboxError(f"the sandbox did not start (exit {exit_code}): {stderr[-500:]}")
    outcome = Outcome(ready=True, final=final, exit_code=exit_code if ended else None,
                      signal=sig if ended else None, limit=None, stdout=stdout, stderr=stderr,
                      stdout_bytes=n_out, stderr_bytes=n_err, duration_s=duration, isolation=iso.summary())
    outcome.limit = _limit_hit(outcome, timed_out, hits, limits, iso)
    return outcome


def _run_same_process(iso: Isolation, program: str, test: str, entry_point: str | None,
                      limits: Limits) -> Outcome:
    nonce = secrets.token_hex(16)
    job = json.dumps({"nonce": nonce, "program": program, "test": test, "entry_point": entry_point,
                      "block_sockets": iso.mode == "rlimits"}).encode()
    job_fd = os.memfd_create("bw-job")
    os.write(job_fd, job)
    os.lseek(job_fd, 0, os.SEEK_SET)
    read_fd, write_fd = os.pipe()
    argv = [iso.python, "-I"] + ([] if limits.site_packages else ["-S"]) + ["-c", HARNESS, str(write_fd)]
    box = None
    try:
        box = _Sandboxed(iso, limits, argv, (write_fd,), stdin=job_fd)
        os.close(write_fd)
        write_fd = -1
        timed_out = not _wait_exit(box.proc, limits.wall_s)
        box.kill()
        duration = time.monotonic() - box.t0
        exit_code, sig = box.exit_status()
        hits = box.group.hits() if box.group else {}
        records = _read_records(read_fd)
        stdout, n_out = box.output(box.out)
        stderr, n_err = box.output(box.err)
    finally:
        for fd in (read_fd, write_fd, job_fd):
            if fd >= 0:
                os.close(fd)
        if box is not None:
            box.cleanup()
    mine = [r for r in records if r.get("nonce") == nonce]
    finals = [r for r in mine if r.get("stage") == "final"]
    final = next((r for r in finals if r.get("status") != "passed"), finals[0] if finals else None)
    outcome = Outcome(ready=any(r.get("stage") == "ready" for r in mine), final=final, exit_code=exit_code,
                      signal=sig, limit=None, stdout=stdout, stderr=stderr, stdout_bytes=n_out,
                      stderr_bytes=n_err, duration_s=duration, forged_records=len(records) - len(mine),
                      isolation=iso.summary(), forgeable=True)
    outcome.limit = _limit_hit(outcome, timed_out, hits, limits, iso)
    return outcome


def _wait_exit(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for the child's exit without polling (a pidfd wakes us at once); False on timeout."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def _read_records(fd: int) -> list[dict[str, Any]]:
    os.set_blocking(fd, False)
    chunks, total = [], 0
    while total < RESULT_FD_BYTES:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    records = []
    for line in b"".join(chunks).splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def _limit_hit(o: Outcome, timed_out: bool, hits: dict[str, int], limits: Limits, iso: Isolation) -> str | None:
    """Which limit ended or broke the run, from how it ended: our own clock, the cgroup's counters, the
    candidate's exit signal, the size of its output files. Never from what it printed or raised."""
    if hits.get("memory"):  # first: a memory or process limit hit is the likelier cause of what follows
        return f"memory ({limits.memory_mb} MB in total)"
    if hits.get("pids"):
        return f"processes ({limits.processes})"
    if timed_out:
        return f"wall time ({limits.wall_s:g} s)"
    if o.signal == "SIGXCPU" or (o.signal == "SIGKILL" and iso.cgroup is None and o.duration_s >= limits.cpu_s):
        return f"CPU time ({limits.cpu_s:g} s)"
    if o.signal == "SIGXFSZ" or max(o.stdout_bytes, o.stderr_bytes) >= limits.file_size_mb << 20:
        return f"file size ({limits.file_size_mb} MB)"
    return None
