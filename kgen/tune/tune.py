"""The tuning loop: Optuna proposes configs, the browser measures them, the best becomes a record.

Per trial (Optuna's ask/tell, so nothing a candidate does can crash the loop):
- the config comes from the template's space, one categorical parameter per knob (the Optuna params are the
  config); one that breaks a constraint is pruned with its reason, before anything is built or measured;
- the kernel's digest is claimed in the trial; where another trial of the study (from any worker) has the same
  kernel text, one of them measures it and the others reuse its result (``_claim``);
- the candidate is checked against numpy and timed; a failure (compile error, wrong answer, timeout, browser
  crash) is a FAIL trial whose ``reason`` says why, and the next trial goes on, in a new browser if needed.

``trials`` counts candidates measured (or reused from a twin); pruned proposals do not count, up to
``MAX_PROPOSALS`` per trial asked for. SIGINT and SIGTERM end the run cleanly: a candidate being measured becomes a
FAIL trial with reason ``interrupted``, the best so far is recorded and the summary says which signal came.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from kgen.browser.measure import Harness, Measurement, budget
from kgen.browser.session import BrowserSession, pid_alive
from kgen.build import build, space
from kgen.errors import KgenError
from kgen.ops.workload import Workload
from kgen.records.store import Record, RecordStore, device_class, software
from kgen.scheduling.lower import main_stage
from kgen.scheduling.space import Space
from kgen.tune.study import make_sampler, open_storage, study_name

WORKER = f"{socket.gethostname()}:{os.getpid()}"
#: what a record keeps of the page's fingerprint (cross-origin isolation: whether wasm could run threads)
POLL_S = 0.5
MAX_PROPOSALS = 20  # proposals per trial asked for, pruned ones included, before a run gives up on a tight space


@dataclass
class TuneSummary:
    study: str
    storage: str
    workload: str
    backend: str
    device_class: str
    software: bool
    trials: int  # measured (or reused) by this process
    study_trials: int  # in the study, every worker's
    failures: dict[str, int]
    pruned: int  # proposals that broke a constraint, not counted in ``trials``
    reused: int
    prune_reasons: dict[str, int] = field(default_factory=dict)  # the broken constraints, with how often
    interrupted: str | None = None  # the signal that ended the run early (SIGINT, SIGTERM)
    best_config: dict[str, Any] | None = None
    best_ms: float | None = None
    best_iqr_ms: float | None = None
    best_gflops: float | None = None
    default_ms: float | None = None
    speedup: float | None = None
    record: str | None = None
    seconds: float = 0.0
    per_minute: float = 0.0
    fingerprint: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)  # the device's, which the configs were checked against

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _alive(worker: str) -> bool:
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's worker: trust its heartbeat-free state
    return pid.isdigit() and pid_alive(int(pid))


#: the longest a live worker's ``study.ask()`` may take (the sampler's relative sampling runs in it) before the
#: worker tags the trial it created
UNTAGGED_WAIT_S = 60.0
WORKER_ATTR = "worker "  # a study attribute per worker that joined it: ``worker <host:pid>``


def join(study) -> None:
    """Register this worker in the study before it asks any trial, so another worker knows whose untagged trial
    may still be in ``study.ask()``."""
    study.set_user_attr(WORKER_ATTR + WORKER, datetime.now(UTC).isoformat(timespec="seconds"))


def _others_alive(study) -> bool:
    workers = [k.removeprefix(WORKER_ATTR) for k in study.user_attrs if k.startswith(WORKER_ATTR)]
    return any(w != WORKER and _alive(w) for w in workers)


def fail_dead_workers_trials(study, storage) -> int:
    """Trials left RUNNING by a worker that died (SIGKILL, power loss) become FAIL, reason ``worker died``.

    A trial with no worker tag was created by a worker that died before tagging it, unless another worker of the
    study is alive and still in ``study.ask()``: such trials are waited for until they are tagged, and failed
    if still untagged after ``UNTAGGED_WAIT_S``; with no other live worker they are failed at once."""
    import optuna

    def running():
        return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))

    def untagged_now() -> set[int]:
        return {t.number for t in running() if "worker" not in t.user_attrs}

    untagged = untagged_now()
    deadline = time.monotonic() + UNTAGGED_WAIT_S
    while untagged and _others_alive(study) and time.monotonic() < deadline:
        time.sleep(POLL_S)
        untagged &= untagged_now()
    n = 0
    for t in running():
        worker = t.user_attrs.get("worker")
        if t.number in untagged or (worker not in (None, WORKER) and not _alive(worker)):
            storage.set_trial_user_attr(t._trial_id, "reason", "worker died")
            storage.set_trial_user_attr(t._trial_id, "status", "worker_died")
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            n += 1
    return n


class Interrupted(BaseException):
    """SIGINT or SIGTERM during a measurement (a BaseException, as KeyboardInterrupt is: nothing swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Signals:
    """While active, SIGINT and SIGTERM are noted (``signum``); during ``measure()``, the browser's wait, they
    also raise ``Interrupted`` at once. Storage writes are never cut in the middle: the loop checks ``signum``
    between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._measuring = False

    def _handler(self, signum: int, frame: Any) -> None:
        self.signum = signum
        if self._measuring:
            self._measuring = False
            raise Interrupted(signum)

    @contextlib.contextmanager
    def active(self):
        if threading.current_thread() is not threading.main_thread():
            yield self  # signals reach the main thread only
            return
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def measure(self, harness: Harness, program, budget_ms: float | None) -> Measurement:
        if self.signum is not None:
            return Measurement("interrupted", program.digest, "interrupted")
        self._measuring = True
        try:
            return harness.measure(program, budget_ms=budget_ms)
        except Interrupted:
            return Measurement("interrupted", program.digest, "interrupted")
        except Exception:
            if self.signum is None:
                raise
            # the signal cut a call into the browser's driver, whose connection may be closed since: the page
            # looked crashed and a restart could not connect (seen once in CI under SIGTERM)
            return Measurement("interrupted", program.digest, "interrupted")
        finally:
            self._measuring = False


def propose(study, sp: Space, limits: Mapping[str, int]) -> tuple[Any, dict[str, Any] | None, list[str]]:
    """A new trial, its config (the Optuna params) and the constraints it breaks; an invalid config is pruned
    with its reason (config None)."""
    # tag the trial with its worker before sampling (which takes a while), so a kill leaves it claimable
    trial = study.ask()
    trial.set_user_attr("worker", WORKER)
    config = {k.name: trial.suggest_categorical(k.name, k.values) for k in sp.knobs}
    problems = sp.violations(config, limits)
    if not problems:
        return trial, config, []
    _prune(study, trial, "invalid config: " + "; ".join(problems))
    return trial, None, problems


def _prune(study, trial, reason: str) -> None:
    import optuna

    trial.set_user_attr("reason", reason)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)


def _build_or_prune(study, trial, workload: Workload, backend: str, config: dict[str, Any], limits):
    """The candidate's program, or None and why (the trial pruned with that reason) when it is beyond a device
    limit that no knob constraint states (``check_fits``: memory, bindings, grid)."""
    try:
        return build(workload, backend, config, limits)[0], []
    except KgenError as err:
        reason = f"does not fit the device: {err}"
        _prune(study, trial, reason)
        return None, [reason]


def _source(t) -> int | None:
    """The trial whose measurement ``t`` takes (its own number where it measures it), None while undecided."""
    if "source" in t.user_attrs:
        return t.user_attrs["source"]
    if t.state.is_finished():
        return t.user_attrs.get("reused_from", t.number)
    return None


def _claim(study, digest: str, number: int) -> int:
    """The trial that measures the kernel ``digest`` for trial ``number``: its own number, or a twin's (another
    trial with the same kernel text, from any worker).

    Every trial announces its digest, then reads its twins and writes its decision (``source``) once. A twin's
    decision is followed; otherwise the lowest undecided twin below this one is taken; otherwise this trial waits
    for the decisions of the undecided twins above it. Of two twins, at least one reads the other's announcement,
    and a trial that saw none below it decides only after those above it did, so no two of them both measure.
    The waits point from lower numbers to higher ones only, so they cannot wait on each other; a dead worker's
    twin is passed over."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL, optuna.trial.TrialState.RUNNING)
    while True:
        twins = [
            t
            for t in study.get_trials(deepcopy=False, states=states)
            if t.user_attrs.get("digest") == digest and t.number != number
        ]
        decided = [(t.number, s) for t in twins if (s := _source(t)) is not None]
        if decided:
            return min(decided)[1]
        undecided = [t.number for t in twins if _alive(t.user_attrs.get("worker", WORKER))]
        below = [n for n in undecided if n < number]
        if below:
            return min(below)
        if not undecided:
            return number
        time.sleep(POLL_S)


