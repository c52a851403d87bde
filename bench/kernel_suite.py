"""The kernel suite against the peers, live in one browser: kgen's kernel of each workload (its best record, or
the template default where there is none) beside ONNX Runtime Web's and TensorFlow.js's on the same backend, on
the fair protocol of `bench.protocol`.

Per backend variant (wasm on 1 and on 2 threads, WebGL2, WebGPU) and round, one fresh page; in it, per workload,
kgen then each peer, each after the machine has gone idle, with the same warm-up and samples:

- kgen: the kernel alone, its inputs in memory (the harness: checked against numpy, then timed).
- ``tfjs``: TF.js's backend of the same name (wasm: XNNPACK, on 1 thread only, since it runs at most
  hardwareConcurrency / 2 threads; webgl; webgpu) on ``tf.conv2d`` / ``tf.depthwiseConv2d`` / ``tf.matMul`` in
  its own layouts, the weight a tensor made once. On wasm the op alone is timed (its kernels are synchronous); on
  the GPU backends a run ends with ``data()`` (the input copied in, the output read back), since nothing else
  tells when the GPU is done.
- ``ort``: ONNX Runtime Web's execution provider of the backend (wasm, webgpu) on a one-op ONNX model, timed by
  ``session.run`` (input copied in, output read back: its API cannot avoid them).

Each peer's first outputs are checked against numpy before its figure counts. A workload whose kgen / best-peer
ratio disagrees between rounds by more than the rounds' spread is measured again for as many rounds.

On wasm the register-only relaxed-madd loop of `bench.peak` is timed right after kgen's kernel, on as many workers
as the kernel has threads and after the same idle wait and warm-up: kgen's share of the peak is then a ratio of two
figures a few seconds apart, not of a kernel figure and a peak taken in another minute. (On the Zen 4 VM the loop
stayed at 56-58 GFLOP/s beside kernels whose rounds differed by up to half: its slow phases slow the code that
reads memory, kgen's and the peers', and not the register-only loop, so the share still falls in them.)
"""

from __future__ import annotations

import base64
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import peak, protocol
from bench.onnx_models import one_op_model
from bench.store import variant_name
from bench.suite import SUITE, flops
from kgen.browser.measure import Harness
from kgen.browser.session import BrowserSession
from kgen.build import build, space
from kgen.records.store import RecordStore, device_class, preference

PEERS_DIR = Path(__file__).resolve().parent / "peers"
ORT = "/peers/ort_runner.js"
TFJS = "/peers/tfjs_runner.js"
#: the peers that have a backend of each name
PEERS_OF = {"wasm": ("tfjs", "ort"), "webgl": ("tfjs",), "webgpu": ("tfjs", "ort")}
PACKAGES = {
    "ort": ("onnxruntime-web",),
    "tfjs": ("@tensorflow/tfjs-core",),
}
TFJS_BACKEND = "@tensorflow/tfjs-backend-{}"
TIMEOUT_S = 300


@dataclass(frozen=True)
class Variant:
    """A backend as compared: wasm at a thread count, or a GPU backend."""

    backend: str
    threads: int = 1

    @property
    def name(self) -> str:
        return variant_name(self.backend, self.threads)

    def peers(self, wanted: Sequence[str]) -> tuple[str, ...]:
        # TF.js's wasm backend runs at most hardwareConcurrency / 2 threads (one here): compared on 1 thread only
        return tuple(p for p in PEERS_OF[self.backend] if p in wanted and not (p == "tfjs" and self.threads > 1))


def variants(backends: Sequence[str], threads: Sequence[int] = (1, 2)) -> list[Variant]:
    """The variants compared: wasm at each thread count of ``threads``, the GPU backends once."""
    out = []
    for b in backends:
        out += [Variant("wasm", t) for t in threads] if b == "wasm" else [Variant(b)]
    return out


def check_installed(variant: Variant, peers: Sequence[str]) -> None:
    for peer in variant.peers(peers):
        extra = (TFJS_BACKEND.format(variant.backend),) if peer == "tfjs" else ()
        for package in (*PACKAGES[peer], *extra):
            if not (PEERS_DIR / "node_modules" / package).is_dir():
                raise SystemExit(f"kgen bench: {package} is not installed: run `make peers`")


@dataclass(frozen=True)
class Chosen:
    config: dict[str, Any]
    source: str  # "record" or "default"


