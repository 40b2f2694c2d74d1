"""Run untrusted Python (a model's answer) with a task's tests in a child process that cannot hurt the host.

Isolation, strongest available (probed once, see `isolation()`; the README's "Evaluators" section explains it):

- "namespaces" (root, util-linux `unshare`): a new network namespace (no interface up: every connection,
  loopback included, gets ENETUNREACH), a new PID namespace with its own /proc (the child sees only its own
  processes; when the evaluation ends its PID 1 exits and the kernel kills every process left inside, daemons
  included), and the code runs as an unprivileged uid of its own (`setpriv`), so RLIMIT_NPROC bounds its
  processes (root ignores that limit) and file permissions protect the host's files, the results database and
  other processes' environments.
- "rlimits" (fallback where namespaces are not allowed): a new session killed as a group, sockets refused by
  an audit hook in the child, and, when we are root, the same unprivileged uid.

Always: wall-clock limit (the parent kills), CPU, address-space, process-count, file-size and open-file rlimits,
a fresh temporary directory removed afterwards, a scrubbed environment, stdout and stderr captured to files
bounded by the file-size limit and truncated when read back.
"""
from __future__ import annotations

import ast
import functools
import json
import logging
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HARNESS = (Path(__file__).with_name("harness.py")).read_text(encoding="utf-8")
UID_RANGE = (200_000, 260_000)  # unmapped uids: one per evaluation, so limits and permissions are its own
RESULT_FD_BYTES = 1 << 20


class SandboxError(RuntimeError):
    """The sandbox itself could not start or finish: the harness's ERROR, not the model's FAIL."""


@dataclass(frozen=True)
class Limits:
    wall_s: float = 10.0
    cpu_s: float = 10.0
    memory_mb: int = 512  # address space (virtual memory) of each process
    processes: int = 32  # processes and threads of the sandbox uid
    file_size_mb: int = 16  # any file written, stdout and stderr included
    open_files: int = 64
    output_bytes: int = 8192  # kept of stdout and of stderr
    site_packages: bool = False  # let the code import the interpreter's installed packages


@dataclass(frozen=True)
class Isolation:
    mode: str  # "namespaces" or "rlimits"
    python: str
    network: str
    processes: str
    user: str
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        return f"{self.mode}: {self.network}; {self.processes}; {self.user}"


@dataclass
class Outcome:
    """What happened in the child. `final` is the harness's last record (None: it never finished)."""
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
    extra: dict[str, Any] = field(default_factory=dict)


