"""The cyclic garbage collector in benchwatch's long-running processes (`benchwatch run`, its stream worker and
`serve`).

A full collection walks every container object the process holds. After the imports (Flask, SQLAlchemy,
pydantic, gevent) that is about 90,000 objects, and under load such a pass took about 100 ms on the 2-core
machine, once or twice a minute. For the server that was a stall of every stream it sends: it was the SSE
delivery p99 with 64 tasks in flight (bench/bench_page_concurrency.py). For the runner it stalled every slot.
The objects alive once the process is set up live as long as the process does, so gc.freeze() takes them out
of the collector's passes; objects made later are collected as before.

The youngest generation is collected after 10,000 new container objects rather than 700. A run with 256 tasks
in flight makes objects quickly and keeps few of them; at 700 the collector ran ~45 times in a 2-second run
(20 to 70 ms together, every slot stopped each time), at 10,000 twice (~15 ms) (bench/bench_concurrency.py
with a gc.callbacks timer).

The stream worker (benchwatch/stream_worker.py), which stamps every piece of every answer, is tuned the same way:
untuned, three 256-in-flight runs had ~100 young passes (up to 6 ms each), 9 middle ones (up to 9 ms) and a full
one of 62 ms, each a stall of its stamps; in 30 interleaved runs its TTFT error p99 went from 10.5 to 4.2 ms.
"""
from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # CPython's default is 700


def freeze_long_lived() -> None:
    """Call once, when the process is set up (imports done, app or runner built)."""
    gc.collect()  # the set-up's own cyclic garbage is freed first, not frozen for good
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
