"""History per commit and regression detection, on airspeed velocity (asv), the convention of scientific Python.

A series is one side of one workload on one backend, thread count, device class and host CPU, over the runs of the
results store in time order (the VMs these runs come from differ by 2x in speed under one device class: a run on a
slower CPU is another series, not a regression; rows from before the store named the CPU make a series of their
own). A regression is an upward step in its run times that asv's step detection
(``asv.step_detect``: a piecewise-constant fit with an automatically chosen penalty) finds, held by at least
``MIN_RUNS`` runs after it (repeated evidence: one slow run is noise on these VMs), and larger than the series'
own measured spread (`noise`: within a run and between runs, at least ``MIN_EFFECT``).

`write_asv` puts the same history into asv's results format (machine.json, one results file per commit,
benchmarks.json, an asv.conf.json), so ``asv publish`` builds asv's own static site of it.
"""

from __future__ import annotations

import datetime
import itertools
import json
import os
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.store import variant_name

SERIES_KEY = ("suite", "workload", "backend", "threads", "side", "device", "cpu")
MIN_RUNS = 2
MIN_EFFECT = 0.10  # absolute speed drifts by about 10% between runs on these VMs (issue 18)


@dataclass(frozen=True)
class Point:
    run: str
    time: str
    commit: str
    median_ms: float
    low_ms: float
    high_ms: float


@dataclass(frozen=True)
class Regression:
    series: dict[str, Any]
    before_commit: str
    after_commit: str
    before_ms: float
    after_ms: float
    threshold: float  # the relative effect it had to exceed
    after_run: str  # the latest run of the series, the one that made the evidence enough

    @property
    def factor(self) -> float:
        return self.after_ms / self.before_ms

    def describe(self) -> str:
        s = self.series
        variant = variant_name(s["backend"], s["threads"])
        return (
            f"{s['workload']} ({s['side']}, {variant}): {self.before_ms:.3f} -> {self.after_ms:.3f} ms "
            f"({self.factor:.2f}x slower, threshold {1 + self.threshold:.2f}x) between {self.before_commit[:10]} "
            f"and {self.after_commit[:10]}"
        )


def series(rows: Iterable[dict]) -> dict[tuple, list[Point]]:
    """Timed rows grouped into series, each in run order (by time)."""
    out: dict[tuple, list[Point]] = {}
    for r in sorted(rows, key=lambda r: r["time"]):
        if not r.get("median_ms"):
            continue
        key = tuple(r.get(k) for k in SERIES_KEY)
        low, high = r.get("low_ms") or r["median_ms"], r.get("high_ms") or r["median_ms"]
        out.setdefault(key, []).append(Point(r["run"], r["time"], r["commit"], r["median_ms"], low, high))
    return out


def noise(points: list[Point]) -> float:
    """The series' measured spread, the larger of: within a run, the median over its runs of (highest round -
    lowest round) / median; between runs, twice the median relative change from one run to the next (a median, so
    a real step counts once and does not hide itself)."""
    within = statistics.median((p.high_ms - p.low_ms) / p.median_ms for p in points)
    changes = [abs(b.median_ms - a.median_ms) / a.median_ms for a, b in itertools.pairwise(points)]
    return max(within, 2 * statistics.median(changes) if changes else 0.0)


def regressions_of(key: tuple, points: list[Point]) -> list[Regression]:
    from asv.step_detect import detect_regressions, detect_steps

    if len(points) < MIN_RUNS + 1:
        return []
    threshold = max(noise(points), MIN_EFFECT)
    steps = detect_steps([p.median_ms for p in points])
    _, _, found = detect_regressions(steps, threshold=threshold, min_size=MIN_RUNS)
    out = []
    for before, after, before_ms, after_ms in found or []:
        if len(points) - after < MIN_RUNS:  # the slower level is held by too few runs yet
            continue
        if after_ms < before_ms * (1 + threshold):  # asv weighs the fit's error too; the effect must clear noise
            continue
        out.append(
            Regression(
                dict(zip(SERIES_KEY, key, strict=True)),
                points[before].commit,
                points[after].commit,
                before_ms,
                after_ms,
                threshold,
                points[-1].run,
            )
        )
    return out


