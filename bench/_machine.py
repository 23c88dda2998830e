"""What the benchmarks share: the speed of this machine's interpreter.

Not a benchmark itself (``make bench`` skips files whose names start with ``_``); the scripts in
``bench/`` import it as ``from _machine import machine_reference_ms`` (their own folder is on
``sys.path`` when they run).
"""

from __future__ import annotations

import json
import time

__all__ = ["machine_reference_ms"]


def machine_reference_ms() -> float:
    """CPU milliseconds of a fixed pure-Python workload (median of five): the speed of this machine's
    interpreter, to compare runs across machines (the development machines differ by 2x from one
    session to the next; CPU per operation scales with this figure)."""
    document = {
        "calls": [{"id": n, "from": f"+7495{n:07d}", "state": "queued", "attrs": {"k": n}} for n in range(50)]
    }
    times = []
    for _ in range(5):
        started = time.process_time()
        total = sum(i * i for i in range(300_000))
        for _ in range(300):
            total += len(json.loads(json.dumps(document)))
        times.append(time.process_time() - started)
    return round(1000 * sorted(times)[2], 1)
