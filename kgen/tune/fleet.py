"""A fleet of browsers tunes workloads (an op's, or a model's distinct ones): ``kgen fleet serve`` hands out
candidates, any browser that opens its worker page measures them.

Each device class (``kgen.records.store.device_class`` of the worker's fingerprint, per backend) has a study of
its own per workload: workers of one class share it, and its best becomes that class's record of the workload. A
worker gets the workloads in turn, heaviest first (a model's: occurrences times FLOPs). The server proposes a
config (as ``kgen tune`` does: the nearest record, the template default, the other nearest, the seeds, then the
sampler), builds its program and sends it as a job, with the workload's inputs and reference output where it is
the worker's first job of that workload; the page checks the output against that reference, times it with the
local tuner's harness and launchers, and posts its output with the timing. The server checks that output again, so
a result counts only if it is right, only for the job's own worker and only for that worker's class. A job not
answered in time costs its trial (FAIL, with the reason); a worker with too many rejected or lost jobs is dropped.
The server runs nothing a worker sends.

A class's ``trials`` are spread over its workloads by ``kgen tune --model``'s task scheduler
(``kgen.tune.model``): a warm-up allocation for each, heaviest first, then allocations of ``chunk`` to the workload
whose weighted best improves fastest. Workers of one class share its allocations; a new one is picked only among
workloads with no job in flight, whose last allocation has told its gain.

Every path is under ``/t/<token>/``; a request without the token gets 403:
- ``fleet/``: the worker page (``plain/fleet/``: the same without cross-origin isolation, so without threads);
- ``kgen/``: the runtime the page imports (the harness and the launchers);
- ``api/hello`` (POST ``{fingerprint}``), ``api/job`` (POST ``{worker}``), ``api/result`` (POST ``{worker, job,
  status, output, median_ms, ...}``) and ``api/status`` (GET).
"""

from __future__ import annotations

import base64
import hmac
import io
import json
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from kgen import backends
from kgen.browser.measure import Measurement, _b64, budget, inputs_key
from kgen.browser.server import ISOLATION_HEADERS, RUNTIME_DIR, TYPES
from kgen.browser.session import limits_of, software_rasterizer
from kgen.build import space
from kgen.checking import compare
from kgen.errors import KgenError
from kgen.ops.workload import Workload
from kgen.records.store import Record, RecordStore, device_class
from kgen.scheduling.lower import main_stage
from kgen.scheduling.space import Space
from kgen.tune.model import Task, allocation, estimated_ms, pick, warmup_trials
from kgen.tune.study import open_storage
from kgen.tune.tune import (
    MAX_PROPOSALS,
    _best_value,
    _build_or_prune,
    _record_measurement,
    default_ms,
    open_study,
    propose,
)

MAX_BODY = 64 << 20  # a result's output, base64
WAIT_MS = 500  # what a worker is told to wait when its class has every trial in flight


class Refused(KgenError):
    """A request the fleet refuses: ``status`` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Worker:
    id: str
    fingerprint: dict[str, Any]
    classes: dict[str, str]  # backend -> device class
    seen: float
    jobs: int = 0
    rejected: int = 0
    lost: int = 0
    dropped: str = ""
    sent: set[str] = field(default_factory=set)  # the inputs' keys its jobs carried


@dataclass
class Target:
    """A workload the fleet tunes, with the inputs and the reference output its candidates are checked on."""

    workload: Workload
    count: int  # its nodes in the model
    flops: int
    want: np.ndarray
    inputs: dict[str, Any]  # their key, and the arrays and the reference in base64: sent with a worker's first job

    @classmethod
    def of(cls, workload: Workload, count: int = 1) -> Target:
        arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(0))
        want = workload.opdef.reference(arrays, workload.attr_dict)
        inputs = {"key": inputs_key(arrays), "arrays": [_b64(a) for a in arrays], "want": _b64(want)}
        return cls(workload, count, main_stage(workload).flops, want, inputs)


@dataclass
class Study:
    """One device class's study of one workload on one backend."""

    target: Target
    backend: str
    device: str
    name: str
    optuna: Any
    space: Space
    limits: dict[str, int]
    fingerprint: dict[str, Any]  # the first worker's of the class: its record's
    task: Task  # the scheduler's view: the trials allocated to it in this run, its best and last gain
    finished: int = 0  # measured (or failed) in this run
    in_flight: int = 0
    pruned: int = 0
    failures: Counter = field(default_factory=Counter)
    recorded: bool = False

    @property
    def trials(self) -> int:
        return self.task.trials

    @property
    def idle(self) -> bool:
        """Its allocations are measured, none in flight."""
        return self.finished >= self.trials and self.in_flight == 0


