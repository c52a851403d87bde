"""The measurement protocol: check each candidate's output against numpy, then time it; failures are results.

A candidate that fails to compile, errors at run time, computes a wrong answer, hangs, or takes the browser
down comes back as a ``Measurement`` with its status and reason, and the next candidate still runs (in a new
browser if needed). Only a candidate whose output matched is timed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kgen import backends
from kgen.browser.idle import wait_idle
from kgen.browser.session import BrowserCrashed, BrowserHung, BrowserSession
from kgen.checking import compare
from kgen.codegen.program import CompiledProgram

STATUSES = ("ok", "wrong", "compile_error", "runtime_error", "device_lost", "timeout", "browser_crashed", "interrupted")
_ids = itertools.count()


@dataclass(frozen=True)
class Measurement:
    status: str
    digest: str
    reason: str = ""
    median_ms: float | None = None
    iqr_ms: float | None = None
    samples: int = 0
    k: int = 0
    wall_median_ms: float | None = None
    clock: str = ""
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    estimate: bool = False  # not timed in samples: its runs exceeded the time budget it was measured with

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.float32).tobytes()).decode()


def inputs_key(arrays: Sequence[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    return h.hexdigest()[:16]


class Harness:
    """Measures candidates of one workload in a browser session: same inputs, same reference."""

    def __init__(
        self,
        session: BrowserSession,
        arrays: Sequence[np.ndarray],
        want: np.ndarray,
        backend: str,
        samples: int | None = None,
        min_sample_ms: float | None = None,
        timeout_s: float | None = None,
        warmup_ms: float = 0.0,
        settle: bool = False,
    ) -> None:
        """``warmup_ms``: run each candidate this long before timing it (benchmarks beside peers; the tuner
        leaves it at one run). ``settle``: on a fresh page (the first candidate, or after a restart) wait for the
        machine to go idle before timing (``idle.wait_idle``): a browser just launched is still busy starting up,
        and the first candidates a tuner times, the template's seeds, ran up to 40% slow."""
        self.session = session
        self.arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
        self.want = want
        self.backend = backend
        default_samples, default_ms = backends.get(backend).timing
        self.timing = {
            "samples": max(5, samples or default_samples),
            "minSampleMs": min_sample_ms if min_sample_ms is not None else default_ms,
            "warmupMs": warmup_ms,
        }
        self.timeout_s = timeout_s
        self.key = inputs_key(self.arrays)
        self.settle = settle
        self._sent_to: tuple[int, int] | None = None

    def _ensure_page(self) -> None:
        """The page has the inputs (and, with ``settle``, the machine has gone idle since the page was new)."""
        where = (id(self.session.page), self.session.restarts)
        if self._sent_to != where:
            self.session.set_inputs(self.key, [_b64(a) for a in self.arrays])
            self._sent_to = where
            if self.settle:
                wait_idle()

    def measure(self, program: CompiledProgram, time_it: bool = True, budget_ms: float | None = None) -> Measurement:
        """Check, then time, one candidate. With ``budget_ms``, a candidate whose runs take longer (3 single runs,
        then back-to-back batches: harness.js) is not timed further (``estimate``): a tuner does not need the
        exact figure of a candidate far off the best."""
        digest = program.digest
        try:
            m = self._measure(program, digest, time_it, budget_ms)
            if m.status == "device_lost":
                # the GPU process died under the page (killed, crashed, reset): nothing on this browser's
                # device works any more, so a new browser, and the candidate once more there
                self.session.restart()
                m = self._measure(program, digest, time_it, budget_ms)
                if m.status == "device_lost":
                    self.session.restart()
            return m
        except BrowserHung as err:
            self.session.restart()
            return Measurement("timeout", digest, str(err))
        except BrowserCrashed as err:
            self.session.restart()
            return Measurement("browser_crashed", digest, str(err))

    def _measure(self, program: CompiledProgram, digest: str, time_it: bool, budget_ms: float | None) -> Measurement:
        self._ensure_page()
        cid = f"c{next(_ids)}"
        candidate = {"id": cid, "inputsKey": self.key, "program": program.to_json()}
        answering = False  # the page is stuck or gone after a hang or crash: nothing to release there
        try:
            run = self.session.call("startRun", candidate, timeout_s=self.timeout_s)
            answering = True
            if run["status"] != "ok":
                return Measurement(run["status"], digest, run.get("message", ""))
            got = np.frombuffer(base64.b64decode(run["output"]), dtype=np.float32)
            if got.size != self.want.size:
                return Measurement("wrong", digest, f"output has {got.size} values, expected {self.want.size}")
            check = compare(got.reshape(self.want.shape), self.want, self.backend)
            errors = {"max_abs_error": check.max_abs_error, "max_rel_error": check.max_rel_error}
            if not check.ok:
                return Measurement("wrong", digest, check.reason, **errors)
            if not time_it:
                return Measurement("ok", digest, **errors)
            answering = False
            t = self.session.call("startTime", cid, {**self.timing, "budgetMs": budget_ms}, timeout_s=self.timeout_s)
            answering = True
            if t["status"] != "ok":
                return Measurement(t["status"], digest, t.get("message", ""), **errors)
            return Measurement(
                "ok",
                digest,
                median_ms=t["medianMs"],
                iqr_ms=t["iqrMs"],
                samples=t["samples"],
                k=t["k"],
                wall_median_ms=t["wallMedianMs"],
                clock=t["clock"],
                estimate=t["estimate"],
                **errors,
            )
        finally:
            if answering:
                with contextlib.suppress(BrowserCrashed, BrowserHung):
                    self.session.release(cid)

    def measure_batch(self, programs: Iterable[CompiledProgram], time_it: bool = True) -> list[Measurement]:
        """Every candidate in order; one that hangs or crashes the browser does not stop the rest."""
        return [self.measure(p, time_it) for p in programs]


SLOWER_THAN_BEST = 5.0  # candidates slower than this many times the best so far are not timed precisely


def budget(best_ms: float | None) -> float | None:
    return None if best_ms is None else SLOWER_THAN_BEST * best_ms
