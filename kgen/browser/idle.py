"""Whether the machine is idle: the CPU busy share over a short window, from /proc/stat (the browser included).

A measurement taken while other work runs (a browser still starting up, a peer's thread pool spinning, a test
beside it) is slower by an amount that has nothing to do with the candidate: benchmarks wait for an idle machine
before each side, and the tuner before the first candidate it times on a fresh page.
"""

from __future__ import annotations

import time

IDLE_BUSY = 0.10  # the share of all cores busy below which the machine counts as idle
IDLE_SETTLE_S = 0.5
IDLE_MAX_S = 20.0


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already in user
    return total - idle, total


def busy_share(seconds: float) -> float:
    """The share of all cores busy over the next ``seconds``."""
    b0, t0 = _cpu_times()
    time.sleep(seconds)
    b1, t1 = _cpu_times()
    return (b1 - b0) / max(1, t1 - t0)


def wait_idle(threshold: float = IDLE_BUSY, settle_s: float = IDLE_SETTLE_S, max_s: float = IDLE_MAX_S) -> float:
    """Wait until the machine has been idle for ``settle_s``; the busy share of that last window (or of the last
    window seen when ``max_s`` passed without an idle one: a loaded machine, which the results then show)."""
    deadline = time.monotonic() + max_s
    while True:
        busy = busy_share(settle_s)
        if busy < threshold or time.monotonic() > deadline:
            return busy