_NS_CMD = ["unshare", "--net", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc", "--"]
# PID 1 of the namespace stays root (so the parent-death signal that --kill-child set survives) and runs the
# code as the sandbox uid; its exit status is 128 + N when the code died of signal N.
_PID1 = 'setpriv --reuid="$BW_UID" --regid="$BW_UID" --clear-groups -- "$@"; exit $?'


def _uid() -> int:
    return UID_RANGE[0] + secrets.randbelow(UID_RANGE[1] - UID_RANGE[0])


def _probe(cmd: list[str], env: dict[str, str]) -> tuple[bool, str]:
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, timeout=20, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return p.returncode == 0 and p.stdout.strip() == b"ok", (p.stderr or p.stdout).decode(errors="replace")[-300:]


@functools.lru_cache(maxsize=None)
def isolation(python: str | None = None) -> Isolation:
    """Find the strongest isolation this host allows (run once per interpreter; the result is logged)."""
    candidates = [python] if python else list(dict.fromkeys(
        [sys.executable, shutil.which("python3") or "/usr/bin/python3", "/usr/bin/python3"]))
    check = ["-I", "-c", "import socket\ntry:\n socket.create_connection(('127.0.0.1', 9), 1)\n"
             "except OSError as e:\n print('ok' if e.errno == 101 else e)"]
    notes: list[str] = []
    root = os.geteuid() == 0
    forced = os.environ.get("BENCHWATCH_SANDBOX", "") == "rlimits"  # to try the fallback on a capable host
    if forced:
        notes.append("namespaces skipped: BENCHWATCH_SANDBOX=rlimits")
    elif root and shutil.which("unshare") and shutil.which("setpriv"):
        for py in candidates:
            env = {"PATH": os.defpath, "BW_UID": str(_uid())}
            ok, why = _probe(_NS_CMD + ["/bin/sh", "-c", _PID1, "sh", py] + check, env)
            if ok:
                iso = Isolation("namespaces", py, "network namespace (no network, loopback included)",
                                "PID namespace, killed as a whole afterwards", "own unprivileged uid per run")
                log.warning("code sandbox active: %s (python %s)", iso.summary(), py)  # said once per process
                return iso
            notes.append(f"namespaces with {py}: {why.strip() or 'failed'}")
    elif not root:
        notes.append("not root: no network/PID namespaces and no separate uid")
    py = candidates[0]
    for cand in candidates:  # the first interpreter the sandbox uid may run
        try:
            ok = subprocess.run([cand, "-I", "-c", "print('ok')"], capture_output=True, timeout=20, cwd="/",
                                preexec_fn=functools.partial(_limit_self, {}, _uid() if root else None)
                                ).stdout.strip() == b"ok"
        except (OSError, subprocess.SubprocessError) as exc:
            ok = False
            notes.append(f"{cand}: {exc}")
        if ok:
            py = cand
            break
    iso = Isolation("rlimits", py, "sockets blocked in the child (audit hook; no network namespace)",
                    "process group killed afterwards (no PID namespace)",
                    "own unprivileged uid per run" if root else "same user as the runner", tuple(notes))
    log.warning("code sandbox active: %s; %s", iso.summary(), "; ".join(notes))
    return iso


def instrument_tests(test: str) -> str:
    """Count the assertions that pass: `; __bw_tick__()` after every assert statement, on its own line, so the
    line numbers of a failing test stay those of the task's source. Done here, so the child needs no `ast`."""
    tree = ast.parse(test, "<tests>")
    lines = test.splitlines(keepends=True)
    ends = sorted(((n.end_lineno, n.end_col_offset) for n in ast.walk(tree) if isinstance(n, ast.Assert)),
                  reverse=True)
    for lineno, col in ends:  # offsets are UTF-8 bytes; work from the end so earlier offsets stay valid
        raw = lines[lineno - 1].encode()
        lines[lineno - 1] = (raw[:col] + b"; __bw_tick__()" + raw[col:]).decode()
    return "".join(lines)


def _read_head(path: Path, limit: int) -> tuple[str, int]:
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(limit)
    return head.decode("utf-8", errors="replace"), size


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _wait_exit(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait for the child's exit without polling (a pidfd wakes us at once); False on timeout."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (old kernel): Popen's own polling wait
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def _live_pids(uid: int) -> list[int]:
    """Processes of the sandbox uid that are not yet dead (zombies are dead, only not yet reaped)."""
    pids = []
    with os.scandir("/proc") as entries:
        for entry in entries:
            try:
                if not entry.name.isdigit() or entry.stat().st_uid != uid:  # /proc/PID belongs to its euid
                    continue
                state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state != "Z":
                pids.append(int(entry.name))
    return pids


def _kill_leftovers(uid: int, mode: str, wait_s: float = 2.0) -> None:
    """Kill whatever of the sandbox uid is still alive and wait until it is gone. In a PID namespace the kernel
    does this when PID 1 exits; this makes sure of it, and is how the fallback mode reaches session leavers."""
    deadline = time.monotonic() + wait_s
    while True:
        pids = _live_pids(uid)
        if not pids or time.monotonic() > deadline:
            if pids:
                log.warning("sandbox uid %s: processes %s still alive after kill", uid, pids[:10])
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)


def run(program: str, test: str = "", entry_point: str | None = None, limits: Limits = Limits(),
        python: str | None = None) -> Outcome:
    """Run `program`, then `test` (and `check(entry_point)` when given) in a fresh sandboxed child."""
    iso = isolation(python)
    nonce = secrets.token_hex(16)
    uid = _uid() if os.geteuid() == 0 else None
    try:
        test = instrument_tests(test)
    except SyntaxError as exc:
        raise SandboxError(f"the task's tests do not compile: {exc}") from None
    job = json.dumps({"nonce": nonce, "program": program, "test": test, "entry_point": entry_point,
                      "block_sockets": iso.mode != "namespaces"}).encode()
    top = Path(tempfile.mkdtemp(prefix="bw-sandbox-"))
    read_fd = write_fd = -1
    try:
        work = top / "work"
        work.mkdir()
        if uid is not None:
            os.chmod(top, 0o711)
            os.chown(work, uid, uid)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work),
               "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        read_fd, write_fd = os.pipe()
        # -I: no PYTHON* variables, no user site; -S: no site-packages (the standard library only, unless asked).
        child = [iso.python, "-I"] + ([] if limits.site_packages else ["-S"]) + ["-c", HARNESS, str(write_fd)]
        cpu = max(1, math.ceil(limits.cpu_s))
        rl = {"cpu": (cpu, cpu + 1), "as": limits.memory_mb << 20, "fsize": limits.file_size_mb << 20,
              "nproc": limits.processes, "nofile": limits.open_files, "core": 0}
        preexec = None
        if iso.mode == "namespaces":
            env["BW_UID"] = str(uid)
            prlimit = ["prlimit"] + [f"--{k}={v[0]}:{v[1]}" if isinstance(v, tuple) else f"--{k}={v}"
                                     for k, v in rl.items()] + ["--"]
            cmd = _NS_CMD + prlimit + ["/bin/sh", "-c", _PID1, "sh"] + child
        else:
            cmd = child
            preexec = functools.partial(_limit_self, rl, uid)
        stdout_path, stderr_path, job_path = top / "stdout", top / "stderr", top / "job.json"
        job_path.write_bytes(job)  # root's file, handed over as stdin and unlinked: the child cannot reopen it
        t0 = time.monotonic()
        timed_out = False
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err, job_path.open("rb") as job_in:
            job_path.unlink()
            try:
                proc = subprocess.Popen(cmd, stdin=job_in, stdout=out, stderr=err, cwd=work, env=env,
                                        pass_fds=(write_fd,), start_new_session=True, preexec_fn=preexec)
            except OSError as exc:
                raise SandboxError(f"cannot start the sandbox ({cmd[0]}): {exc}") from None
            os.close(write_fd)
            write_fd = -1
            try:
                timed_out = not _wait_exit(proc, limits.wall_s)
            finally:
                _kill_group(proc.pid)  # whatever is left of it, whether it finished or not
                proc.wait()
                if uid is not None:
                    _kill_leftovers(uid, iso.mode)
        duration = time.monotonic() - t0
        records = _read_records(read_fd)
        stdout, n_out = _read_head(stdout_path, limits.output_bytes)
        stderr, n_err = _read_head(stderr_path, limits.output_bytes)
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(top, ignore_errors=True)
    mine = [r for r in records if r.get("nonce") == nonce]
    ready = any(r.get("stage") == "ready" for r in mine)
    # A fork of the harness also reports: one failing final record fails the run.
    finals = [r for r in mine if r.get("stage") == "final"]
    final = next((r for r in finals if r.get("status") != "passed"), finals[0] if finals else None)
    rc = proc.returncode
    sig = None
    if rc is not None and rc < 0:
        sig = _signal_name(-rc)
    elif iso.mode == "namespaces" and rc is not None and rc > 128:
        sig = _signal_name(rc - 128)
    outcome = Outcome(ready=ready, final=final, exit_code=rc, signal=sig, limit=None, stdout=stdout,
                      stderr=stderr, stdout_bytes=n_out, stderr_bytes=n_err, duration_s=duration,
                      forged_records=len(records) - len(mine), isolation=iso.summary())
    outcome.limit = _limit_hit(outcome, timed_out, limits)
    return outcome