def choose_configs(
    names: Sequence[str], variant: Variant, fingerprint: dict, limits: dict, records: Sequence[Path]
) -> dict[str, Chosen]:
    """kgen's config of each workload: the best exact record on this kind of device (at the variant's thread
    count on wasm; ``preference``: this host's CPU first, then the fastest) among ``records``, else the template
    default (its threads set to the variant's). A record made before a knob existed has that knob at its default,
    as ``kgen convert`` reads it (``Space.complete``)."""
    device = device_class(fingerprint, variant.backend)
    fixed = {"threads": variant.threads} if variant.backend == "wasm" else None
    mine = [
        r
        for path in records
        for r in RecordStore(path).best(fixed)
        if r.backend == variant.backend and r.device_class == device
    ]
    chosen = {}
    for name in names:
        workload = SUITE[name][0]
        sp = space(workload, variant.backend).fix(fixed or {})
        exact = [
            (preference(r), full)
            for r in mine
            if r.key == workload.key and not sp.violations(full := {**sp.default(), **r.config}, limits)
        ]
        if exact:
            chosen[name] = Chosen(min(exact, key=lambda e: e[0])[1], "record")
        else:
            chosen[name] = Chosen(sp.default(), "default")
    return chosen


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.float32).tobytes()).decode()


def _tensor(a: np.ndarray) -> dict:
    return {"dims": list(a.shape), "b64": _b64(a)}


def tfjs_operands(workload, arrays: list[np.ndarray]) -> tuple[dict, dict, dict]:
    """TF.js's op, input and weight for a suite workload: a matmul as it is; a conv in TF.js's layouts (NHWC
    input, HWIO filter; a depthwise one's filter [kH, kW, C, 1]), transposed here, outside the timing."""
    if workload.op == "matmul":
        return {"kind": "matmul"}, _tensor(arrays[0]), _tensor(arrays[1])
    attrs = workload.attr_dict
    x = arrays[0].transpose(0, 2, 3, 1)
    depthwise = attrs["group"] > 1
    w = arrays[1].transpose(2, 3, 0, 1) if depthwise else arrays[1].transpose(2, 3, 1, 0)
    op = {"kind": "depthwise" if depthwise else "conv", "strides": list(attrs["strides"]), "pads": list(attrs["pads"])}
    return op, _tensor(x), _tensor(w)


def check_peer(name: str, peer: str, got: list[float], want: np.ndarray) -> None:
    first = want.ravel()[: len(got)]
    if not np.allclose(got, first, rtol=1e-3, atol=1e-3):
        raise AssertionError(f"{name}: {peer} computed something else than numpy ({got[:3]} vs {first[:3].tolist()})")


@dataclass(frozen=True)
class Timing:
    median_ms: float
    iqr_ms: float
    n: int


def _peer_timing(result: dict) -> Timing:
    q = np.percentile(result["sampleMs"], [25, 75])
    return Timing(float(result["medianMs"]), float(q[1] - q[0]), len(result["sampleMs"]))


Inputs = dict[str, tuple[list[np.ndarray], np.ndarray]]


def seeded_inputs(names: Sequence[str], seed: int) -> Inputs:
    """Each workload's seeded inputs and numpy's output for them: {name: (arrays, want)}."""
    inputs = {}
    for name in names:
        workload = SUITE[name][0]
        arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(seed))
        inputs[name] = (arrays, workload.opdef.reference(arrays, workload.attr_dict))
    return inputs


