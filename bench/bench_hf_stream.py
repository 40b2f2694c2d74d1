"""How much of a split the hf: source reads for `limit: N`: a 100,000-row parquet split written here with the
`datasets` library, loaded with limit 50 through the real loader (streaming), against the whole split
materialised as Python rows. Prints wall time and peak Python memory (tracemalloc) of each, medians of 3.

    PYTHONPATH=. .venv/bin/python bench/bench_hf_stream.py [--rows 100000] [--limit 50]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_split(folder: Path, rows: int) -> Path:
    import datasets

    datasets.disable_progress_bars()
    data = {"question": [f"Question number {i}: what is {i} plus {i}?" for i in range(rows)],
            "answer": [str(2 * i) for i in range(rows)]}
    path = folder / "big" / "data" / "test-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    datasets.Dataset.from_dict(data).to_parquet(str(path))
    return path.parent.parent


def measure(fn) -> tuple[float, float, object]:
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak / 1e6, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--limit", type=int, default=50)
    args = ap.parse_args()
    from benchwatch.config import DatasetConfig
    from benchwatch.datasets import load_dataset
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_split(Path(tmp), args.rows)
        cfg = DatasetConfig(name="big", source=f"hf:{folder}", prompt="{{ question }}", expected="{{ answer }}",
                            evaluator="numeric", limit=args.limit)
        files = list(folder.rglob("*.parquet"))
        print(f"split: {args.rows} rows, {sum(f.stat().st_size for f in files) / 1e6:.2f} MB parquet, "
              f"{pq.ParquetFile(files[0]).num_row_groups} row groups")
        load_dataset(cfg, Path(tmp))  # warm imports
        ours = [measure(lambda: load_dataset(cfg, Path(tmp))) for _ in range(3)]
        whole = [measure(lambda: pq.read_table(files[0]).to_pylist()) for _ in range(3)]
        assert all(len(o[2]) == args.limit for o in ours) and all(len(w[2]) == args.rows for w in whole)
        for label, runs in ((f"hf: loader, limit {args.limit}", ours), ("whole split as Python rows", whole)):
            print(f"{label:32s} time {statistics.median(r[0] for r in runs) * 1000:8.1f} ms   "
                  f"peak Python memory {statistics.median(r[1] for r in runs):8.2f} MB")


if __name__ == "__main__":
    main()
