"""Choosing a config by measuring candidates side by side: a study's single best is often a lucky sample on
this VM (SwiftShader and wasm timings both have bursts), so the benches re-measure a study's best few, interleaved,
in one page, and keep the fastest median there."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kgen.browser.measure import Harness
from kgen.browser.session import BrowserSession
from kgen.build import build

FINALISTS = 8  # a study's best configs re-measured before a comparison
FINAL_PASSES = 3  # ... each this many times, interleaved (the median is taken)


def study_finalists(storage: str, study: str, count: int = FINALISTS) -> list[dict[str, Any]]:
    """The ``count`` fastest distinct configs (Optuna params) of a study, fastest first."""
    import optuna

    done = sorted(
        (t for t in optuna.load_study(study_name=study, storage=storage).trials if t.value is not None),
        key=lambda t: t.value,
    )
    return list({json.dumps(t.params, sort_keys=True): t.params for t in done}.values())[:count]


def fastest(
    session: BrowserSession,
    workload,
    backend: str,
    configs: Sequence[Mapping[str, Any] | None],
    *,
    passes: int = FINAL_PASSES,
    warmup_ms: float = 0,
    timeout_s: float = 300,
) -> tuple[dict[str, Any], float]:
    """The complete config of ``configs`` (None: the template default) with the fastest median over ``passes``
    interleaved passes in ``session``, and that median in ms; a config that fails counts as infinitely slow."""
    limits = session.limits()
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(0))
    want = workload.opdef.reference(arrays, workload.attr_dict)
    harness = Harness(session, arrays, want, backend, timeout_s=timeout_s, warmup_ms=warmup_ms)
    built = [build(workload, backend, c, limits) for c in configs]
    times: list[list[float]] = [[] for _ in built]
    for _ in range(passes):
        for k, (program, _) in enumerate(built):
            m = harness.measure(program)
            times[k].append(m.median_ms if m.ok else float("inf"))
    medians = [float(np.median(t)) for t in times]
    best = int(np.argmin(medians))
    assert np.isfinite(medians[best]), f"{workload.key} on {backend}: no config passed"
    return built[best][1], medians[best]