def _wait_for(study, number: int):
    """Trial ``number`` once finished (waiting while its live worker measures it); None when there is nothing
    to reuse: its worker died before or while measuring it."""
    import optuna

    while True:
        t = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
        if t.state == optuna.trial.TrialState.RUNNING and _alive(t.user_attrs.get("worker", WORKER)):
            time.sleep(POLL_S)
            continue
        died = t.state == optuna.trial.TrialState.RUNNING or t.user_attrs.get("status") == "worker_died"
        return None if died else t


def open_study(
    workload: Workload,
    backend: str,
    device: str,
    sp: Space,
    limits: Mapping[str, int],
    storage,
    sampler: str,
    seed: int | None,
    records: RecordStore,
    fixed: Mapping[str, Any] | None = None,
):
    """The study of ``workload`` on one device class (made, or joined where it exists), and its name. A new
    study first gets the nearest tuned shape's best, which a conversion runs where this workload has no record of
    its own (so that a study of one trial never records worse), then the template default (the baseline of the
    speedup), the other nearest tuned shapes' bests and the template's rules of thumb."""
    import optuna

    name = study_name(workload.key, backend, device, sp.knobs, fixed)
    study = optuna.create_study(
        study_name=name, storage=storage, direction="minimize", sampler=make_sampler(sampler, seed), load_if_exists=True
    )
    study.set_user_attr("workload", workload.to_json())
    join(study)
    fail_dead_workers_trials(study, storage)
    if not study.trials:
        default = sp.default()

        def completed(config: Mapping[str, Any]) -> dict[str, Any]:
            """A record's config with the template default's values for the knobs it lacks, as a conversion runs
            it (a conv's bias layout, where the record is the bare conv's)."""
            return {k: v for k, v in {**default, **config}.items() if k in sp.names}

        valid = lambda c: not sp.violations(completed(c), limits)  # noqa: E731
        near = [completed(r.config) for r in records.serving(workload, backend, device, valid)]
        for config in [*near[:1], default, *near[1:]]:
            study.enqueue_trial(config, skip_if_exists=True)
        for config in sp.seed_configs(limits):
            study.enqueue_trial(config, skip_if_exists=True)
    return name, study


