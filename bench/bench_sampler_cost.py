"""Host sampler cost: CPU seconds per hour of the 1 Hz telemetry loop (psutil CPU / FDs / disk + NVML, folded into
the hub's state like the server does; no SSE clients, no store).

Two figures: the CPU time of one tick measured over many back-to-back ticks (x 3600 = CPU s/hour at 1 Hz),
and the real loop left running at 1 Hz for --seconds in an otherwise idle process (process CPU time delta).
On this machine NVML has no driver: its cost is the (cached) failure path; see docs/measuring.md for the figures.

    .venv/bin/python bench/bench_sampler_cost.py [--ticks 600] [--seconds 30]
"""
from __future__ import annotations

import argparse
import statistics
import time

from benchwatch import state as reducer
from benchwatch.server.hub import Hub
from benchwatch.server.telemetry_loop import TelemetryLoop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticks", type=int, default=600)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    per_tick = []
    for r in range(args.repeats):
        loop = TelemetryLoop(Hub(reducer.initial_state()), None)
        loop.tick()  # warm: imports, NVML's first attempt
        c0 = time.process_time()
        for _ in range(args.ticks):
            loop.tick()
        per_tick.append((time.process_time() - c0) / args.ticks)
        print(f"repeat {r + 1}: {per_tick[-1] * 1e6:.0f} us CPU per tick -> {per_tick[-1] * 3600:.2f} CPU s/hour at 1 Hz")
    loop = TelemetryLoop(Hub(reducer.initial_state()), None, interval_s=1.0)
    c0, t0 = time.process_time(), time.monotonic()
    loop.start()
    time.sleep(args.seconds)
    loop.stop()
    real = (time.process_time() - c0) / (time.monotonic() - t0) * 3600
    print(f"sampler cost: median {statistics.median(per_tick) * 3600:.2f} CPU s/hour (tight loop, "
          f"{statistics.median(per_tick) * 1e6:.0f} us/tick); real 1 Hz loop for {args.seconds:g} s: "
          f"{real:.2f} CPU s/hour ({loop.samples} samples)")


if __name__ == "__main__":
    main()