def regressions(rows: Iterable[dict]) -> list[Regression]:
    """Every regression in the store's rows (see the module's docstring)."""
    return [r for key, points in series(rows).items() for r in regressions_of(key, points)]


def _benchmark_name(key: tuple) -> str:
    fields = dict(zip(SERIES_KEY, key, strict=True))
    variant = f"wasm_{fields['threads']}t" if fields["backend"] == "wasm" else fields["backend"]
    workload = re.sub(r"[^A-Za-z0-9]+", "_", fields["workload"]).strip("_")  # asv names are identifiers
    return f"{fields['suite']}.{variant}.{fields['side']}.{workload}"


def _machine_name(device: str, cpu: str) -> str:
    """asv's machine (a folder name): the device class, then the host CPU where the rows name it."""
    return "-".join([device, *([re.sub(r"[^A-Za-z0-9]+", "-", cpu).strip("-")] if cpu else [])])


def write_asv(rows: list[dict], out: Path, repo: Path) -> Path:
    """The history in asv's results format under ``out`` (``asv publish --config OUT/asv.conf.json`` builds its
    site into OUT/html). One asv machine per device class and host CPU, one results file per commit (its last run of
    each series), times in seconds; the tracked value of each series is its median time."""
    from asv.results import Results
    from asv.runner import BenchmarkResult

    results_dir = out / "results"
    benchmarks: dict[str, Any] = {}
    by_machine: dict[tuple[str, str], dict[str, dict[str, tuple[float, str]]]] = {}
    for key, points in series(rows).items():
        name = _benchmark_name(key)
        fields = dict(zip(SERIES_KEY, key, strict=True))
        benchmarks[name] = {
            "name": name,
            "type": "track",
            "unit": "seconds",
            "param_names": [],
            "params": [],
            "version": "1",
            "timeout": 600,
            "code": "",
        }
        commits = by_machine.setdefault((fields["device"], fields["cpu"] or ""), {})
        for p in points:
            commits.setdefault(p.commit, {})[name] = (p.median_ms / 1e3, p.time)
    for (device, cpu), commits in by_machine.items():
        machine_name = _machine_name(device, cpu)
        machine = {
            "machine": machine_name,
            "os": "Linux",
            "arch": "x86_64",
            "cpu": cpu or "unknown",
            "num_cpu": "",
            "ram": "",
        }
        (results_dir / machine_name).mkdir(parents=True, exist_ok=True)
        (results_dir / machine_name / "machine.json").write_text(json.dumps({**machine, "version": 1}, indent=1))
        for commit, values in commits.items():
            when = max(datetime.datetime.fromisoformat(t) for _, t in values.values())
            result = Results({"machine": machine_name}, {}, commit, int(when.timestamp() * 1000), "", "kgen-bench", {})
            for name, (seconds, _) in values.items():
                measured = BenchmarkResult(
                    result=[seconds], samples=[None], number=[None], errcode=0, stderr="", profile=None
                )
                result.add_result(benchmarks[name], measured, started_at=when, duration=0.0)
            result.save(str(results_dir))
    (results_dir / "benchmarks.json").write_text(json.dumps({**benchmarks, "version": 2}, indent=1))
    conf = {
        "version": 1,
        "project": "kgen",
        "project_url": "",
        "repo": os.path.relpath(repo.resolve(), out.resolve()),  # asv reads it relative to this file's folder
        "branches": ["HEAD"],
        "environment_type": "existing",
        "results_dir": "results",
        "html_dir": "html",
    }
    (out / "asv.conf.json").write_text(json.dumps(conf, indent=1))
    return out / "asv.conf.json"
