"""Tuning efficiency: how many trials TPE needs to come within 5% of the best config, against random search.

    .venv/bin/python -m bench.tuning_efficiency [--reference 300] [--trials 150] [--seeds 5] [--out FILE]

For each workload, a long random run (``--reference`` trials) finds the reference best. Then TPE and random
search each run ``--seeds`` times for ``--trials`` trials; for each run we count the trials until a config within
5% of the reference best was found (``--trials + 1`` when none was). Every run proposes configs exactly as
``kgen tune`` does (``kgen.tune.tune.propose``), and a pruned (invalid) proposal counts as a trial.

Measurements are cached by kernel digest, in memory and in ``--landscape DIR`` (one JSON file per workload), so
all runs, and later invocations, see the same measured landscape (one median per kernel): the comparison is about
the samplers, not timing noise, and a re-run only measures kernels never seen before.

Random search's trial count to the target is geometric: with ``p`` the share of proposals that land within 5%
(estimated from the reference run's own proposals), its expected count is ``1/p`` and its median
``ln 2 / p``. That estimate is reported beside the random runs, which rarely reach the target within
``--trials``. Also reported: candidates measured per minute (distinct kernels measured in this invocation), and
each run's best-so-far curve (``curves``), which `kgen report` plots.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import optuna

from kgen.atomic import write_text_atomic
from kgen.browser.measure import Harness, budget
from kgen.browser.session import BrowserSession
from kgen.build import build, space
from kgen.ops import Workload
from kgen.tune.study import make_sampler
from kgen.tune.tune import propose

WORKLOADS = {
    "matmul 128³": Workload.create("matmul", [(128, 128), (128, 128)]),
    "conv 32→32, 28², k3": Workload.create("conv2d", [(1, 32, 28, 28), (32, 32, 3, 3)], {"pads": (1, 1, 1, 1)}),
    "depthwise 64ch, 28², k3": Workload.create(
        "conv2d", [(1, 64, 28, 28), (64, 1, 3, 3)], {"pads": (1, 1, 1, 1), "group": 64}
    ),
}


class CachedMeasure:
    """Median kernel time by digest (None: the candidate failed), kept in ``path`` between invocations."""

    def __init__(self, harness: Harness, workload: Workload, path: Path | None, limits) -> None:
        self.harness, self.workload, self.path, self.limits = harness, workload, path, limits
        self.cache: dict[str, float | None] = json.loads(path.read_text()) if path and path.exists() else {}
        self.measured = 0
        self.seconds = 0.0

    def __call__(self, config: dict) -> float | None:
        program, _ = build(self.workload, "webgpu", config, self.limits)
        if program.digest not in self.cache:
            start = time.monotonic()
            times = [v for v in self.cache.values() if v is not None]
            m = self.harness.measure(program, budget_ms=budget(min(times, default=None)))
            self.seconds += time.monotonic() - start
            self.measured += 1
            self.cache[program.digest] = m.median_ms if m.ok else None
            if self.path:
                write_text_atomic(self.path, json.dumps(self.cache))
        return self.cache[program.digest]


def run_study(measure: CachedMeasure, sampler: str, seed: int, trials: int, limits) -> list[float]:
    """Each trial's value (inf when pruned or failed); the best so far is its running minimum."""
    study = optuna.create_study(direction="minimize", sampler=make_sampler(sampler, seed))
    sp = space(measure.workload, "webgpu")
    study.enqueue_trial(sp.default())
    values = []
    for _ in range(trials):
        trial, config, _ = propose(study, sp, limits)
        value = None if config is None else measure(config)
        if config is not None and value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif value is not None:
            study.tell(trial, value)
        values.append(math.inf if value is None else value)
    return values


def trials_to_reach(values: list[float], target: float) -> int:
    return next((n for n, v in enumerate(values, 1) if v <= target), len(values) + 1)


def best_so_far(values: list[float]) -> list[float | None]:
    """The running minimum after each trial (None until a trial succeeded): a convergence curve."""
    out, best = [], math.inf
    for v in values:
        best = min(best, v)
        out.append(None if math.isinf(best) else best)
    return out


def random_estimate(reference: list[float], target: float) -> dict[str, float]:
    """Random search's expected and median trials to the target, from the share of proposals that hit it."""
    p = sum(v <= target for v in reference) / len(reference)
    return {"hit_share": p, "expected": 1 / p, "median": math.ceil(math.log(2) / -math.log1p(-p)) if p < 1 else 1}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=int, default=300, help="trials of the long random run")
    parser.add_argument("--trials", type=int, default=150, help="trials of each TPE / random run")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--landscape", type=Path, default=Path("results/bench/landscape"), help="measured kernels, kept between runs"
    )
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
            args.landscape.mkdir(parents=True, exist_ok=True)
            landscape = args.landscape / f"{hashlib.sha256(workload.key.encode()).hexdigest()[:16]}.json"
            measure = CachedMeasure(harness, workload, landscape, limits)
            reference = run_study(measure, "random", 1000, args.reference, limits)
            best = min(reference)
            target = best * 1.05
            estimate = random_estimate(reference, target)
            result = {"workload": name, "reference_best_ms": best, "random_estimate": estimate}
            result["curves"] = {}
            for sampler in ("tpe", "random"):
                runs = [run_study(measure, sampler, seed, args.trials, limits) for seed in range(args.seeds)]
                needed = [trials_to_reach(values, target) for values in runs]
                result[sampler] = {"trials_needed": needed, "median": statistics.median(needed)}
                result["curves"][sampler] = [best_so_far(values) for values in runs]
            result["candidates_per_minute"] = 60 * measure.measured / measure.seconds if measure.measured else None
            result["measured"] = measure.measured
            rows.append(result)
            est = result["random_estimate"]
            rate = result["candidates_per_minute"]
            print(
                f"{name:<24} best {best:.3f} ms; trials to within 5%: TPE {result['tpe']['trials_needed']} "
                f"(median {result['tpe']['median']}), random {result['random']['trials_needed']} "
                f"(median {result['random']['median']}; geometric estimate median {est['median']}, "
                f"mean {est['expected']:.0f}); "
                + (f"{rate:.0f} candidates/min" if rate else "no new candidates measured"),
                flush=True,
            )
    report = {
        "device": fp,
        "software": fp["software"],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": rows,
    }
    if args.out:
        write_text_atomic(args.out, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
