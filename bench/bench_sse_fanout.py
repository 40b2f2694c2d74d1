"""SSE fan-out: N concurrent SSE clients on loopback while a publisher sends token events at a fixed rate.

Starts a real `benchwatch serve` (gunicorn, one worker: gevent by default, --worker gthread to compare; with
--workers N, N workers sharing a Redis event bus, a redis-server started on loopback, whose CPU is counted in),
connects N raw-socket SSE clients (2 client processes, one epoll loop each), and publishes token events through the
ingest endpoint in batches of 10 (as the runner's sink does), plus a task_finished + task_started (state-
changing) every second. Each token's text carries its publish time, so a client's receipt time gives the
publish -> receipt latency. Prints p50 / p99 latency, server CPU (% of one core) and RSS, the clients' own CPU,
and checks that every client received every patch id without a gap (so every state-changing event).

The clients share the machine's cores with the server under test, so they do as little as they can while the
run lasts: receive, stamp the receipt time, keep the bytes; they parse afterwards. (An asyncio harness that
parsed as it read took over a whole core of the two and pushed the server's p99 up by some 60 ms.)

    .venv/bin/python bench/bench_sse_fanout.py [--clients 500] [--rate 200] [--seconds 20] [--worker gevent] [--workers 1]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
TS = re.compile(rb"T(\d+\.\d+)T")
ID = re.compile(rb"(?:^|\n)id: (\d+)\n")


def start_server(tmp: Path, worker: str, max_streams: int, *extra: str) -> tuple[subprocess.Popen, str]:
    cfg = tmp / "config.yaml"
    cfg.write_text(f"store: sqlite:///{tmp / 'bench.db'}\nserver: {{max_streams: {max_streams}}}\n"
                   "models: [{name: m, backend: scripted}]\ndatasets: [{name: d, source: 'builtin:facts'}]\n")
    env = dict(os.environ, BENCHWATCH_TOKEN=TOKEN, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "benchwatch.cli", "serve", "--config", str(cfg), "--port", "0",
                             "--log-dir", str(tmp / "log"), "--worker", worker, *extra], env=env, cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # type: ignore[union-attr]
        if "listening on " in line:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # type: ignore[union-attr]
            return proc, line.split("listening on ")[1].strip()
    raise SystemExit("server did not start")


def client_process(url: str, n: int, stop_at: float, q: mp.Queue) -> None:
    """N SSE clients on one epoll loop. During the run a client only receives and keeps (receipt time, bytes);
    parsing waits until the end, so the harness takes as little CPU from the server under test as it can."""
    host, port = url.split("//")[1].rsplit(":", 1)
    sel = selectors.DefaultSelector()
    received: dict[int, list[tuple[float, bytes]]] = {}
    closed = 0
    for _ in range(n):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"GET /api/benchmark/telemetry/stream HTTP/1.1\r\nHost: bench\r\n\r\n")
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
        received[sock.fileno()] = []
        time.sleep(0.002)  # don't SYN-flood the listen backlog
    while sel.get_map() and time.time() < stop_at:
        for key, _ in sel.select(timeout=max(stop_at - time.time(), 0.01)):
            try:
                data = key.fileobj.recv(1 << 16)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            if data:
                received[key.fd].append((time.time(), data))
            else:
                closed += 1
                sel.unregister(key.fileobj)
    ids_per_client, lat = [], []
    for chunks in received.values():
        ids: list[int] = []
        buf = b""
        for now, data in chunks:
            buf += data
            cut = buf.rfind(b"\n\n")  # whole messages only: a read can end mid-line
            if cut < 0:
                continue
            done, buf = b"\n" + buf[:cut + 2], buf[cut + 2:]
            ids.extend(int(m) for m in ID.findall(done))
            lat.extend(now - float(t) for t in TS.findall(done))
        ids_per_client.append(ids)
    q.put({"ids": ids_per_client, "lat": lat, "closed": closed})


def run_events(seq: int, task: int) -> list[dict]:
    ref = {"run_id": "bench", "model": "m", "dataset": "d", "task_id": f"t{task}", "attempt": 1}
    return [{"type": "task_started", **ref, "seq": seq, "prompt": "p"},
            {"type": "stage", **ref, "seq": seq + 1, "stage": "streaming", "at_s": 0.0}]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--rate", type=int, default=200, help="token events per second")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--worker", choices=("gevent", "gthread"), default="gevent")
    ap.add_argument("--workers", type=int, default=1,
                    help="gunicorn workers; more than 1 starts a redis-server on loopback as their event bus")
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        redis, extra = None, []
        if args.workers > 1:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                rport = s.getsockname()[1]
            redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL)
            time.sleep(0.5)
            extra = ["--workers", str(args.workers), "--bus", f"redis://127.0.0.1:{rport}/0"]
        proc, url = start_server(Path(d), args.worker, max(1000, args.clients + 10), *extra)
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        tasks = 1000
        start = [{"type": "run_started", "run_id": "bench", "seq": 1,
                  "models": [{"name": "m", "backend": "scripted"}],
                  "datasets": [{"name": "d", "evaluator": "exact_match", "task_ids": [f"t{i}" for i in range(tasks)]}]},
                 {"type": "model_started", "run_id": "bench", "seq": 2, "model": "m", "backend": "scripted",
                  "ordinal": 1, "total": 1},
                 {"type": "dataset_started", "run_id": "bench", "seq": 3, "model": "m", "dataset": "d",
                  "task_ids": [f"t{i}" for i in range(tasks)]}]
        seq = 10
        http.post("/api/benchmark/telemetry/events", json=start + run_events(seq, 0)).raise_for_status()
        seq += 2
        time.sleep(1)  # every worker up
        workers = psutil.Process(proc.pid).children() + ([psutil.Process(redis.pid)] if redis else [])
        connect_s = args.clients * 0.002 / args.procs + 3
        stop_at = time.time() + connect_s + args.seconds + 2
        q: mp.Queue = mp.Queue()
        procs = [mp.Process(target=client_process, args=(url, args.clients // args.procs, stop_at, q))
                 for _ in range(args.procs)]
        for p in procs:
            p.start()
        time.sleep(connect_s)
        streams = http.get("/healthz").json()["streams"]
        client_ps = [psutil.Process(p.pid) for p in procs]
        cpu0, t0 = [w.cpu_times() for w in workers], time.monotonic()
        ccpu0 = [c.cpu_times() for c in client_ps]
        batch, interval = 10, 10 / args.rate
        task, sent_tokens, state_events, next_at = 0, 0, 0, time.monotonic()
        last_task_switch = time.monotonic()
        rss_max = 0
        while time.monotonic() - t0 < args.seconds:
            evs = []
            ref = {"run_id": "bench", "model": "m", "dataset": "d", "task_id": f"t{task}", "attempt": 1}
            for _ in range(batch):
                seq += 1
                evs.append({"type": "token", **ref, "seq": seq, "kind": "visible", "text": f"T{time.time():.6f}T ",
                            "n_tokens": 1})
            if time.monotonic() - last_task_switch >= 1.0:  # state-changing events, once a second
                seq += 1
                evs.append({"type": "task_finished", **ref, "seq": seq, "verdict": "PASS", "final": True})
                task += 1
                evs += run_events(seq + 1, task)
                seq += 2
                state_events += 3
                last_task_switch = time.monotonic()
            http.post("/api/benchmark/telemetry/events", json=evs).raise_for_status()
            sent_tokens += batch
            rss_max = max(rss_max, sum(w.memory_info().rss for w in workers))
            next_at += interval
            time.sleep(max(next_at - time.monotonic(), 0))
        cpu1, t1 = [w.cpu_times() for w in workers], time.monotonic()
        ccpu1 = [c.cpu_times() for c in client_ps]
        # Each worker counts its own patch ids (from its own start): ask until every worker has answered.
        final_versions: dict[int, int] = {}
        dropped = 0
        for _ in range(50):
            health = http.get("/healthz", headers={"Connection": "close"}).json()
            if health["worker_pid"] not in final_versions:
                final_versions[health["worker_pid"]] = health["version"]
                dropped += health["dropped_clients"]
            if len(final_versions) == args.workers:
                break
        results = [q.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(10)
        proc.terminate()
        proc.wait(15)
        if redis is not None:
            redis.terminate()
            redis.wait(15)
    ids = [i for r in results for i in r.get("ids", [])]
    lat = sorted(x for r in results for x in r.get("lat", []))
    closed = sum(r.get("closed", 0) for r in results)
    complete = 0
    for seen in ids:
        # Contiguous ids, reaching the final version of the worker that served this client (or a later sampler
        # patch); workers' id ranges start at their start times (ms x 1000), far apart.
        if seen and seen == list(range(seen[0], seen[0] + len(seen))) and \
                any(0 <= seen[-1] - v < 1000 for v in final_versions.values()):
            complete += 1
    cpu = sum(b.user + b.system - a.user - a.system for a, b in zip(cpu0, cpu1)) / (t1 - t0) * 100
    client_cpu = sum(b.user + b.system - a.user - a.system for a, b in zip(ccpu0, ccpu1)) / (t1 - t0) * 100
    q50 = statistics.median(lat) * 1000 if lat else float("nan")
    q99 = lat[int(0.99 * (len(lat) - 1))] * 1000 if lat else float("nan")
    print(json.dumps({"worker": args.worker, "workers": args.workers, "clients": len(ids), "streams_at_start": streams,
                      "token_events_per_s": round(sent_tokens / (t1 - t0), 1), "state_events": state_events,
                      "latency_ms_p50": round(q50, 2), "latency_ms_p99": round(q99, 2),
                      "server_cpu_pct_of_one_core": round(cpu, 1), "server_rss_mb_max": round(rss_max / 1e6, 1),
                      "client_cpu_pct_of_one_core": round(client_cpu, 1),
                      "clients_with_every_patch": complete, "clients_closed_by_server": closed,
                      "dropped_clients": dropped}, indent=1))
    print(f"fan-out ({args.workers} {args.worker}{' + redis' if args.workers > 1 else ''}): {len(ids)} clients, {sent_tokens / (t1 - t0):.0f} token ev/s: "
          f"p50 {q50:.1f} ms, p99 {q99:.1f} ms (target p99 < 100 ms); server CPU {cpu:.0f}% of a core, "
          f"RSS {rss_max / 1e6:.0f} MB; {complete}/{len(ids)} clients got every patch id without a gap")


if __name__ == "__main__":
    main()