def measure_round(
    variant: Variant,
    names: Sequence[str],
    configs: dict[str, Chosen],
    peers: Sequence[str],
    samples: int,
    inputs: Inputs,
    warmup_ms: int = protocol.WARMUP_MS,
) -> dict[str, Any]:
    """One fresh page, the sides interleaved per workload, each after the machine went idle: {"times": {name:
    {side: Timing}}, "load": {name: {side: busy share just before}}, "peak": {name: GFLOP/s of the peak loop
    right after kgen's kernel (wasm only)}, "versions": {peer: v}}."""
    timing = {"warmupMs": warmup_ms, "samples": samples, "minSampleMs": protocol.MIN_SAMPLE_MS}
    versions: dict[str, str] = {}
    times: dict[str, dict[str, Timing]] = {name: {} for name in names}
    load: dict[str, dict[str, float]] = {name: {} for name in names}
    ceiling: dict[str, float] = {}
    with BrowserSession(job_timeout_s=TIMEOUT_S, mounts={"/peers/": PEERS_DIR}) as session:
        limits = session.limits()
        compared = variant.peers(peers)
        if "tfjs" in compared:
            tfjs = session.evaluate(f"async ([t, b]) => (await import('{TFJS}')).setup(t, b)", [1, variant.backend])
            if tfjs["backend"] != variant.backend:
                raise SystemExit(f"kgen bench: TF.js set up {tfjs['backend']}, not {variant.backend}")
            versions["tfjs"] = tfjs["version"]
        if "ort" in compared:
            ort = session.evaluate(
                f"async ([t, e]) => (await import('{ORT}')).setup(t, e)", [variant.threads, variant.backend]
            )
            if variant.backend == "wasm" and not ort["crossOriginIsolated"]:
                raise SystemExit("kgen bench: the page is not cross-origin isolated (wasm threads)")
            versions["ort"] = ort["version"]

        def time_kgen(name: str) -> Timing:
            arrays, want = inputs[name]
            workload = SUITE[name][0]
            harness = Harness(
                session, arrays, want, variant.backend, samples, protocol.MIN_SAMPLE_MS, TIMEOUT_S, warmup_ms
            )
            m = harness.measure(build(workload, variant.backend, configs[name].config, limits)[0])
            if not m.ok:
                raise AssertionError(f"{name} on {variant.name}: kgen's kernel {m.status}: {m.reason}")
            return Timing(m.median_ms, m.iqr_ms or 0.0, m.samples)

        def time_tfjs(name: str) -> Timing:
            arrays, want = inputs[name]
            op, x, w = tfjs_operands(SUITE[name][0], arrays)
            script = f"async ([o, x, w, t]) => (await import('{TFJS}')).time(o, x, w, t)"
            result = session.evaluate(script, [op, x, w, {**timing, "opOnly": variant.backend == "wasm"}])
            check_peer(name, "TF.js", result["output"], want if op["kind"] == "matmul" else want.transpose(0, 2, 3, 1))
            return _peer_timing(result)

        def time_ort(name: str) -> Timing:
            arrays, want = inputs[name]
            model = base64.b64encode(one_op_model(SUITE[name][0], arrays)).decode()
            script = f"async ([m, f, t]) => (await import('{ORT}')).time(m, f, t)"
            result = session.evaluate(script, [model, [{"name": "x", **_tensor(arrays[0])}], timing])
            check_peer(name, "ORT", result["output"], want)
            return _peer_timing(result)

        timers: dict[str, Callable[[str], Timing]] = {"kgen": time_kgen, "tfjs": time_tfjs, "ort": time_ort}
        for name in names:
            for side in ("kgen", *compared):
                load[name][side] = protocol.wait_idle()
                times[name][side] = timers[side](name)
                if side == "kgen" and variant.backend == "wasm":
                    protocol.wait_idle()
                    ceiling[name] = peak.probe_wasm(session, "madd", variant.threads, warmup_ms)
    return {"times": times, "load": load, "peak": ceiling, "versions": versions}


def timed(side: str, backend: str) -> str:
    """What one timed run of ``side`` holds (the peers' APIs decide part of it)."""
    if side == "kgen":
        return "kernel (inputs in memory)"
    if side == "tfjs":
        return "op (inputs in memory)" if backend == "wasm" else "input upload, op, output read-back"
    return "session.run: input copied in, op, output read back"


def _round_ratio(times: dict[str, Timing]) -> float:
    return min(t.median_ms for side, t in times.items() if side != "kgen") / times["kgen"].median_ms


def peak_fields(got: Sequence[dict], gflop: float) -> dict[str, float]:
    """kgen's share of the peak measured beside it: per round, the kernel's GFLOP/s over the peak loop's in that
    round; the median over rounds with its spread, and the peak's median. Empty where a round has no peak."""
    if not got or any(r["peak"] is None for r in got):
        return {}
    shares = protocol.Spread.of([gflop / r["times"]["kgen"].median_ms * 1e3 / r["peak"] for r in got])
    return {
        "peak_gflops": statistics.median(r["peak"] for r in got),
        "peak_share": shares.median,
        "peak_share_low": shares.low,
        "peak_share_high": shares.high,
    }


