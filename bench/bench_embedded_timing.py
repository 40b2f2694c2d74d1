"""Embedded model TTFT and tokens/s as the runner measures them vs as llama.cpp reports them.

Runs SmolLM2-135M through the real runner on prompts that produce long answers, then compares per task:
  - tokens/s: runner (visible tokens after the first, over first->last visible token) vs llama.cpp's
    n_eval / t_eval (its decode timer);
  - TTFT: runner (request sent -> first visible token) vs llama.cpp's prompt-eval time (t_p_eval), which is
    the model-side part of TTFT; the difference is sampling the first token plus Python/runner overhead.
Target: tokens/s agree within 5% (median of per-task ratios).

    .venv/bin/python bench/bench_embedded_timing.py [--tasks 12] [--max-tokens 160]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from benchwatch.config import parse_config
from benchwatch.runner import Runner
from benchwatch.store import Store

TOPICS = ["a robot who learns to paint", "the history of the bicycle", "why the sky is blue",
          "a day in the life of a lighthouse keeper", "how bread is made", "the water cycle",
          "a cat exploring a library", "how trains changed travel", "the life of a honey bee",
          "a journey to the moon", "how a compass works", "the seasons of the year"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=12)
    ap.add_argument("--max-tokens", type=int, default=160)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        data = tmp / "long.jsonl"
        data.write_text("".join(json.dumps({"id": f"long-{i}", "prompt": f"Write a long paragraph about {t}.",
                                            "expected": "x"}) + "\n"
                                for i, t in enumerate((TOPICS * 4)[: args.tasks])))
        cfg = parse_config({
            "store": f"sqlite:///{tmp / 'b.db'}",
            "runner": {"cooling_s": 0, "attempts": 1, "max_tokens": args.max_tokens},
            "models": [{"name": "smollm2", "backend": "embedded"}],
            "datasets": [{"name": "long", "source": str(data), "evaluator": "contains"}],
        })
        store = Store(cfg.store)
        out = Runner(cfg, store, []).run()
        rows = store.results(out.run_id)
    tps_ratio, ttft_gap, ours_tps, llama_tps, ours_ttft, llama_pp = [], [], [], [], [], []
    for r in rows:
        s = r["backend_stats"] or {}
        if not r["tokens_per_s"] or not s.get("eval_tokens_per_s"):
            continue
        ours_tps.append(r["tokens_per_s"])
        llama_tps.append(s["eval_tokens_per_s"])
        tps_ratio.append(r["tokens_per_s"] / s["eval_tokens_per_s"])
        ours_ttft.append(r["ttft_ms"])
        llama_pp.append(s["t_prompt_ms"])
        ttft_gap.append(r["ttft_ms"] - s["t_prompt_ms"])
    med = statistics.median
    print(f"tasks measured: {len(tps_ratio)} of {len(rows)}; median visible tokens "
          f"{med([r['visible_tokens'] for r in rows])}")
    print(f"tokens/s   runner median {med(ours_tps):.1f}   llama.cpp median {med(llama_tps):.1f}   "
          f"per-task ratio median {med(tps_ratio):.3f} (min {min(tps_ratio):.3f}, max {max(tps_ratio):.3f})")
    print(f"TTFT       runner median {med(ours_ttft):.1f} ms   llama.cpp prompt eval median {med(llama_pp):.1f} ms   "
          f"gap median {med(ttft_gap):.1f} ms (first-token sampling + overhead)")
    print(f"agreement: tokens/s within {abs(1 - med(tps_ratio)) * 100:.1f}% (target 5%)")


if __name__ == "__main__":
    main()
