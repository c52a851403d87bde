"""Tuning records: the best config per (workload, backend, device class), in JSON lines.

A record keeps what was measured and where: config, median and IQR, sample count, GFLOP/s, the kernel's digest
and the device fingerprint (on the CPU backends, the host's CPU too). Lookup falls back from the exact workload to
the nearest tuned shape of the same op, backend and device class (whose config must still be valid here), fewest
differing attributes first, and then to the template default, and says which it used. A record of other
attributes (a 5x5 depthwise conv's for a 3x3 one) beats the default by far: a new model's depthwise convs on WebGL
ran 20x slower on the default than on their kin's records.

Per workload the best record wins: on wasm and js, one measured on this host's CPU if there is one, since the
device class (the cores a page may use) does not tell CPUs apart and another machine's median says little about
this one's (a 1x1 conv's best config on a Zen 4 VM ran 1.3x slower than another on a Zen 3 one); then the
lowest median.
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kgen import backends
from kgen.atomic import write_text_atomic
from kgen.errors import KgenError
from kgen.ops.workload import Workload

DEFAULT_PATH = Path("results") / "records.jsonl"
#: the records kgen ships (in a checkout a link to results/records.jsonl; in the wheel the file)
SHIPPED = Path(__file__).with_name("shipped.jsonl")


def shipped_records() -> Path:
    """The records a conversion uses by default: ``$KGEN_RECORDS`` when set, else the ones kgen ships."""
    return Path(os.environ.get("KGEN_RECORDS") or SHIPPED)


def device_class(fingerprint: Mapping[str, Any], backend: str) -> str:
    """A short name for the kind of device a measurement holds for, e.g. ``google-swiftshader``."""
    parts = backends.get(backend).device_parts(fingerprint)
    return "-".join(p.strip().lower().replace(" ", "_") for p in parts)


def software(fingerprint: Mapping[str, Any], backend: str) -> bool:
    """Whether ``backend`` ran on a software rasterizer (SwiftShader) rather than the device it stands for; CPU
    backends (wasm, js) run on the CPU as they would anywhere."""
    return backends.get(backend).gpu and bool(fingerprint.get("software"))


#: the parts of a browser's fingerprint a record keeps
FINGERPRINT_KEYS = ("browser", "software", "hardwareConcurrency", "crossOriginIsolated", "webgpu", "webgl2", "wasm")


@functools.cache
def host_cpu() -> str:
    """This machine's CPU as /proc/cpuinfo names it (vendor, family, model, stepping, model name), or what
    ``platform`` knows elsewhere: which CPU a wasm or js record was measured on."""
    try:
        first = Path("/proc/cpuinfo").read_text(encoding="utf-8").split("\n\n")[0]
    except OSError:
        return platform.processor() or platform.machine()
    pairs = (line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in pairs}
    parts = [fields.get(k, "") for k in ("vendor_id", "cpu family", "model", "stepping", "model name")]
    return " ".join(p for p in parts if p) or platform.machine()


def preference(r: Record) -> tuple[bool, float]:
    """The order in which records of one workload win (lowest first): measured on this host's CPU (CPU backends),
    then by median."""
    return (not backends.get(r.backend).gpu and r.fingerprint.get("cpu") != host_cpu(), r.median_ms)


@dataclass(frozen=True)
class Record:
    workload: dict[str, Any]  # Workload.to_json() as a dict
    key: str
    backend: str
    device_class: str
    config: dict[str, Any]
    median_ms: float
    iqr_ms: float
    samples: int
    gflops: float
    digest: str
    fingerprint: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    time: str = ""

    def to_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def measured(
        cls,
        workload: Workload,
        backend: str,
        fingerprint: Mapping[str, Any],
        config: Mapping[str, Any],
        median_ms: float,
        iqr_ms: float,
        samples: int,
        digest: str,
        source: str,
        cpu: str | None = None,
    ) -> Record:
        """The record of ``config`` measured at ``median_ms`` on the device ``fingerprint`` describes, now; on a CPU
        backend, ``cpu`` names the CPU it ran on (default: this machine's)."""
        from kgen.scheduling.lower import main_stage

        return cls(
            workload=json.loads(workload.to_json()),
            key=workload.key,
            backend=backend,
            device_class=device_class(fingerprint, backend),
            config=dict(config),
            median_ms=median_ms,
            iqr_ms=iqr_ms,
            samples=samples,
            gflops=main_stage(workload).flops / median_ms / 1e6,
            digest=digest,
            fingerprint={k: fingerprint[k] for k in FINGERPRINT_KEYS if k in fingerprint}
            | ({} if backends.get(backend).gpu else {"cpu": cpu or host_cpu()}),
            source=source,
            time=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    @classmethod
    def from_line(cls, line: str, where: str = "") -> Record:
        try:
            data = json.loads(line)
            record = cls(**data)
            _ = record.workload_obj  # validates the workload, once: lookups compare it for every node of a model
        except (json.JSONDecodeError, TypeError, KgenError) as err:  # KgenError: a workload that cannot exist
            raise KgenError(f"{where}: not a kgen record: {err}") from None
        return record

    @functools.cached_property
    def workload_obj(self) -> Workload:
        return Workload.from_json(json.dumps(self.workload))

    @functools.cached_property
    def relative_attrs(self) -> dict[str, Any]:
        return self.workload_obj.relative_attrs


@dataclass(frozen=True)
class Lookup:
    config: dict[str, Any] | None  # None: the template default
    how: str  # "exact" | "nearest" | "default"
    record: Record | None = None

    def describe(self) -> str:
        if self.record is None:
            return "template default (no record for this op, backend and device class)"
        if self.how == "exact":
            return f"tuned record for this workload ({self.record.median_ms:.3f} ms)"
        return f"record of the nearest tuned shape {self.record.key}"


class RecordStore:
    """A JSON-lines file of records; the best per key (``preference``) wins on lookup."""

    def __init__(self, path: Path | str = DEFAULT_PATH) -> None:
        self.path = Path(path)
        self._read: tuple[tuple[int, int], list[Record]] | None = None
        self._best: dict[str, list[Record]] = {}  # best(fixed) by fixed, for the version of the file read

    def all(self) -> list[Record]:
        """Every record, parsed and validated once per version of the file (a model's conversion looks records
        up for every node). A line that is not a record (one cut short by a killed writer, say) is skipped with a
        warning naming it."""
        if not self.path.exists():
            return []
        stat = self.path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        if self._read is None or self._read[0] != version:
            records = []
            for n, line in enumerate(self._lines(), 1):
                if not line.strip():
                    continue
                try:
                    records.append(Record.from_line(line, f"{self.path}:{n}"))
                except KgenError as err:
                    print(f"kgen: warning: skipped {err}", file=sys.stderr)
            self._read = (version, records)
            self._best = {}
        return list(self._read[1])

    def _lines(self) -> list[str]:
        if self.path.is_dir():
            raise KgenError(f"{self.path}: is a directory, not a records file")
        try:
            return self.path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise KgenError(f"{self.path}: not a records file (not UTF-8 text)") from None
        except OSError as err:
            raise KgenError(f"{self.path}: cannot read: {err.strerror}") from None

    def best(self, fixed: Mapping[str, Any] | None = None) -> list[Record]:
        """The best record of each (workload, backend, device class); with ``fixed``, among the records whose
        config has those knob values (a model's wasm kernels all run on its thread count). Computed once per
        version of the file and ``fixed``: a conversion asks for every node."""
        records = self.all()
        memo = json.dumps(fixed or {}, sort_keys=True, default=str)
        if memo not in self._best:
            winners: dict[tuple[str, str, str], Record] = {}
            for r in records:
                if fixed and any(r.config.get(k) != v for k, v in fixed.items()):
                    continue
                k = (r.key, r.backend, r.device_class)
                if k not in winners or preference(r) < preference(winners[k]):
                    winners[k] = r
            self._best[memo] = sorted(winners.values(), key=lambda r: (r.backend, r.device_class, r.key))
        return list(self._best[memo])

    def add(self, records: Iterable[Record]) -> int:
        """Add records: one per (workload, backend, device class, config, and CPU on the CPU backends), the better
        measurement kept. The whole file is rewritten through a temporary file, so it is never half-written.
        Returns how many records were new or better."""
        kept: dict[tuple[str, str, str, str, Any], Record] = {}
        for r in self.all():
            _keep_better(kept, r)
        changed = sum(_keep_better(kept, r) for r in records)
        try:
            write_text_atomic(self.path, "".join(r.to_line() + "\n" for r in kept.values()))
        except OSError as err:
            raise KgenError(f"{self.path}: cannot write the records: {err.strerror}") from None
        return changed

    def check_writable(self) -> None:
        """Raise now, not after a tuning run, where the records could not be read or written: the folder is made
        if missing and a temporary file is created in it and removed."""
        if self.path.exists():
            self._lines()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path.parent):
                pass
        except OSError as err:
            raise KgenError(f"{self.path}: cannot write the records there: {err.strerror}") from None
        if self.path.exists() and not os.access(self.path, os.W_OK):
            raise KgenError(f"{self.path}: the records file is not writable")

    def nearest(
        self, workload: Workload, backend: str, device: str, valid=None, limit: int = 3, fixed=None
    ) -> list[Record]:
        """Best records of the same op, dtype, backend, device class and kind of kernel: fewest differing
        attributes first (as ``Workload.relative_attrs`` compares them), then closest shapes.

        ``valid(config)`` filters out configs that cannot run on ``workload``; ``fixed`` as for ``best``.
        """
        attrs = workload.relative_attrs
        kind = [a.name for a in workload.opdef.attrs if a.kind_of_kernel]
        candidates = []
        for r in self.best(fixed):
            if r.backend != backend or r.device_class != device or r.workload["op"] != workload.op:
                continue
            if r.workload_obj.dtype != workload.dtype or any(attrs[a] != r.relative_attrs.get(a) for a in kind):
                continue
            distance = _shape_distance(workload.shapes, r.workload_obj.shapes)
            if distance is None or (valid is not None and not valid(r.config)):
                continue
            differing = sum(value != r.relative_attrs.get(name) for name, value in attrs.items())
            candidates.append(((differing, distance), r.key, r))
        return [r for _, _, r in sorted(candidates, key=lambda c: (c[0], c[1]))[:limit]]

    def serving(
        self, workload: Workload, backend: str, device: str, valid=None, limit: int = 3, fixed=None
    ) -> list[Record]:
        """The nearest records that serve ``workload``: its own op's, or its bare op's (a conv's without its bias,
        ``Workload.bare``) where there are none of those or only the bare op's nearest has its attributes."""
        own = self.nearest(workload, backend, device, valid, limit, fixed)
        if workload.bare is None:
            return own
        bare = self.nearest(workload.bare, backend, device, valid, limit, fixed)

        def alike(records: list[Record]) -> bool:
            return bool(records) and records[0].relative_attrs == workload.relative_attrs

        return bare if not own or (alike(bare) and not alike(own)) else own

    def lookup(self, workload: Workload, backend: str, device: str, valid=None, fixed=None) -> Lookup:
        near = self.serving(workload, backend, device, valid, limit=1, fixed=fixed)
        if not near:
            return Lookup(None, "default")
        record = near[0]
        exact = record.key in (workload.key, workload.bare and workload.bare.key)
        return Lookup(record.config, "exact" if exact else "nearest", record)


def _keep_better(kept: dict[tuple[str, str, str, str, Any], Record], r: Record) -> bool:
    """``r`` in ``kept`` unless a record of the same workload, backend, device class, config and CPU measured
    faster is there; whether it went in."""
    k = (r.key, r.backend, r.device_class, json.dumps(r.config, sort_keys=True), r.fingerprint.get("cpu"))
    if k in kept and kept[k].median_ms <= r.median_ms:
        return False
    kept[k] = r
    return True


def _shape_distance(a: tuple[tuple[int, ...], ...], b: tuple[tuple[int, ...], ...]) -> float | None:
    """Sum of |log ratio| over every dimension; None when the ranks differ."""
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b, strict=True)):
        return None
    return sum(abs(math.log(p) - math.log(q)) for x, y in zip(a, b, strict=True) for p, q in zip(x, y, strict=True))