@dataclass
class DeviceClass:
    """One device class on one backend: its studies (heaviest workload first) and their share of ``trials``."""

    studies: list[Study]
    trials: int
    warmup: int
    chunk: int

    @property
    def allocated(self) -> int:
        return sum(s.trials for s in self.studies)

    @property
    def complete(self) -> bool:
        return self.allocated >= self.trials and all(s.idle for s in self.studies)

    def next_study(self) -> Study | None:
        """The study to issue a job of: one with allocated trials not yet issued, else a new allocation to the
        scheduler's pick among the studies with nothing in flight; None while there is neither."""
        study = next((s for s in self.studies if s.finished + s.in_flight < s.trials), None)
        left = self.trials - self.allocated
        ready = [s for s in self.studies if s.in_flight == 0]
        if study is None and left > 0 and ready:
            task = pick([s.task for s in ready])
            study = next(s for s in ready if s.task is task)
            task.trials += allocation(task, self.warmup, self.chunk, left)
        return study


@dataclass
class Job:
    id: str
    worker: str
    study: Study
    trial: Any
    digest: str
    issued: float


class Fleet:
    """The fleet's state; every method takes the lock (the HTTP server answers from several threads)."""

    def __init__(
        self,
        workloads: Sequence[Workload],
        backend_names: list[str],
        trials: int,
        storage_url: str,
        records: RecordStore,
        counts: Mapping[str, int] | None = None,
        chunk: int = 8,
        job_timeout_s: float = 120.0,
        max_strikes: int = 3,
        sampler: str = "tpe",
        seed: int | None = None,
        progress=None,
    ) -> None:
        for name in backend_names:
            backends.get(name)
        if not workloads:
            raise KgenError("a fleet needs a workload to tune")
        self.targets = [Target.of(w, (counts or {}).get(w.key, 1)) for w in workloads]
        self.backend_names, self.trials, self.chunk = backend_names, trials, chunk
        self.storage_url, self.storage = storage_url, open_storage(storage_url)
        self.records, self.sampler, self.seed = records, sampler, seed
        self.job_timeout_s, self.max_strikes = job_timeout_s, max_strikes
        self.progress = progress or (lambda line: None)
        self.lock = threading.RLock()
        self.workers: dict[str, Worker] = {}
        self.studies: dict[tuple[str, str, str], Study] = {}  # (workload key, backend, device class)
        self.classes: dict[tuple[str, str], DeviceClass] = {}  # (backend, device class)
        self.jobs: dict[str, Job] = {}
        self.started = time.monotonic()
        self.changed = threading.Condition(self.lock)

    # -- the protocol --------------------------------------------------------------------------------------
    def hello(self, fingerprint: dict[str, Any]) -> dict[str, Any]:
        """A new worker: its id and its device class per backend it has."""
        if not isinstance(fingerprint, dict) or not isinstance(fingerprint.get("wasm"), dict):
            raise Refused(400, "hello needs the harness fingerprint")
        fp = dict(fingerprint)
        version = re.search(r"Chrom(?:e|ium)/([\d.]+)", str(fp.get("userAgent", "")))
        fp.setdefault("browser", version[1] if version else "unknown")
        fp["software"] = software_rasterizer(fp)
        with self.lock:
            classes = {b: device_class(fp, b) for b in self.backend_names if backends.get(b).available(fp)}
            if not classes:
                raise Refused(409, f"this browser has none of the fleet's backends ({', '.join(self.backend_names)})")
            worker = Worker(f"w{len(self.workers) + 1}-{secrets.token_hex(3)}", fp, classes, time.monotonic())
            self.workers[worker.id] = worker
            self.progress(f"worker {worker.id} joined: {', '.join(classes.values())}")
            self.changed.notify_all()
            return {"worker": worker.id, "classes": classes}

    def job(self, worker_id: str) -> dict[str, Any]:
        """The next candidate for this worker: ``{job}``, or ``{wait_ms}`` while its classes' trials are all in
        flight, or ``{done}`` once its classes have every trial measured."""
        with self.lock:
            self.expire()
            worker = self._worker(worker_id)
            worker.seen = time.monotonic()
            waiting = False
            for backend, device in worker.classes.items():
                group = self._class(backend, device, worker.fingerprint)
                while (study := group.next_study()) is not None:
                    issued = self._issue(study, worker)
                    if issued is not None:
                        return {"job": issued}
                    self.progress(f"{device} {study.target.workload.op}: no candidate builds; its allocation is spent")
                    self._ended(study, study.trials - study.in_flight - study.finished)
                waiting = waiting or not group.complete
            return {"wait_ms": WAIT_MS} if waiting else {"done": True}

    def result(self, worker_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A worker's answer to one of its jobs, checked here again: a wrong output is rejected (and counts
        against the worker), a right one is told to the study."""
        with self.lock:
            self.expire()
            worker = self._worker(worker_id)
            job = self.jobs.get(str(payload.get("job")))
            if job is None or job.worker != worker.id:
                raise Refused(409, f"job {payload.get('job')!r} was not given to worker {worker.id} (or has expired)")
            del self.jobs[job.id]
            study = job.study
            study.in_flight -= 1
            worker.seen = time.monotonic()
            m = self._measurement(job, payload)
            _record_measurement(job.trial, m, study.target.flops)
            job.trial.set_user_attr("fleet_worker", worker.id)
            if m.ok:
                study.optuna.tell(job.trial, m.median_ms)
            else:
                import optuna

                study.optuna.tell(job.trial, state=optuna.trial.TrialState.FAIL)
                study.failures[m.status] += 1
                if m.status == "rejected":
                    worker.rejected += 1
                    self._strike(worker)
            worker.jobs += 1
            self._ended(study)
            self.progress(self._line(study))
            self.changed.notify_all()
            return {"accepted": m.ok, "status": m.status, "reason": m.reason}

    def status(self) -> dict[str, Any]:
        with self.lock:
            self.expire()
            minutes = max((time.monotonic() - self.started) / 60.0, 1e-9)
            done = sum(s.finished for s in self.studies.values())
            return {
                "workloads": [t.workload.key for t in self.targets],
                "workers": [
                    {
                        "id": w.id,
                        "classes": w.classes,
                        "jobs": w.jobs,
                        "rejected": w.rejected,
                        "lost": w.lost,
                        "dropped": w.dropped,
                        "idle_s": round(time.monotonic() - w.seen, 1),
                    }
                    for w in self.workers.values()
                ],
                "classes": [
                    {
                        "backend": backend,
                        "device_class": device,
                        "trials": group.trials,
                        "allocated": group.allocated,
                        "finished": sum(s.finished for s in group.studies),
                        "estimated_ms": estimated_ms([s.task for s in group.studies]),
                    }
                    for (backend, device), group in self.classes.items()
                ],
                "studies": [self._summary(s) for s in self.studies.values()],
                "jobs_per_minute": round(done / minutes, 2),
                "in_flight": len(self.jobs),
            }

    # -- bookkeeping ---------------------------------------------------------------------------------------
    def expire(self) -> None:
        """Jobs past their time: their trials fail with the reason, and count against their workers."""
        import optuna

        now = time.monotonic()
        for job in [j for j in self.jobs.values() if now - j.issued > self.job_timeout_s]:
            del self.jobs[job.id]
            reason = f"worker {job.worker} did not answer within {self.job_timeout_s:g} s"
            job.trial.set_user_attr("status", "worker_lost")
            job.trial.set_user_attr("reason", reason)
            job.study.optuna.tell(job.trial, state=optuna.trial.TrialState.FAIL)
            job.study.in_flight -= 1
            job.study.failures["worker_lost"] += 1
            worker = self.workers[job.worker]
            worker.lost += 1
            self._strike(worker)
            self.progress(f"{reason}: trial {job.trial.number} failed; another takes its place")
            # a closed tab costs the budget nothing: its allocation, and the class's budget, get the trial again
            job.study.task.trials += 1
            self.classes[job.study.backend, job.study.device].trials += 1
            self._ended(job.study)
            self.changed.notify_all()

    def complete_classes(self) -> int:
        """Device classes with every trial of their budget measured."""
        with self.lock:
            return sum(group.complete for group in self.classes.values())

    def record(self, study: Study) -> Record | None:
        """The study's best as its device class's record (once; None without a measured trial)."""
        with self.lock:
            if study.recorded:
                return None
            study.recorded = True
            best = study.optuna.best_trial if _best_value(study.optuna) is not None else None
            if best is None:
                return None
            record = Record.measured(
                study.target.workload,
                study.backend,
                study.fingerprint,
                dict(best.params),
                best.value,
                best.user_attrs.get("iqr_ms", 0.0),
                best.user_attrs.get("samples", 0),
                best.user_attrs.get("digest", ""),
                f"kgen fleet, study {study.name}",
                # the worker's CPU, which a page cannot name; not the server's
                cpu=f"a fleet worker: {study.fingerprint.get('userAgent', '')}",
            )
            self.records.add([record])
            self.progress(f"{study.device}: record {best.value:.3f} ms written to {self.records.path}")
            return record

    def finish(self) -> dict[str, Any]:
        """At the end (or on Ctrl-C): every study's best to the records, and the final status."""
        with self.lock:
            for study in self.studies.values():
                self.record(study)
            return self.status()

    def _worker(self, worker_id: str) -> Worker:
        worker = self.workers.get(str(worker_id))
        if worker is None:
            raise Refused(409, f"unknown worker {worker_id!r}: say hello first")
        if worker.dropped:
            raise Refused(403, f"worker {worker.id} was dropped: {worker.dropped}")
        return worker

    def _strike(self, worker: Worker) -> None:
        if worker.rejected + worker.lost >= self.max_strikes and not worker.dropped:
            worker.dropped = f"{worker.rejected} rejected and {worker.lost} unanswered jobs"
            self.progress(f"worker {worker.id} dropped: {worker.dropped}")

    def _class(self, backend: str, device: str, fingerprint: dict[str, Any]) -> DeviceClass:
        """The device class's studies, opened when its first worker asks for a job."""
        if (backend, device) not in self.classes:
            limits = limits_of(fingerprint)
            studies = []
            for target in self.targets:
                sp = space(target.workload, backend)
                name, study = open_study(
                    target.workload, backend, device, sp, limits, self.storage, self.sampler, self.seed, self.records
                )
                task = Task(target.workload, target.count, target.flops)
                studies.append(Study(target, backend, device, name, study, sp, limits, fingerprint, task))
                self.studies[target.workload.key, backend, device] = studies[-1]
            warmup = warmup_trials(self.trials, len(studies), self.chunk)
            self.classes[backend, device] = DeviceClass(studies, self.trials, warmup, self.chunk)
        return self.classes[backend, device]

    def _ended(self, study: Study, trials: int = 1) -> None:
        """``trials`` of ``study`` measured or failed: where that ends its allocation, the scheduler hears its
        gain; where it completes its class, the class's bests go to the records."""
        study.finished += trials
        if study.idle:
            study.task.observe(_best_value(study.optuna), default_ms(study.optuna, study.space))
            group = self.classes[study.backend, study.device]
            if group.complete:
                for s in group.studies:
                    self.record(s)

    def _issue(self, study: Study, worker: Worker) -> dict[str, Any] | None:
        """Propose configs until one builds (the invalid ones pruned with their reasons); that one as a job."""
        for _ in range(MAX_PROPOSALS * max(1, study.trials)):
            trial, config, _ = propose(study.optuna, study.space, study.limits)
            if config is None:
                study.pruned += 1
                continue
            workload = study.target.workload
            program, _ = _build_or_prune(study.optuna, trial, workload, study.backend, config, study.limits)
            if program is None:
                study.pruned += 1
                continue
            trial.set_user_attr("digest", program.digest)
            job = Job(
                f"j{trial.number}-{secrets.token_hex(4)}", worker.id, study, trial, program.digest, time.monotonic()
            )
            self.jobs[job.id] = job
            study.in_flight += 1
            samples, min_sample_ms = backends.get(study.backend).timing
            rtol, atol = backends.get(study.backend).tolerance
            inputs = study.target.inputs
            first = inputs["key"] not in worker.sent
            worker.sent.add(inputs["key"])
            return {
                "id": job.id,
                "backend": study.backend,
                "device": study.device,
                "workload": study.target.workload.key,
                "inputs_key": inputs["key"],
                **({"inputs": inputs} if first else {}),
                "program": program.to_json(),
                "tolerance": {"rtol": rtol, "atol": atol},
                "timing": {
                    "samples": samples,
                    "minSampleMs": min_sample_ms,
                    "budgetMs": budget(_best_value(study.optuna)),
                },
            }
        return None

    def _measurement(self, job: Job, payload: dict[str, Any]) -> Measurement:
        """What the worker measured, as the local tuner records it; its output checked here first."""
        status = str(payload.get("status", "runtime_error"))
        message = str(payload.get("message", ""))[:2000]
        if status not in ("ok", "wrong"):
            return Measurement(status, job.digest, message or "the worker gave no reason")
        try:
            got = np.frombuffer(base64.b64decode(str(payload.get("output", "")), validate=True), dtype=np.float32)
        except ValueError:
            got = np.zeros(0, np.float32)
        want = job.study.target.want
        if got.size != want.size:
            check_reason = f"its output has {got.size} values, expected {want.size}"
            ok = False
        else:
            check = compare(got.reshape(want.shape), want, job.study.backend)
            check_reason, ok = check.reason, check.ok
        if status == "wrong":  # the page found it wrong itself: a failed candidate, not a lying worker
            return Measurement("wrong", job.digest, message or check_reason)
        if not ok:
            return Measurement("rejected", job.digest, f"the server's check failed: {check_reason}")
        try:
            median_ms, iqr_ms = float(payload["median_ms"]), float(payload.get("iqr_ms", 0.0))
        except (KeyError, TypeError, ValueError):
            return Measurement("rejected", job.digest, "an ok result without a median_ms")
        if not (median_ms > 0 and np.isfinite(median_ms)):
            return Measurement("rejected", job.digest, f"median_ms {median_ms} is not a time")
        return Measurement(
            "ok",
            job.digest,
            median_ms=median_ms,
            iqr_ms=iqr_ms,
            samples=int(payload.get("samples", 0)),
            k=int(payload.get("k", 0)),
            wall_median_ms=float(payload.get("wall_median_ms", median_ms)),
            clock=str(payload.get("clock", "wall")),
            estimate=bool(payload.get("estimate", False)),
        )

    def _summary(self, s: Study) -> dict[str, Any]:
        best = _best_value(s.optuna)
        params = s.optuna.best_trial.params if best is not None else None
        return {
            "workload": s.target.workload.key,
            "backend": s.backend,
            "device_class": s.device,
            "study": s.name,
            "trials": s.trials,
            "finished": s.finished,
            "in_flight": s.in_flight,
            "pruned": s.pruned,
            "failures": dict(s.failures),
            "best_ms": best,
            "best_config": params,
            "recorded": s.recorded,
        }

    def _line(self, s: Study) -> str:
        best = _best_value(s.optuna)
        shown = "no result yet" if best is None else f"best {best:.3f} ms"
        where = f"{s.device} {s.target.workload.op}"
        group = self.classes[s.backend, s.device]
        done = sum(x.finished for x in group.studies)
        model = estimated_ms([x.task for x in group.studies])
        whole = f"; class {done}/{group.trials}"
        if model and len(self.targets) > 1:
            whole += f", model ~{model:.2f} ms"
        return f"{where}: {s.finished}/{s.trials} trials, {shown}{whole}, {len(self.workers)} workers"


