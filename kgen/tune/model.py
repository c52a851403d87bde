"""Tuning a whole model: its distinct workloads, with trials going where the model gains most.

After the passes, each kernel node of the model is one workload (the op with its shapes and attributes; a fused
epilogue is served by the op's records). The task scheduler follows Ansor's idea: a workload weighs how often it
occurs times its current best latency, so the model's estimated time is the sum of the weighted bests. Every
workload first gets a warm-up allocation (the nearest record's config, its default, the other nearest records and
the template's seeds), heaviest first, of at most half the budget over all of them (``warmup_trials``): every
workload is measured before any gets more, since FLOPs say little of an untuned kernel's time (MobileNet's
depthwise convs on WebGL, few FLOPs and half its time at their defaults, were never reached when 150 trials went 8
at a time to 18 of its 32 workloads). Its gain is then its best over the template default. Each next allocation of
``chunk`` trials goes to the workload whose weighted best improves fastest (its weighted best times the gain of
its last allocation, plus a small floor so that a heavy workload is looked at again). Each allocation is an
ordinary ``tune`` on the same storage, so a killed run resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kgen import backends
from kgen.graph.ir import Graph
from kgen.graph.passes.fold_views import fold_views_into_transposes
from kgen.ops.workload import Workload
from kgen.records.store import RecordStore
from kgen.scheduling.lower import main_stage
from kgen.tune.tune import TuneSummary, tune

EXPLORE = 0.05  # the gain a workload is credited with when its last allocation found nothing better


@dataclass
class Task:
    workload: Workload
    count: int  # nodes of the model with this workload
    flops: int
    best_ms: float | None = None
    gain: float = 1.0  # relative improvement of its best over its last allocation
    trials: int = 0
    summaries: list[TuneSummary] = field(default_factory=list)

    @property
    def weighted_ms(self) -> float | None:
        return None if self.best_ms is None else self.count * self.best_ms

    @property
    def priority(self) -> float:
        if self.weighted_ms is None:
            return float("inf")
        return self.weighted_ms * (max(self.gain, 0.0) + EXPLORE)

    def observe(self, best_ms: float | None, default_ms: float | None) -> None:
        """An allocation ended with ``best_ms`` (None: nothing valid measured): its gain over the last best, or on a
        first allocation over the template default."""
        if best_ms is None:
            self.gain = 0.0
            return
        old = self.best_ms if self.best_ms is not None else default_ms
        self.gain = 1.0 if not old else (old - best_ms) / old
        self.best_ms = best_ms if self.best_ms is None else min(self.best_ms, best_ms)


def tasks_of(graph: Graph, backend: str | None = None) -> list[Task]:
    """The model's distinct kernel workloads on ``backend``: views (a reshape) too where they are kernels (WebGL's
    textures: MiniLM's 25 reshapes took 5% of its run at their default); elsewhere they launch nothing."""
    views = backend is not None and backends.get(backend).storage == "textures"
    if views:  # as the WebGL converter does
        graph = fold_views_into_transposes(graph)
    tasks: dict[str, Task] = {}
    for node in graph.nodes:
        if node.is_view and not views:
            continue
        workload = graph.workload(node)
        if workload.key in tasks:
            tasks[workload.key].count += 1
        else:
            tasks[workload.key] = Task(workload, 1, main_stage(workload).flops)
    return sorted(tasks.values(), key=lambda t: -t.count * t.flops)


def pick(tasks: list[Task]) -> Task:
    """The next task to tune: one with no trials allocated yet (heaviest first), else the one of highest
    priority."""
    fresh = [t for t in tasks if t.trials == 0]
    if fresh:
        return fresh[0]
    return max(tasks, key=lambda t: (t.priority, -t.trials))


def warmup_trials(trials: int, tasks: int, chunk: int) -> int:
    """Trials of each workload's first allocation: ``chunk``, or fewer (at least 1) where ``chunk`` for every
    workload would spend more than half of ``trials``."""
    return max(1, min(chunk, trials // (2 * max(tasks, 1))))


def allocation(task: Task, warmup: int, chunk: int, left: int) -> int:
    """The size of ``task``'s next allocation, with ``left`` trials of the budget unspent."""
    return min(warmup if task.trials == 0 else chunk, left)


def tune_model(
    graph: Graph,
    backend: str,
    trials: int,
    storage_url: str,
    records: RecordStore,
    chunk: int = 8,
    progress: Callable[[str], None] | None = None,
    tune_fn: Callable[..., TuneSummary] = tune,
    **tune_args: Any,
) -> list[Task]:
    """Spend ``trials`` trials over the model's workloads; each allocation appends its best to ``records``. A
    ``timeout_s`` is the whole model's: no allocation starts after it, and the last gets what is left of it."""
    tasks = tasks_of(graph, backend)
    warmup = warmup_trials(trials, len(tasks), chunk)
    timeout_s = tune_args.pop("timeout_s", None)
    start = time.monotonic()
    spent = 0
    while spent < trials:
        left = None if timeout_s is None else timeout_s - (time.monotonic() - start)
        if left is not None and left <= 0:
            break
        task = pick(tasks)
        n = allocation(task, warmup, chunk, trials - spent)
        summary = tune_fn(
            task.workload, backend, trials=n, storage_url=storage_url, records=records, timeout_s=left, **tune_args
        )
        spent += n
        task.trials += n
        task.summaries.append(summary)
        task.observe(summary.best_ms, summary.default_ms)
        if progress:
            progress(_line(tasks, task, spent, trials))
        if summary.interrupted:
            break
    return tasks


def interrupted(tasks: list[Task]) -> str | None:
    """The signal that ended a model's tuning early, if one did."""
    return next((s.interrupted for t in tasks for s in t.summaries if s.interrupted), None)


def estimated_ms(tasks: list[Task]) -> float | None:
    """The model's kernel time as the sum of its tuned workloads' weighted bests (None until all are measured)."""
    if any(t.best_ms is None for t in tasks):
        return None
    return sum(t.weighted_ms for t in tasks)  # type: ignore[misc]


def _line(tasks: list[Task], task: Task, spent: int, trials: int) -> str:
    total = estimated_ms(tasks)
    model = f"model ~{total:.2f} ms" if total is not None else f"{sum(t.best_ms is None for t in tasks)} untuned"
    best = f"{task.best_ms:.3f} ms" if task.best_ms is not None else "no valid candidate"
    return f"[{spent}/{trials}] {task.workload.op} x{task.count}: best {best}; {model}"


def summary_rows(tasks: list[Task]) -> list[Mapping[str, Any]]:
    return [
        {
            "workload": t.workload.key,
            "count": t.count,
            "trials": t.trials,
            "best_ms": t.best_ms,
            "weighted_ms": t.weighted_ms,
            "gflops": t.flops / t.best_ms / 1e6 if t.best_ms else None,
        }
        for t in tasks
    ]
