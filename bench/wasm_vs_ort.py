"""kgen's tuned WebAssembly kernels vs ONNX Runtime Web's and (on 1 thread) TensorFlow.js's wasm backends, side by
side in one page per thread count.

    make peers   # once: ONNX Runtime Web and TF.js from the npm registry into bench/peers/node_modules
    .venv/bin/python -m bench.wasm_vs_ort [--trials 40] [--only conv] [--out results/bench/wasm_vs_ort.json]

1. Tune: ``kgen tune --fix '{"threads": T}'`` (TPE) per workload on the wasm backend, for T = 1 and 2, studies
   kept in ``results/bench/wasm_tune.db`` (a later run goes on with them); each study's 8 best configs are
   measured again, 3 times each (interleaved), in one fresh page, and the fastest median there is compared.
2. Compare, for 1 and then 2 threads, in ``--rounds`` fresh pages each (the median is reported): in one page,
   kgen's tuned config at that thread count for every workload (1 s warm-up, then the median of 15 samples
   >= 5 ms, kernel only: inputs are in memory); on 1 thread then TF.js's wasm backend (XNNPACK; it runs at most
   hardwareConcurrency / 2 threads, one here) on ``tf.conv2d`` / ``tf.matMul`` in its own layouts, the weight a
   tensor made once, input copied in and output read back by ``dataSync``; then ONNX Runtime set up with that
   many threads on one-op ONNX models (weights as initializers), timed by ``session.run`` (input copied in,
   output read back, as in BROWSER.md's peer table). Both peers' first outputs are checked against numpy, so
   all compute the same op; each gets the same warm-up and samples.

Prints GFLOP/s per workload, kgen's ratio to the faster peer, and geomeans over the conv layers, the matmuls and
both together.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench import protocol
from bench.finalists import fastest, study_finalists
from bench.onnx_models import one_op_model
from bench.suite import SUITE, flops, geomean, geomeans_by_kind
from kgen.atomic import write_text_atomic
from kgen.browser.measure import Harness
from kgen.browser.session import BrowserSession
from kgen.records.store import RecordStore
from kgen.scheduling.build import build
from tuner.tune import tune

PEERS = Path(__file__).resolve().parent / "peers"
RUNNER = "/peers/ort_runner.js"
TFJS = "/peers/tfjs_runner.js"
PEER_PACKAGES = ("onnxruntime-web", "@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-wasm")
PEERS_COMPARED = ("ort", "tfjs")
KINDS = ("conv", "matmul")


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.float32).tobytes()).decode()


def tuned_configs(names: list[str], threads: int, trials: int, storage: str, records: Path) -> dict[str, dict]:
    """The config of each workload to compare, tuned at ``threads`` threads: the study's best ``FINALISTS``
    re-measured ``FINAL_PASSES`` times each, interleaved, in one fresh page (1 s warm-up each), the fastest median
    there (``bench.finalists``); the comparison pages are kept out of the choice."""
    finalists = {}
    for n, name in enumerate(names, 1):
        workload = SUITE[name][0]
        print(f"[{n}/{len(names)}] tuning {name} on {threads} thread(s): {trials} trials", file=sys.stderr, flush=True)
        fixed = {"threads": threads}
        summary = tune(workload, "wasm", trials, storage, records=RecordStore(records), seed=0, fixed=fixed)
        assert summary.best_config is not None, f"{name}: no candidate passed"
        finalists[name] = study_finalists(storage, summary.study)
    configs = {}
    with BrowserSession(job_timeout_s=300) as session:
        for name in names:
            workload = SUITE[name][0]
            configs[name], best_ms = fastest(session, workload, "wasm", finalists[name], warmup_ms=protocol.WARMUP_MS)
            gflops = flops(workload) / best_ms / 1e6
            print(f"  {name}: {gflops:.1f} GFLOP/s {json.dumps(configs[name])}", file=sys.stderr, flush=True)
    return configs


def _tensor(a: np.ndarray) -> dict:
    return {"dims": list(a.shape), "b64": _b64(a)}


def _tfjs_operands(workload, arrays: list[np.ndarray]) -> tuple[dict, dict, dict]:
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


def _check_peer(name: str, peer: str, got: list[float], want: np.ndarray) -> None:
    first = want.ravel()[: len(got)]
    assert np.allclose(got, first, rtol=1e-3, atol=1e-3), f"{name}: {peer} computed something else"


def _kgen_timer(session, limits, configs: dict[str, dict], inputs):
    def time_kgen(name: str) -> float:
        arrays, want = inputs[name]
        workload = SUITE[name][0]
        harness = Harness(
            session, arrays, want, "wasm", protocol.SAMPLES, protocol.MIN_SAMPLE_MS, 300, protocol.WARMUP_MS
        )
        m = harness.measure(build(workload, "wasm", configs[name], limits)[0])
        assert m.ok, f"{name}: {m.status} {m.reason}"
        return m.median_ms

    return time_kgen


def measure_round(names: list[str], configs: dict[str, dict], threads: int, seed: int) -> dict[str, Any]:
    """One fresh page, the sides interleaved per workload: kgen's kernel, then (on 1 thread) TensorFlow.js's
    wasm backend (the op alone, its input a tensor already, as kgen's kernel is timed with its inputs in memory),
    then ONNX Runtime's (``session.run``: its input copied in and its output out, which its API cannot avoid),
    each after the machine has gone idle (ORT's thread pool spins on after a run) and with the same warm-up and
    samples ({"times": {name: {side: ms}}, "load": {name: {side: busy share
    just before}}, "versions"}). TF.js runs at most hardwareConcurrency / 2 threads (one here, BROWSER.md), so it
    is compared on 1 thread only."""
    for package in PEER_PACKAGES:
        if not (PEERS / "node_modules" / package).is_dir():
            raise SystemExit(f"{package} is not installed: run `make peers`")
    times: dict[str, dict] = {name: {} for name in names}
    load: dict[str, dict] = {name: {} for name in names}
    versions = {}
    timing = {"warmupMs": protocol.WARMUP_MS, "samples": protocol.SAMPLES, "minSampleMs": protocol.MIN_SAMPLE_MS}
    with BrowserSession(job_timeout_s=300, mounts={"/peers/": PEERS}) as session:
        inputs = {}
        for name in names:
            workload = SUITE[name][0]
            arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(seed))
            inputs[name] = (arrays, workload.opdef.reference(arrays, workload.attr_dict))
        if threads == 1:
            tfjs = session.evaluate(f"async (t) => (await import('{TFJS}')).setup(t)", threads)
            assert tfjs["backend"] == "wasm" and tfjs["threads"] == 1, tfjs
            versions["tfjs"] = tfjs["version"]
        ort = session.evaluate(f"async (t) => (await import('{RUNNER}')).setup(t)", threads)
        assert ort["crossOriginIsolated"], "the page is not cross-origin isolated"
        versions["ort"] = ort["version"]
        time_kgen = _kgen_timer(session, session.limits(), configs, inputs)

        def time_tfjs(name: str) -> float:
            arrays, want = inputs[name]
            op, x, w = _tfjs_operands(SUITE[name][0], arrays)
            script = f"async ([o, x, w, t]) => (await import('{TFJS}')).time(o, x, w, t)"
            peer = session.evaluate(script, [op, x, w, {**timing, "opOnly": True}])  # as kgen: inputs in memory
            _check_peer(name, "TF.js", peer["output"], want if op["kind"] == "matmul" else want.transpose(0, 2, 3, 1))
            return peer["medianMs"]

        def time_ort(name: str) -> float:
            arrays, want = inputs[name]
            model = base64.b64encode(one_op_model(SUITE[name][0], arrays)).decode()
            feed = [{"name": "x", **_tensor(arrays[0])}]
            script = f"async ([m, f, t]) => (await import('{RUNNER}')).time(m, f, t)"
            peer = session.evaluate(script, [model, feed, timing])
            _check_peer(name, "ORT", peer["output"], want)
            return peer["medianMs"]

        sides = {"kgen": time_kgen, **({"tfjs": time_tfjs} if threads == 1 else {}), "ort": time_ort}
        for name in names:
            for side, timer in sides.items():
                load[name][side] = protocol.wait_idle()
                times[name][side] = timer(name)
    return {"times": times, "load": load, "versions": versions}


def _round_ratio(times: dict[str, float]) -> float:
    return min(times[p] for p in PEERS_COMPARED if p in times) / times["kgen"]


def compare(names: list[str], configs: dict[str, dict], threads: int, rounds: int, seed: int) -> list[dict]:
    """Per workload, the median over ``rounds`` fresh pages (at least the protocol's) of each side's median with
    the spread over rounds; a workload whose rounds disagree (``protocol.disagrees``) is measured again for as
    many rounds, and all its rounds count. ``best_peer`` is the faster peer."""
    rounds = max(rounds, protocol.ROUNDS)
    results = [measure_round(names, configs, threads, seed) for _ in range(rounds)]
    versions = ", ".join(f"{k} {v}" for k, v in results[0]["versions"].items())
    per_name = {name: [{"times": r["times"][name], "load": r["load"][name]} for r in results] for name in names}

    def unsettled(name: str) -> bool:
        sides = per_name[name][0]["times"]
        spreads = [protocol.Spread.of([r["times"][side] for r in per_name[name]]) for side in sides]
        return protocol.disagrees([_round_ratio(r["times"]) for r in per_name[name]], spreads)

    again = [name for name in names if unsettled(name)]
    if again:
        print(f"  re-measuring {', '.join(again)}: their rounds disagree", file=sys.stderr, flush=True)
        for _ in range(rounds):
            r = measure_round(again, configs, threads, seed)
            for name in again:
                per_name[name].append({"times": r["times"][name], "load": r["load"][name]})
    print(f"{threads} thread(s), {versions}, {rounds} rounds (+{rounds} for {len(again)} workload(s))")
    rows = []
    for name in names:
        workload, kind, _ = SUITE[name]
        gflop = flops(workload) / 1e9
        got = per_name[name]
        row = {"workload": name, "kind": kind, "threads": threads, "config": configs[name], "rounds": len(got)}
        for side in got[0]["times"]:
            ms = protocol.Spread.of([r["times"][side] for r in got])
            row[f"{side}_ms"], row[f"{side}_gflops"] = ms.median, gflop / ms.median * 1e3
            row[f"{side}_ms_spread"] = ms.to_json()
        row["rounds_ms"] = [r["times"] for r in got]
        row["busy_before"] = protocol.Spread.of([v for r in got for v in r["load"].values()]).to_json()
        row["best_peer_gflops"] = max(row[f"{p}_gflops"] for p in PEERS_COMPARED if f"{p}_gflops" in row)
        row["ratio"] = row["kgen_gflops"] / row["ort_gflops"]
        row["ratio_best_peer"] = row["kgen_gflops"] / row["best_peer_gflops"]
        row["ratio_best_peer_spread"] = protocol.Spread.of([_round_ratio(r["times"]) for r in got]).to_json()
        row["remeasured"] = name in again
        rows.append(row)
        peers = "  ".join(f"{p} {row[f'{p}_gflops']:6.1f}" for p in PEERS_COMPARED if f"{p}_gflops" in row)
        spread = row["ratio_best_peer_spread"]
        print(
            f"  {name:<26} kgen {row['kgen_gflops']:6.1f}  {peers} GFLOP/s  {row['ratio_best_peer']:.2f}x best peer"
            f" (rounds {spread['low']:.2f}-{spread['high']:.2f})"
        )
    return rows


def records_configs(names: list[str], threads: int, records: Path) -> dict[str, dict]:
    """The fastest recorded config of each workload at ``threads`` threads (``--from-records``: no tuning)."""
    best = [r for r in RecordStore(records).best({"threads": threads}) if r.backend == "wasm"]
    configs = {}
    for name in names:
        mine = [r for r in best if r.key == SUITE[name][0].key]
        if not mine:
            raise SystemExit(f"{records}: no wasm record of {name} at {threads} thread(s): tune without --from-records")
        configs[name] = min(mine, key=lambda r: r.median_ms).config
    return configs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40, help="tuning trials per workload (0: reuse the studies)")
    parser.add_argument("--only", help="run only workloads whose name contains this")
    parser.add_argument("--rounds", type=int, default=5, help="fresh pages per thread count (median taken; >= 3)")
    parser.add_argument(
        "--from-records", action="store_true", help="compare the records' fastest configs instead of tuning"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default="sqlite:///results/bench/wasm_tune.db")
    parser.add_argument("--records", type=Path, default=Path("results/bench/wasm_records.jsonl"))
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    names = [n for n, (_, kind, _) in SUITE.items() if kind in KINDS and (not args.only or args.only in n)]
    Path("results/bench").mkdir(parents=True, exist_ok=True)
    rows = []
    for threads in (1, 2):
        if args.from_records:
            configs = records_configs(names, threads, args.records)
        else:
            configs = tuned_configs(names, threads, args.trials, args.storage, args.records)
        rows += compare(names, configs, threads, args.rounds, args.seed)
    summary = {}
    for threads in (1, 2):
        sel = [r for r in rows if r["threads"] == threads]
        keys = tuple(k for k in ("kgen_gflops", "ort_gflops", "tfjs_gflops", "best_peer_gflops") if k in sel[0])
        by_kind = geomeans_by_kind(sel, keys)
        by_kind["conv+matmul"] = {f"{k}_geomean": geomean(r[k] for r in sel) for k in keys}
        summary[f"{threads}t"] = by_kind
        for kind, s in by_kind.items():
            peers = "  ".join(f"{k.removesuffix('_gflops_geomean')} {v:.1f}" for k, v in s.items())
            ratio = s["kgen_gflops_geomean"] / s["best_peer_gflops_geomean"]
            print(f"geomean {threads}t {kind:<11} {peers} GFLOP/s  kgen {ratio:.2f}x best peer")
    if args.out:
        write_text_atomic(args.out, json.dumps({"rows": rows, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