def _limit_self(rl: dict[str, Any], uid: int | None) -> None:
    """Fallback mode, in the child before exec: the rlimits, then the unprivileged uid where we are root."""
    import resource
    names = {"cpu": resource.RLIMIT_CPU, "as": resource.RLIMIT_AS, "fsize": resource.RLIMIT_FSIZE,
             "nproc": resource.RLIMIT_NPROC, "nofile": resource.RLIMIT_NOFILE, "core": resource.RLIMIT_CORE}
    for k, v in rl.items():
        resource.setrlimit(names[k], v if isinstance(v, tuple) else (v, v))
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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


def _limit_hit(o: Outcome, timed_out: bool, limits: Limits) -> str | None:
    """Which limit ended or broke the run, named for the verdict's detail."""
    if timed_out:
        return f"wall time ({limits.wall_s:g} s)"
    if o.signal in ("SIGXCPU",):
        return f"CPU time ({limits.cpu_s:g} s)"
    if o.signal == "SIGXFSZ":
        return f"file size ({limits.file_size_mb} MB)"
    text = json.dumps(o.final or {}) + o.stderr[-4000:]
    if o.signal == "SIGKILL" and o.duration_s >= limits.cpu_s:
        return f"CPU time ({limits.cpu_s:g} s)"
    if "MemoryError" in text or "Cannot allocate memory" in text:
        return f"memory ({limits.memory_mb} MB address space)"
    if "File too large" in text or "[Errno 27]" in text:
        return f"file size ({limits.file_size_mb} MB)"
    if "can't start new thread" in text or "Resource temporarily unavailable" in text or "[Errno 11]" in text:
        return f"processes ({limits.processes})"
    if "Too many open files" in text:
        return f"open files ({limits.open_files})"
    return None
