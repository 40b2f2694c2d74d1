"""The minimal filesystem and namespaces of the sandbox: a bubblewrap command line, built once per interpreter.

Inside: /usr (and the /bin, /lib... links into it) and the interpreter's own prefix, read-only; a fresh /proc
of its own PID namespace; a minimal /dev (null, zero, random, urandom, tty...: no host /dev/shm); a private,
size-limited tmpfs at /tmp that is also the working directory. Nothing else of the host: no /etc, /home,
/root, /run, /var, no project, virtual environment, store, config or dataset. New network, PID, IPC, UTS and
cgroup namespaces; a seccomp filter that refuses socket(), socketpair() and io_uring (so no AF_UNIX either:
the only channel is the pipes handed over at start). bwrap itself runs as root (it must read the interpreter's
prefix and make the mounts) and the code runs as an unprivileged uid of its own, with no capabilities.
"""
from __future__ import annotations

import os
import platform
import shutil
import struct
import sys
from pathlib import Path

# Syscall numbers refused by the seccomp filter, per architecture (AUDIT_ARCH value, numbers).
_ARCH = {
    "x86_64": (0xC000003E, (41, 53, 425)),  # socket, socketpair, io_uring_setup
    "aarch64": (0xC00000B7, (198, 199, 425)),
}


def seccomp_program() -> bytes | None:
    """A classic-BPF seccomp filter: EPERM for the refused syscalls, for the x32 ABI and for any other
    architecture's syscalls; everything else allowed. None on an architecture we have no numbers for."""
    arch = _ARCH.get(platform.machine())
    if arch is None:
        return None
    audit_arch, numbers = arch
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    n = len(numbers)
    deny_at = 4 + n + 1  # index of the deny instruction
    prog = [(ld, 0, 0, 4),  # arch
            (jeq, 0, deny_at - 2, audit_arch),
            (ld, 0, 0, 0),  # syscall number
            (jge, deny_at - 4, 0, 0x40000000)]  # x32 ABI
    for i, nr in enumerate(numbers):
        prog.append((jeq, deny_at - (4 + i + 1), 0, nr))
    prog += [(ret, 0, 0, allow), (ret, 0, 0, deny)]
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)


def interpreter(python: str | None = None) -> tuple[str, list[str]]:
    """The real interpreter binary behind this one, or behind `python` (a venv's python is a link to it), and
    the folders it needs besides /usr (its prefix, when it lives elsewhere, as pyenv's does under /root)."""
    exe = os.path.realpath(python or sys.executable)
    prefixes = [os.path.dirname(os.path.dirname(exe))] if python else [sys.base_prefix, sys.base_exec_prefix]
    extra = []
    for prefix in dict.fromkeys(prefixes):
        real = os.path.realpath(prefix)
        if not real.startswith("/usr/") and real != "/usr":
            extra.append(real)
    return exe, extra


def available() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "not root: bubblewrap cannot bind the interpreter and drop to a uid of its own"
    if not shutil.which("bwrap"):
        return False, "bubblewrap (bwrap) is not installed (Debian package: bubblewrap)"
    if not shutil.which("setpriv"):
        return False, "setpriv (util-linux) is not installed"
    return True, ""


def command(uid: int, tmp_bytes: int, seccomp_fd: int | None, status_fd: int | None, extra_ro: list[str]) -> list[str]:
    """bwrap ... -- setpriv (drop to uid) --: append the program and its arguments."""
    cmd = [shutil.which("bwrap") or "bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "sandbox",
           "--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            cmd += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            cmd += ["--ro-bind", str(path), str(path)]
    for d in extra_ro:
        cmd += ["--ro-bind", d, d]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp",
            "--chdir", "/tmp", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/tmp",
            "--setenv", "TMPDIR", "/tmp", "--setenv", "LANG", "C.UTF-8"]
    if seccomp_fd is not None:
        cmd += ["--seccomp", str(seccomp_fd)]
    if status_fd is not None:
        cmd += ["--json-status-fd", str(status_fd)]
    cmd += ["--", shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--"]
    return cmd