def tune(
    workload: Workload,
    backend: str,
    trials: int,
    storage_url: str,
    sampler: str = "tpe",
    timeout_s: float | None = None,
    seed: int | None = None,
    records: RecordStore | None = None,
    progress: Callable[[str], None] | None = None,
    candidate_timeout_s: float = 60.0,
    fixed: Mapping[str, Any] | None = None,
) -> TuneSummary:
    """Tune ``workload`` on ``backend`` for ``trials`` trials; ``fixed`` knobs are held at the given values (their
    own study, e.g. a wasm kernel for one thread)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url)
    records = records or RecordStore()
    sp = space(workload, backend).fix(fixed or {})
    flops = main_stage(workload).flops
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(0))
    want = workload.opdef.reference(arrays, workload.attr_dict)
    start = time.monotonic()
    signals = _Signals()
    with signals.active(), BrowserSession(job_timeout_s=candidate_timeout_s) as session:
        fp = session.fingerprint()
        device = device_class(fp, backend)
        limits = session.limits()
        name, study = open_study(workload, backend, device, sp, limits, storage, sampler, seed, records, fixed)
        harness = Harness(session, arrays, want, backend, timeout_s=candidate_timeout_s, settle=True)
        failures: Counter[str] = Counter()
        pruned = reused = done = 0
        prune_reasons: Counter[str] = Counter()
        while (
            done < trials
            and done + pruned < MAX_PROPOSALS * trials
            and signals.signum is None
            and (timeout_s is None or time.monotonic() - start < timeout_s)
        ):
            trial, config, broken = propose(study, sp, limits)
            program = None
            if config is not None:
                program, broken = _build_or_prune(study, trial, workload, backend, config, limits)
            if program is None:
                pruned += 1
                prune_reasons.update(broken)
            else:
                done += 1
                trial.set_user_attr("digest", program.digest)
                source = _claim(study, program.digest, trial.number)
                trial.set_user_attr("source", source)
                finished = _wait_for(study, source) if source != trial.number else None
                if finished is not None:
                    for k, v in finished.user_attrs.items():
                        if k not in ("worker", "digest", "source"):
                            trial.set_user_attr(k, v)
                    trial.set_user_attr("reused_from", finished.number)
                    reused += 1
                    if finished.state == optuna.trial.TrialState.COMPLETE:
                        study.tell(trial, finished.value)
                    else:
                        study.tell(trial, state=optuna.trial.TrialState.FAIL)
                        failures[finished.user_attrs.get("status", "failed")] += 1
                else:
                    m = signals.measure(harness, program, budget(_best_value(study)))
                    _record_measurement(trial, m, flops)
                    if m.ok:
                        study.tell(trial, m.median_ms)
                    else:
                        study.tell(trial, state=optuna.trial.TrialState.FAIL)
                        failures[m.status] += 1
            if progress:
                progress(_progress_line(study, done, trials, failures, pruned, flops))
        best = _best_trial(study)
        summary = _summarize(
            study, best, sp, flops, workload, backend, device, fp, storage_url, done, failures, pruned, reused
        )
        summary.limits = dict(limits)
        summary.prune_reasons = dict(prune_reasons.most_common())
        summary.seconds = time.monotonic() - start
        summary.per_minute = 60.0 * done / summary.seconds if summary.seconds else 0.0
        if signals.signum is not None:
            summary.interrupted = signal.Signals(signals.signum).name
        if best is not None:
            record = Record.measured(
                workload,
                backend,
                fp,
                summary.best_config,
                best.value,
                best.user_attrs.get("iqr_ms", 0.0),
                best.user_attrs.get("samples", 0),
                best.user_attrs.get("digest", ""),
                f"kgen tune, study {name}",
            )
            records.add([record])
            summary.record = str(records.path)
        return summary


def _best_trial(study):
    """The fastest COMPLETE trial so far, or None."""
    try:
        return study.best_trial
    except ValueError:
        return None


def _best_value(study) -> float | None:
    best = _best_trial(study)
    return None if best is None else best.value


def _record_measurement(trial, m: Measurement, flops: int) -> None:
    trial.set_user_attr("status", m.status)
    if m.reason:
        trial.set_user_attr("reason", m.reason[:2000])
    if m.ok:
        for k in ("median_ms", "iqr_ms", "samples", "k", "wall_median_ms", "clock", "max_abs_error", "estimate"):
            trial.set_user_attr(k, getattr(m, k))
        trial.set_user_attr("gflops", flops / m.median_ms / 1e6)


def _progress_line(study, done: int, total: int, failures: Counter, pruned: int, flops: int) -> str:
    best = _best_value(study)
    best_text = "no result yet" if best is None else f"best {best:.3f} ms ({flops / best / 1e6:.2f} GFLOP/s)"
    failed = sum(failures.values())
    return f"trial {done}/{total}  {best_text}  failures {failed}  pruned {pruned} of {done + pruned} proposed"


def _summarize(
    study, best, sp: Space, flops, workload, backend, device, fp, storage_url, done, failures, pruned, reused
) -> TuneSummary:
    summary = TuneSummary(
        study=study.study_name,
        storage=storage_url,
        workload=workload.key,
        backend=backend,
        device_class=device,
        software=software(fp, backend),
        trials=done,
        study_trials=len(study.trials),
        failures=dict(failures),
        pruned=pruned,
        reused=reused,
        fingerprint={
            "browser": fp.get("browser"),
            "webgpu": {k: fp["webgpu"].get(k) for k in ("vendor", "architecture")},
        },
    )
    if best is not None:
        summary.best_config = dict(best.params)
        summary.best_ms = best.value
        summary.best_iqr_ms = best.user_attrs.get("iqr_ms")
        summary.best_gflops = flops / best.value / 1e6
        summary.default_ms = default_ms(study, sp)
        if summary.default_ms is not None:
            summary.speedup = summary.default_ms / summary.best_ms
    return summary


def default_ms(study, sp: Space) -> float | None:
    """The template default's measured time in ``study`` (the baseline of a speedup), if it was measured."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return next((t.value for t in complete if t.params == sp.default()), None)