def compare(
    chosen: Mapping[Variant, dict[str, Chosen]],
    names: Sequence[str],
    peers: Sequence[str],
    rounds: int = protocol.ROUNDS,
    samples: int = protocol.SAMPLES,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    warmup_ms: int = protocol.WARMUP_MS,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Per variant (with kgen's config of each workload there), workload and side, the protocol's figures over
    ``rounds`` (at least ``protocol.ROUNDS``) fresh pages, re-measured where the rounds disagree: (rows, the
    peers' versions). The variants take turns round by round (wasm 1t, 2t, 1t, 2t, ...), so that a drift of the
    machine's speed weighs on a ratio between variants (2 threads over 1) as little as on one between sides. A
    row: workload, kind, backend, threads, side, config (kgen's), median_ms, iqr_ms, low_ms, high_ms, n, rounds,
    gflops, busy (the median busy share seen just before the side), remeasured; kgen's on wasm also the fields of
    `peak_fields`."""
    rounds = max(rounds, protocol.ROUNDS)
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    per_name: dict[tuple[Variant, str], list[dict]] = {(v, name): [] for v in chosen for name in names}
    versions: dict[str, str] = {}
    inputs = seeded_inputs(names, seed)  # the same in every round: numpy's references are computed once

    def measure(selected: Mapping[Variant, Sequence[str]], label: str) -> None:
        for r in range(rounds):
            for variant, todo in selected.items():
                got = measure_round(variant, todo, chosen[variant], peers, samples, inputs, warmup_ms)
                say(f"{variant.name}: {label} {r + 1}/{rounds} done ({len(todo)} workloads)")
                versions.update(got["versions"])
                for name in todo:
                    per_name[variant, name].append(
                        {"times": got["times"][name], "load": got["load"][name], "peak": got["peak"].get(name)}
                    )

    measure({v: names for v in chosen}, "round")

    def unsettled(variant: Variant, name: str) -> bool:
        got = per_name[variant, name]
        if len(got[0]["times"]) < 2:
            return False  # no peer: no ratio to settle
        spreads = [protocol.Spread.of([r["times"][s].median_ms for r in got]) for s in got[0]["times"]]
        return protocol.disagrees([_round_ratio(r["times"]) for r in got], spreads)

    again = {v: todo for v in chosen if (todo := [name for name in names if unsettled(v, name)])}
    if again:
        count = sum(map(len, again.values()))
        measure(again, f"re-measuring {count} whose rounds disagree, round")
    rows = []
    for (variant, name), got in per_name.items():
        workload, kind, _ = SUITE[name]
        gflop = flops(workload) / 1e9
        config = chosen[variant][name]
        for side in got[0]["times"]:
            ms = protocol.Spread.of([r["times"][side].median_ms for r in got])
            rows.append(
                {
                    "workload": name,
                    "kind": kind,
                    "backend": variant.backend,
                    "threads": variant.threads,
                    "side": side,
                    "config": config.config if side == "kgen" else None,
                    "config_source": config.source if side == "kgen" else None,
                    "median_ms": ms.median,
                    "iqr_ms": statistics.median(r["times"][side].iqr_ms for r in got),
                    "low_ms": ms.low,
                    "high_ms": ms.high,
                    "n": sum(r["times"][side].n for r in got),
                    "rounds": len(got),
                    "gflops": gflop / ms.median * 1e3,
                    "busy": statistics.median(r["load"][side] for r in got),
                    "remeasured": name in again.get(variant, ()),
                    "timed": timed(side, variant.backend),
                    **(peak_fields(got, gflop) if side == "kgen" else {}),
                }
            )
    return rows, versions


def ratio_table(rows: Sequence[dict]) -> list[dict]:
    """One entry per (workload, backend, threads) of kernel rows: each side's ms and GFLOP/s, the faster peer's,
    and ``ratio``, kgen's speed over the faster peer's (above 1: kgen is faster), with its spread over rounds
    estimated from the sides' lowest and highest rounds."""
    groups: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        if r.get("median_ms") and r.get("side") != "peak":
            groups.setdefault((r["workload"], r["backend"], r["threads"]), {})[r["side"]] = r
    table = []
    for (workload, backend, threads), sides in groups.items():
        if "kgen" not in sides:
            continue
        kgen = sides["kgen"]
        entry: dict[str, Any] = {"workload": workload, "kind": kgen["kind"], "backend": backend, "threads": threads}
        for side, r in sides.items():
            entry[f"{side}_ms"], entry[f"{side}_gflops"] = r["median_ms"], r.get("gflops")
        peers = [r for side, r in sides.items() if side != "kgen"]
        best = min(peers, key=lambda r: r["median_ms"]) if peers else None
        entry["config"] = kgen.get("config")
        entry["software"] = kgen.get("software", False)
        entry["best_peer"] = best["side"] if best else None
        entry["best_peer_gflops"] = best.get("gflops") if best else None
        entry["ratio"] = best["median_ms"] / kgen["median_ms"] if best else None
        if best and kgen.get("low_ms"):
            entry["ratio_low"] = best["low_ms"] / kgen["high_ms"]
            entry["ratio_high"] = best["high_ms"] / kgen["low_ms"]
        table.append(entry)
    return table
