"""The measurement protocol every benchmark shares when kgen is compared with a peer (issue 18's fair protocol).

- Each side is measured after the machine has gone idle (`wait_idle`, ``kgen.browser.idle``: the CPU busy share,
  the browser included, below ``IDLE_BUSY`` for ``IDLE_SETTLE_S``), so a peer whose thread pool is still
  spinning, or the previous side's work, does not weigh on the next one; the busy share seen just before each
  side is kept as the machine's load.
- Every side gets the same warm-up (at least ``WARMUP_MS`` and ``WARMUP_RUNS`` runs) and the same sample rule
  (``SAMPLES`` samples of back-to-back runs lasting at least ``MIN_SAMPLE_MS``; the median per run).
- Sides are interleaved per workload (kgen, then the peers, then the next workload), over at least ``ROUNDS``
  fresh pages; the median over rounds is reported with its spread (the lowest and highest round). Variants
  compared with each other (wasm on 1 and on 2 threads) take turns round by round.
- A workload whose kgen / peer ratio differs between rounds by more than the rounds' own spread allows
  (`disagrees`) is measured again for as many rounds.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from kgen.browser.idle import wait_idle as wait_idle  # the protocol's idle wait, shared with the tuner

WARMUP_MS = 1000
WARMUP_RUNS = 3
SAMPLES = 15
MIN_SAMPLE_MS = 5.0
ROUNDS = 3
AGREEMENT = 0.05  # rounds' ratios may differ by this share beyond their spread before a re-measure


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(float(statistics.median(values)), float(min(values)), float(max(values)))

    @property
    def relative(self) -> float:
        return (self.high - self.low) / self.median if self.median else 0.0

    def to_json(self) -> dict[str, float]:
        return {"median": self.median, "low": self.low, "high": self.high}


def disagrees(ratios: Sequence[float], side_spreads: Sequence[Spread]) -> bool:
    """Whether per-round ratios differ by more than the sides' own round-to-round spread (plus ``AGREEMENT``)."""
    allowed = sum(s.relative for s in side_spreads) + AGREEMENT
    return Spread.of(ratios).relative > allowed


def thread_counts(text: str, prog: str) -> list[int]:
    """The wasm thread counts of a ``--threads`` value such as ``1,2``, sorted; ``prog`` exits naming the option
    where it is not one."""
    try:
        threads = sorted({int(t) for t in text.split(",")})
    except ValueError:
        raise SystemExit(f"{prog}: --threads '{text}': thread counts, comma-separated, e.g. 1,2") from None
    if not threads or threads[0] < 1:
        raise SystemExit(f"{prog}: --threads '{text}': thread counts are at least 1")
    return threads
