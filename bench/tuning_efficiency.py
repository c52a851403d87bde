"""Tuning efficiency: how many trials TPE needs to come within 5% of the best config, against random search.

    .venv/bin/python -m bench.tuning_efficiency [--reference 200] [--trials 60] [--seeds 3] [--out FILE]

For each workload, a long random run (``--reference`` trials) finds the reference best. Then TPE and random
search each run ``--seeds`` times for ``--trials`` trials; for each run we count the trials until a config within
5% of the reference best was found (``--trials + 1`` when none was). Every run proposes configs exactly as
``kgen tune`` does (``tuner.tune.propose``). Measurements are cached by kernel digest, so all runs see the same
measured landscape (one median per kernel) and the comparison is about the samplers, not timing noise. Also
reported: candidates measured per minute (distinct kernels, in the reference run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import optuna

from kgen.atomic import write_text_atomic
from kgen.browser.measure import Harness, budget
from kgen.browser.session import BrowserSession
from kgen.ops import Workload
from kgen.scheduling.build import build, space
from tuner.study import make_sampler
from tuner.tune import propose

WORKLOADS = {
    "matmul 128³": Workload.create("matmul", [(128, 128), (128, 128)]),
    "conv 32→32, 28², k3": Workload.create("conv2d", [(1, 32, 28, 28), (32, 32, 3, 3)], {"pads": (1, 1, 1, 1)}),
    "depthwise 64ch, 28², k3": Workload.create(
        "conv2d", [(1, 64, 28, 28), (64, 1, 3, 3)], {"pads": (1, 1, 1, 1), "group": 64}
    ),
}


class CachedMeasure:
    def __init__(self, harness: Harness, workload: Workload) -> None:
        self.harness, self.workload = harness, workload
        self.cache: dict[str, float | None] = {}
        self.measured = 0
        self.seconds = 0.0

    def __call__(self, config: dict) -> float | None:
        program, _ = build(self.workload, "webgpu", config)
        if program.digest not in self.cache:
            start = time.monotonic()
            times = [v for v in self.cache.values() if v is not None]
            m = self.harness.measure(program, budget_ms=budget(min(times, default=None)))
            self.seconds += time.monotonic() - start
            self.measured += 1
            self.cache[program.digest] = m.median_ms if m.ok else None
        return self.cache[program.digest]


def run_study(measure: CachedMeasure, sampler: str, seed: int, trials: int, limits) -> list[float]:
    """Best-so-far after each trial (inf until a measurement succeeds)."""
    study = optuna.create_study(direction="minimize", sampler=make_sampler(sampler, seed))
    sp = space(measure.workload, "webgpu")
    study.enqueue_trial(sp.default())
    best, curve = float("inf"), []
    for _ in range(trials):
        trial, config = propose(study, sp, limits)
        if config is not None:
            value = measure(config)
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, value)
                best = min(best, value)
        curve.append(best)
    return curve


def trials_to_reach(curve: list[float], target: float) -> int:
    return next((n for n, v in enumerate(curve, 1) if v <= target), len(curve) + 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=int, default=200, help="trials of the long random run")
    parser.add_argument("--trials", type=int, default=60, help="trials of each TPE / random run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", help="run only workloads whose name contains this")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    with BrowserSession() as session:
        fp = session.fingerprint()
        limits = session.limits()
        print(f"device: {fp['webgpu'].get('architecture')} ({'software' if fp['software'] else 'hardware'})")
        for name, workload in WORKLOADS.items():
            if args.only and args.only not in name:
                continue
            arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(0))
            harness = Harness(
                session, arrays, workload.opdef.reference(arrays, workload.attr_dict), "webgpu", samples=5
            )
            measure = CachedMeasure(harness, workload)
            reference = run_study(measure, "random", 1000, args.reference, limits)
            per_minute = 60 * measure.measured / measure.seconds
            target = reference[-1] * 1.05
            result = {"workload": name, "reference_best_ms": reference[-1], "candidates_per_minute": per_minute}
            for sampler in ("tpe", "random"):
                needed = [
                    trials_to_reach(run_study(measure, sampler, seed, args.trials, limits), target)
                    for seed in range(args.seeds)
                ]
                result[sampler] = {"trials_needed": needed, "median": statistics.median(needed)}
            rows.append(result)
            print(
                f"{name:<24} best {reference[-1]:.3f} ms; trials to within 5%: TPE {result['tpe']['trials_needed']} "
                f"(median {result['tpe']['median']}), random {result['random']['trials_needed']} "
                f"(median {result['random']['median']}); {per_minute:.0f} candidates/min",
                flush=True,
            )
    report = {"device": fp, "software": fp["software"], "args": vars(args) | {"out": str(args.out)}, "rows": rows}
    if args.out:
        write_text_atomic(args.out, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
