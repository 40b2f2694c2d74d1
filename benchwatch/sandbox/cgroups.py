"""Total memory and process limits for one evaluation: a cgroup (v2 or v1, whichever this host lets us write).

`probe()` finds a writable hierarchy once; `Group.create()` makes one cgroup per evaluation, `join` (called in
the child before exec) puts the sandbox's first process in it, so every process it starts is counted too.
Limit hits are read from the kernel's own counters (`memory.events` / `memory.oom_control`, `pids.events`),
never from anything the sandboxed code prints.
"""
from __future__ import annotations

import functools
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    memory: Path  # the folder new cgroups go in (v2: memory and pids share it)
    pids: Path

    def describe(self) -> str:
        return f"cgroup v{self.version} (memory and process count, in total)"


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, fs type, super options) of every cgroup mount."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) > 4 and len(rfields) >= 3 and rfields[0] in ("cgroup", "cgroup2"):
            out.append((fields[4], rfields[0], rfields[2]))
    return out


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> this process's cgroup path."""
    paths = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                paths[c] = path
    except (OSError, ValueError):
        pass
    return paths


def _try(h: Hierarchy) -> Hierarchy | None:
    g = None
    try:
        g = Group.create(h, memory_bytes=64 << 20, pids=8)
        g.remove()
        return h
    except OSError:
        if g is not None:
            g.remove()
        return None


@functools.lru_cache(maxsize=1)
def probe() -> tuple[Hierarchy | None, str]:
    """The writable hierarchy (None if there is none) and a line saying what was found."""
    if os.environ.get("BENCHWATCH_SANDBOX_CGROUP", "") == "off":  # to try the per-process fallback
        return None, "cgroups skipped: BENCHWATCH_SANDBOX_CGROUP=off"
    mounts, own = _mounts(), _own_paths()
    tried = []
    for point, fstype, opts in mounts:
        if fstype != "cgroup2":
            continue
        base = Path(point) / own.get("", "/").lstrip("/")
        try:
            ctrls = (base / "cgroup.controllers").read_text().split()
        except OSError:
            continue
        if not {"memory", "pids"} <= set(ctrls):
            tried.append(f"cgroup2 at {point}: memory/pids controllers not available")
            continue
        try:
            sub = (base / "cgroup.subtree_control").read_text().split()
            if not {"memory", "pids"} <= set(sub):
                (base / "cgroup.subtree_control").write_text("+memory +pids")
        except OSError as exc:
            tried.append(f"cgroup2 at {base}: cannot delegate memory/pids ({exc.strerror})")
            continue
        h = _try(Hierarchy(2, base, base))
        if h:
            sweep(h)
            return h, h.describe()
        tried.append(f"cgroup2 at {base}: not writable")
    v1 = {}
    for point, fstype, opts in mounts:
        if fstype == "cgroup":
            for c in ("memory", "pids"):
                if c in opts.split(","):
                    v1[c] = Path(point) / own.get(c, "/").lstrip("/")
    if "memory" in v1 and "pids" in v1:
        h = _try(Hierarchy(1, v1["memory"], v1["pids"]))
        if h:
            sweep(h)
            return h, h.describe()
        tried.append("cgroup v1 memory/pids: not writable")
    else:
        tried.append("no cgroup v1 memory and pids controllers mounted")
    return None, "; ".join(tried) or "no cgroup mounted"


def sweep(h: Hierarchy, min_age_s: float = 60.0) -> int:
    """Remove the empty evaluation cgroups a killed runner left behind (older than `min_age_s`, so another
    runner's cgroup that its first process has not joined yet is left alone). A cgroup with processes in it
    cannot be removed: it is someone's live sandbox. Returns how many were removed."""
    removed = 0
    now = time.time()
    for folder in dict.fromkeys([h.memory, h.pids]):
        for d in folder.glob("benchwatch-sandbox-*"):
            try:
                if now - d.stat().st_mtime >= min_age_s and not (d / "cgroup.procs").read_text().strip():
                    d.rmdir()
                    removed += 1
            except OSError:
                pass
    return removed


class Group:
    """One evaluation's cgroup (two folders under v1: memory and pids)."""

    def __init__(self, h: Hierarchy, dirs: list[Path]):
        self.h, self.dirs = h, dirs

    @classmethod
    def create(cls, h: Hierarchy, memory_bytes: int, pids: int) -> "Group":
        name = f"benchwatch-sandbox-{secrets.token_hex(6)}"
        dirs = [h.memory / name] if h.version == 2 else [h.memory / name, h.pids / name]
        g = cls(h, [])
        for d in dirs:
            d.mkdir()
            g.dirs.append(d)
        if h.version == 2:
            d = dirs[0]
            (d / "memory.max").write_text(str(memory_bytes))
            try:
                (d / "memory.swap.max").write_text("0")
            except OSError:
                pass  # no swap accounting: the memory limit still holds
            (d / "pids.max").write_text(str(pids))
        else:
            (dirs[0] / "memory.limit_in_bytes").write_text(str(memory_bytes))
            try:
                (dirs[0] / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            except OSError:
                pass
            (dirs[1] / "pids.max").write_text(str(pids))
        return g

    def join(self) -> None:
        """Put the calling process in this cgroup (the sandbox's child calls it before exec)."""
        pid = str(os.getpid())
        for d in self.dirs:
            with open(d / "cgroup.procs", "w") as f:
                f.write(pid)

    def _counter(self, path: Path, key: str) -> int:
        try:
            for line in path.read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == key:
                    return int(v)
        except (OSError, ValueError):
            pass
        return 0

    def hits(self) -> dict[str, int]:
        """How many times each limit was hit: {"memory": OOM kills, "pids": refused forks}."""
        if self.h.version == 2:
            d = self.dirs[0]
            return {"memory": self._counter(d / "memory.events", "oom_kill"),
                    "pids": self._counter(d / "pids.events", "max")}
        mem = self._counter(self.dirs[0] / "memory.oom_control", "oom_kill")
        return {"memory": mem, "pids": self._counter(self.dirs[1] / "pids.events", "max")}

    def pids(self) -> list[int]:
        found = set()
        for d in self.dirs:
            try:
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return sorted(found)

    def kill(self, wait_s: float = 2.0) -> bool:
        """SIGKILL everything inside and wait until it is gone (True) or `wait_s` has passed."""
        kill_file = self.dirs[0] / "cgroup.kill"
        if self.h.version == 2 and kill_file.exists():
            try:
                kill_file.write_text("1")
            except OSError:
                pass
        deadline = time.monotonic() + wait_s
        while True:
            pids = self.pids()
            if not pids:
                return True
            if time.monotonic() > deadline:
                return False
            sigkill(pids)
            time.sleep(0.0005)

    def remove(self) -> None:
        for d in reversed(self.dirs):
            for _ in range(200):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still busy: its last processes are being reaped
                    time.sleep(0.001)


def sigkill(pids: list[int]) -> None:
    """SIGKILL each of these processes; one that is already gone (or not ours to kill) is passed over."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
