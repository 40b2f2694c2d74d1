"""benchwatch beside guidellm at the same concurrency, against the same stand-in (tests/standins/load_openai.py:
300 ms to the first token, 20 tokens 25 ms apart, unlimited parallelism).

guidellm runs from its own virtual environment (never this project's): create it once with
    python3 -m venv /tmp/guidellm-venv && /tmp/guidellm-venv/bin/pip install guidellm
It is driven with `guidellm run` (openai_http backend, `validate_backend=false`, a concurrent profile, a
max_requests constraint, a JSON-lines file of prompts, JSON output, HF_HUB_OFFLINE=1).

Per tool: request throughput (completed requests / the benchmark's duration), median TTFT and ITL as each tool
measures them, and the client's CPU per request. CPU is marginal, so neither tool's start-up counts: the
difference in CPU between a run of --requests and one of --requests/4, divided by the difference in requests
(benchwatch: the runner process and its stream worker, started by an untimed warm-up; guidellm: its process
tree, from RUSAGE_CHILDREN).

    .venv/bin/python bench/bench_guidellm.py [--concurrency 16] [--requests 256] [--guidellm /tmp/guidellm-venv/bin/guidellm]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_concurrency import dataset, run_level, start_standin  # noqa: E402


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def guidellm(exe: str, url: str, tmp: Path, n: int, conc: int) -> dict:
    data = tmp / "guidellm.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"What is {i} plus 1?"}) + "\n" for i in range(n)))
    out = tmp / f"guidellm-{n}.json"
    cmd = [exe, "run", "--backend", f"kind=openai_http,target={url},model=load,validate_backend=false",
           "--profile", f"kind=concurrent,streams={conc}", "--constraint", f"kind=max_requests,count={n}",
           "--data", f"kind=json_file,path={data}", "--output", f"kind=json,path={out}", "--disable-console"]
    c0, t0 = children_cpu(), time.monotonic()
    res = subprocess.run(cmd, cwd=tmp, env=dict(os.environ, HF_HUB_OFFLINE="1"), capture_output=True, text=True)
    wall, cpu = time.monotonic() - t0, children_cpu() - c0
    if res.returncode != 0 or not out.exists():
        raise SystemExit(f"guidellm failed ({res.returncode}): {res.stderr[-2000:]}")
    b = json.loads(out.read_text())["benchmarks"][0]
    m = b["metrics"]
    ok = len(b["requests"]["successful"])
    return {"completed": ok, "errored": len(b["requests"]["errored"]), "duration_s": b["duration"],
            "process_wall_s": wall, "cpu_s": cpu, "requests_per_s": ok / b["duration"],
            "ttft_ms_p50": m["time_to_first_token_ms"]["successful"]["median"],
            "itl_ms_p50": m["inter_token_latency_ms"]["successful"]["median"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--requests", type=int, default=256)
    ap.add_argument("--guidellm", default="/tmp/guidellm-venv/bin/guidellm")
    args = ap.parse_args()
    if not Path(args.guidellm).exists():
        raise SystemExit(f"{args.guidellm} is absent: python3 -m venv /tmp/guidellm-venv && "
                         "/tmp/guidellm-venv/bin/pip install guidellm")
    small = max(args.requests // 4, args.concurrency)
    proc, url = start_standin()
    try:
        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td)
            data = dataset(tmp, args.requests)
            small_data = dataset(Path(tempfile.mkdtemp(dir=td)), small)
            # The runner's stream worker starts once per runner process: start it before either measured run,
            # so its start-up is in neither (as each guidellm run's start-up cancels out of the difference).
            run_level(url, dataset(Path(tempfile.mkdtemp(dir=td)), 8), Path(tempfile.mkdtemp(dir=td)), 8, 8)
            bw_small = run_level(url, small_data, Path(tempfile.mkdtemp(dir=td)), small, args.concurrency)
            bw = run_level(url, data, tmp, args.requests, args.concurrency)
            gl_small = guidellm(args.guidellm, url, tmp, small, args.concurrency)
            gl = guidellm(args.guidellm, url, tmp, args.requests, args.concurrency)
    finally:
        proc.terminate()
        proc.wait(10)
    n = args.requests - small
    bw_cpu = (bw["cpu_ms_per_request"] * args.requests - bw_small["cpu_ms_per_request"] * small) / n
    gl_cpu = (gl["cpu_s"] - gl_small["cpu_s"]) * 1000 / n
    print(f"stand-in: TTFT 300 ms, 20 tokens 25 ms apart, unlimited parallelism; concurrency {args.concurrency}, "
          f"{args.requests} requests (CPU: marginal over {small} -> {args.requests}); {os.cpu_count()} CPUs")
    print(f"{'tool':<11} {'req/s':>7} {'TTFT p50 ms':>12} {'ITL p50 ms':>11} {'CPU ms/req':>11} {'errors':>7}")
    print(f"{'benchwatch':<11} {bw['requests_per_s']:>7.2f} {bw['ttft_ms_p50']:>12.1f} {bw['itl_ms_p50']:>11.2f} "
          f"{bw_cpu:>11.2f} {0:>7}")
    print(f"{'guidellm':<11} {gl['requests_per_s']:>7.2f} {gl['ttft_ms_p50']:>12.1f} {gl['itl_ms_p50']:>11.2f} "
          f"{gl_cpu:>11.2f} {gl['errored']:>7}")
    print(f"CPU ratio benchwatch / guidellm: {bw_cpu / gl_cpu:.2f}" if gl_cpu > 0 else "")
    print(json.dumps({"benchwatch": bw, "guidellm": gl, "benchwatch_cpu_ms_per_req_marginal": bw_cpu,
                      "guidellm_cpu_ms_per_req_marginal": gl_cpu}))


if __name__ == "__main__":
    main()