class _Handler(BaseHTTPRequestHandler):
    server_version = "kgen-fleet"
    fleet: Fleet
    token: str

    def log_message(self, format: str, *args) -> None:
        pass

    def _route(self) -> tuple[bool, str] | None:
        """(cross-origin isolated, the path after the token) of a request that carries the token, else None."""
        parts = unquote(urlsplit(self.path).path).split("/", 3)  # "", "t", token, rest
        if len(parts) < 4 or parts[1] != "t" or not hmac.compare_digest(parts[2].encode(), self.token.encode()):
            return None
        rest = parts[3]
        isolated = not rest.startswith("plain/")
        return isolated, rest.removeprefix("plain/")

    def _send(self, status: int, body: bytes, ctype: str, isolated: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        headers = ISOLATION_HEADERS if isolated else {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any, isolated: bool = True) -> None:
        self._send(status, json.dumps(value).encode(), "application/json", isolated)

    def _file(self, rest: str, isolated: bool) -> None:
        roots = {"fleet/": RUNTIME_DIR / "fleet", "kgen/": RUNTIME_DIR}
        for prefix, root in roots.items():
            if rest.startswith(prefix):
                target = (root / (rest[len(prefix) :] or "index.html")).resolve()
                if target.is_relative_to(root.resolve()) and target.is_file():
                    self._send(200, target.read_bytes(), TYPES.get(target.suffix, "application/octet-stream"), isolated)
                    return
        self._json(404, {"error": "not found"}, isolated)

    def _authorized(self) -> tuple[bool, str] | None:
        """The route of a request that carries the token; None, and a 403 answered, for one that does not."""
        route = self._route()
        if route is None:
            self._json(403, {"error": "a kgen fleet path needs its token: /t/<token>/..."})
        return route

    def do_GET(self) -> None:
        route = self._authorized()
        if route is None:
            return
        isolated, rest = route
        if rest == "api/status":
            self._json(200, self.fleet.status(), isolated)
        else:
            self._file(rest, isolated)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        route = self._authorized()
        if route is None:
            return
        isolated, rest = route
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if length > MAX_BODY:
                raise Refused(413, f"a request of {length} bytes: at most {MAX_BODY}")
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as err:
                raise Refused(400, f"the body is not JSON: {err}") from None
            if not isinstance(body, dict):
                raise Refused(400, "the body is not a JSON object")
            if rest == "api/hello":
                answer = self.fleet.hello(body.get("fingerprint"))
            elif rest == "api/job":
                answer = self.fleet.job(str(body.get("worker")))
            elif rest == "api/result":
                answer = self.fleet.result(str(body.get("worker")), body)
            else:
                raise Refused(404, f"no endpoint {rest}")
            self._json(200, answer, isolated)
        except Refused as err:
            self._json(err.status, {"error": str(err)}, isolated)


class FleetServer:
    """``with FleetServer(fleet, host, port, token) as s: s.url``: the fleet's HTTP server in a thread."""

    def __init__(self, fleet: Fleet, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(16)  # every path needs one, on any address
        handler = type("FleetHandler", (_Handler,), {"fleet": fleet, "token": self.token})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as err:
            raise KgenError(f"cannot listen on {host}:{port}: {err.strerror}") from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="kgen-fleet", daemon=True)

    @property
    def url(self) -> str:
        """The server's URL with its token; bound to every address (0.0.0.0), this machine's address on its
        network, which another device can open."""
        host, port = self.httpd.server_address[:2]
        if host in ("0.0.0.0", "::"):
            host = _network_address()
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/t/{self.token}/"

    def __enter__(self) -> FleetServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _network_address() -> str:
    """The address of the interface that reaches other machines (a UDP socket's connect sends nothing), else
    127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.254.254.254", 1))
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def qr_code(text: str) -> str:
    """``text`` as a QR code in block characters, for a phone's camera to read off a terminal."""
    import qrcode

    code = qrcode.QRCode(border=1)
    code.add_data(text)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue().rstrip("\n")


def serve(
    fleet: Fleet,
    host: str,
    port: int,
    token: str | None,
    classes: int,
    timeout_s: float | None,
    announce=print,
    qr: bool = False,
) -> dict[str, Any]:
    """Serve until ``classes`` device classes have every trial measured (0: until Ctrl-C or the timeout); then
    the records, and the final status. ``qr``: the worker page's URL as a QR code too."""
    with FleetServer(fleet, host, port, token) as server:
        announce(f"kgen fleet: open {server.url}fleet/ on each device ({server.url}plain/fleet/ without threads)")
        if qr:
            announce(qr_code(f"{server.url}fleet/"))
        announce(f"kgen fleet: status with `kgen fleet status {server.url}`; Ctrl-C writes the records and stops")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            with fleet.changed:
                while not (classes and fleet.complete_classes() >= classes):
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    fleet.changed.wait(1.0)
                    fleet.expire()
            time.sleep(0.5)  # the workers' last polls hear that they are done
        except KeyboardInterrupt:
            announce("kgen fleet: interrupted")
        return fleet.finish()
