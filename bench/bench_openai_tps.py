"""Client-measured vs server-reported tokens/s through a real OpenAI-compatible server.

Starts llama-cpp-python's own server (`python -m llama_cpp.server`) on a free loopback port serving the embedded
SmolLM2 model, runs the runner's `openai` backend over N prompts that draw long answers, and pairs each result's
tokens/s (the runner's one definition: visible tokens after the first visible chunk over the time from that
chunk to the last) with what the server itself reports for the same request (it prints llama.cpp's timers per
request, `llama_perf_context_print`):
- server wall-clock generation rate: decodes / (total time - prompt eval time): everything the server spends
  per token (decode, sampling, detokenising, its Python streaming), the rate a client can at best see;
- llama.cpp's decode-only rate: decodes / eval time (the forward passes alone).
Prints medians. The machine is shared and noisy: the ratios matter more than the absolute rates.

    .venv/bin/python bench/bench_openai_tps.py [--n 12] [--max-tokens 160] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchwatch.backends.embedded import default_gguf  # noqa: E402
from benchwatch.config import parse_config  # noqa: E402
from benchwatch.runner import Runner  # noqa: E402
from benchwatch.store import Store  # noqa: E402
from tests.standins.llamacpp_server import LlamaCppServer  # noqa: E402  (the real server, not a stand-in)

TOPICS = ["a lighthouse keeper", "a lost robot", "the first snow", "a city of bridges", "an old clock", "a fox",
          "the tide", "a night train", "a garden on Mars", "a retired pilot", "a library at dawn", "a kite"]
PERF_RE = re.compile(r"prompt eval time =\s*([\d.]+) ms.*\n.*?\beval time =\s*([\d.]+) ms /\s*(\d+) runs.*\n"
                     r".*?total time =\s*([\d.]+) ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-openai-"))
    data = tmp / "stories.jsonl"
    data.write_text("".join(json.dumps({"id": f"story-{i:02d}", "expected": "-",
                                        "prompt": f"Write a long story about {TOPICS[i % len(TOPICS)]}."}) + "\n"
                            for i in range(args.n)))
    server = LlamaCppServer(default_gguf(), tmp / "server.log", n_threads=args.threads).start()
    try:
        server.warm_up()
        skip = len(PERF_RE.findall(server.log_path.read_text()))
        cfg = parse_config({
            "store": f"sqlite:///{tmp / 'bench.db'}",
            "runner": {"cooling_s": 0, "attempts": 1, "max_tokens": args.max_tokens, "coalesce_ms": 50,
                       "first_token_timeout_s": 60, "task_timeout_s": 300},
            "models": [{"name": "smollm2-server", "backend": "openai", "base_url": server.url}],
            "datasets": [{"name": "stories", "source": str(data), "evaluator": "contains"}],
        })
        store = Store(cfg.store)
        outcome = Runner(cfg, store, []).run()
        rows = store.results(outcome.run_id)
    finally:
        server.stop()
    perf = PERF_RE.findall(server.log_path.read_text())[skip:]
    if len(perf) != len(rows):
        sys.exit(f"expected {len(rows)} llama.cpp timing blocks after the warm-up, found {len(perf)}")
    client, wall, decode, r_wall, r_decode, ttft = [], [], [], [], [], []
    for row, (prompt_ms, eval_ms, runs, total_ms) in zip(rows, perf):
        n, gen_ms, eval_ms = int(runs), float(total_ms) - float(prompt_ms), float(eval_ms)
        if row["error"] or not row["tokens_per_s"] or gen_ms <= 0 or eval_ms <= 0:
            continue
        tps = row["tokens_per_s"]
        client.append(tps)
        wall.append(n / gen_ms * 1000.0)
        decode.append(n / eval_ms * 1000.0)
        r_wall.append(tps / wall[-1])
        r_decode.append(tps / decode[-1])
        ttft.append(row["ttft_ms"])
        print(f"  {row['task_id']}: {row['visible_tokens']:4d} visible tokens, {n} decodes; tok/s client {tps:7.2f}"
              f"  server wall {wall[-1]:7.2f} (ratio {r_wall[-1]:.3f})  decode-only {decode[-1]:7.2f} "
              f"(ratio {r_decode[-1]:.3f})")
    print(f"llama-cpp-python server, SmolLM2-135M Q4_1, {args.threads} thread(s), {len(client)} answers of up to "
          f"{args.max_tokens} tokens")
    print(f"median tokens/s: client-measured {statistics.median(client):.2f}; server wall-clock generation "
          f"{statistics.median(wall):.2f}; llama.cpp decode-only {statistics.median(decode):.2f}")
    print(f"per-answer ratio client/server-wall: median {statistics.median(r_wall):.3f} (min {min(r_wall):.3f}, "
          f"max {max(r_wall):.3f}); client/decode-only: median {statistics.median(r_decode):.3f}")
    print(f"median TTFT (client, request sent -> first visible token): {statistics.median(ttft):.1f} ms")


if __name__ == "__main__":
    main()
