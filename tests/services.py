"""Throw-away PostgreSQL and Redis servers on loopback for the scale-out tests (real servers from Debian's
packages, which `scripts/init.sh --for-tests` installs). Each runs in a temporary directory on a free port and
is stopped by its own process id."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchwatch.processes import stop_process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout:g} s: {log.read_text()[-2000:]}")


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL's server is not installed: run scripts/init.sh --for-tests")
    return Path(found[-1]).parent


@contextmanager
def postgres_server() -> Iterator[str]:
    """A fresh cluster (trust auth, loopback only) in its own temporary directory; yields its SQLAlchemy URL.
    PostgreSQL refuses to run as root, so as root the cluster belongs to `nobody` (and lives outside pytest's
    private tmp_path, which `nobody` can't enter)."""
    bindir = _postgres_bin()
    top = Path(tempfile.mkdtemp(prefix="benchwatch-pg-"))
    data, log = top / "data", top / "postgres.log"
    as_user: list[str] = []
    try:
        data.mkdir(mode=0o700)
        log.touch()
        if os.geteuid() == 0:
            top.chmod(0o755)
            for p in (data, log):
                shutil.chown(p, "nobody", "nogroup")
            as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
        subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-U", "bench", "--auth=trust",
                                  "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
        port = free_port()
        with open(log, "a") as out:
            proc = subprocess.Popen(as_user + [str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                                               "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                                               "-c", "fsync=off"], stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_port(port, proc, "postgres", log)
            yield f"postgresql+psycopg://bench@127.0.0.1:{port}/postgres"
        finally:
            stop_process(proc)
    finally:
        shutil.rmtree(top, ignore_errors=True)


class RedisServer:
    """redis-server without persistence on a free loopback port; stop() and start() again on the same port
    (the tests take it away mid-run)."""

    def __init__(self, tmp: Path):
        self.tmp, self.port = tmp, free_port()
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed: run scripts/init.sh --for-tests")
        log = self.tmp / "redis.log"
        with open(log, "a") as out:
            self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                          "--save", "", "--appendonly", "no", "--dir", str(self.tmp)],
                                         stdout=out, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, "redis-server", log)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


@contextmanager
def redis_server(tmp: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp).start()
    try:
        yield srv
    finally:
        srv.stop()


@contextmanager
def prometheus_server(tmp: Path, targets: list[str], interval_s: float = 1.0) -> Iterator[str]:
    """Debian's `prometheus` on a free loopback port with its own scrape config and data directory, scraping
    `targets` (host:port) at `interval_s`; yields its base URL (query it through /api/v1/...)."""
    if shutil.which("prometheus") is None:
        raise RuntimeError("prometheus is not installed: run scripts/init.sh --for-tests")
    top = tmp / "prometheus"
    (top / "data").mkdir(parents=True)
    config, log = top / "prometheus.yml", top / "prometheus.log"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {interval_s:g}s\n"
        f"  scrape_timeout: {interval_s:g}s\n"
        "scrape_configs:\n"
        "  - job_name: benchwatch\n"
        "    static_configs:\n"
        f"      - targets: [{', '.join(repr(t) for t in targets)}]\n")
    port = free_port()
    with open(log, "a") as out:
        proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={top / 'data'}",
                                 f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, "prometheus", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)
