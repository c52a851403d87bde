"""Whole models end to end in one browser: kgen's runtime against ONNX Runtime Web on the same ONNX and against
TensorFlow.js on the same network with the same weights, built from `tf` ops (bench/tfjs_network.py).

    make peers   # once: onnxruntime-web and TF.js from the npm registry into bench/peers/node_modules
    .venv/bin/python -m bench.models [--records results/records.jsonl] [--rounds 3] [--webgl] [--webgpu] \\
        [--peers ort,tfjs] [--threads 1,2] [--out results/bench/models.json]

The models are kgen.graph.zoo's, seeded (ResNet-50 v1 with BN unfolded, the MobileNet-v2-like net, the DCGAN
generator), batch 1. kgen converts each for wasm on 1 and 2 threads (--threads; and WebGL, WebGPU when asked) with the
records given; ONNX Runtime Web runs the same .onnx on its wasm EP with 1 and 2 threads (and its WebGL and WebGPU
EPs); TF.js runs the network on its wasm backend (1 thread: it runs at most hardwareConcurrency / 2), WebGL and
WebGPU backends. A peer that cannot run a network (ORT's WebGL EP has no Erf, LayerNormalization or HardSigmoid,
for one) is left out of that cell, and the report says why.

Protocol, the same for every side: a fresh page per (round, model, side), sides interleaved within a round;
the machine is let go idle (bench.protocol.wait_idle), then cold start (from fetching the model's files from the
local server to the first output: kgen's ``load()`` and first run; ORT's fetch of the .onnx, session creation and
first run; TF.js's backend made ready (its wasm module compiled, its GL context or GPU device made: kgen's load()
and ORT's session creation include theirs) beside the fetch of the network's description and weights, the weights
made tensors and first run; each side's library code is loaded before),
then a warm-up of at least ``warmup_ms`` (1 s unless ``--warmup-ms`` says) and 3 runs, then ``--samples`` runs
timed one by one (a run: input set, model, outputs read back); the figure is the median, and the medians' spread
over the rounds is reported. Every side's output is checked against onnxruntime (CPU) before its figure counts. The
CPU busy share seen before each side is recorded: a figure taken beside other work is not a figure. Peak memory is
counted the same way for every side, by hooks installed before the library loads (bench/peers/memory.js): the
WebAssembly memories' bytes, and the peak bytes of live WebGPU buffers and WebGL textures. On wasm, kgen's page
then times the relaxed-SIMD peak loop on as many threads (bench.peak): kgen's share of the physical limit is the
model's FLOPs (its nodes' in the descriptor) per second over that peak, per round, from two figures taken seconds
apart in one page.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench import peak, protocol, tfjs_network
from bench.store import variant_name
from kgen.atomic import write_text_atomic
from kgen.browser.session import BrowserSession
from kgen.checking import compare_model
from kgen.descriptor.assemble import Options
from kgen.descriptor.convert import convert
from kgen.errors import KgenError
from kgen.graph import zoo
from kgen.records.store import RecordStore

PEERS = Path(__file__).resolve().parent / "peers"
MODELS = ("resnet50", "mobilenet_v2", "dcgan")
#: the transformers suite: a MiniLM-L6-like sentence encoder (int64 token ids and mask at sequence 128), a
#: DeiT-small-like ViT and a MobileNet-v3-large-like net, at 224², each built by TF.js too (bench/tfjs_network.py)
TRANSFORMERS = ("minilm", "deit_small", "mobilenet_v3_large")

KGEN = """async ([dir, backend, threads, feeds, options]) => {
  const memory = await import('/peers/memory.js');
  memory.track();
  const kgen = await import('/kgen.js');
  const { timeRuns } = await import('/peers/timing.js');
  const typed = (v) => (v.dtype === 'float32' ? Float32Array.from(v.values) : Int32Array.from(v.values));
  const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, typed(v)]));
  const t0 = performance.now();
  // the row's thread count, not the page's choice between it and one
  const runner = await kgen.load(dir, {backendOrder: backend, ...(backend === 'wasm' ? {threads} : {})});
  await runner.run(inputs);
  const coldMs = performance.now() - t0;
  const timed = await timeRuns(() => runner.run(inputs), options);
  const output = Array.from(Object.values(timed.output)[0]);
  const peak = memory.report();
  runner.destroy();
  return {coldMs, medianMs: timed.medianMs, sampleMs: timed.sampleMs, output, backend: runner.backendName, peak};
}"""

ORT = """async ([url, ep, threads, feeds, options]) => {
  const memory = await import('/peers/memory.js');
  memory.track();
  const peer = await import('/peers/ort_model.js');
  const info = await peer.setup(threads, ep);
  const result = await peer.timeModel(url, feeds, ep, options);
  return {...result, version: info.version, peak: memory.report()};
}"""


TFJS = """async ([url, backend, values, options]) => {
  const memory = await import('/peers/memory.js');
  memory.track();
  const runner = await import('/peers/tfjs_runner.js');
  await runner.loadLibrary(backend);
  const model = await import('/peers/tfjs_model.js');
  const result = await model.timeNetwork(url, values, options, () => runner.initBackend(1, backend));
  return {...result, peak: memory.report()};
}"""

BACKENDS = ("wasm", "webgl", "webgpu")
#: the peers that run a backend of each name; TF.js's wasm backend runs at most hardwareConcurrency / 2 threads
PEERS_OF = {"wasm": ("ort", "tfjs"), "webgl": ("ort", "tfjs"), "webgpu": ("ort", "tfjs")}


def sides(
    backends: Sequence[str], peers: Sequence[str] = ("ort", "tfjs"), threads: Sequence[int] = (1, 2)
) -> list[tuple[str, str, str, int]]:
    """(name, runtime, backend, threads): wasm on each count of ``threads`` (TF.js on 1 only), then the GPU
    backends asked for."""
    out = []
    for backend in (b for b in BACKENDS if b in backends):
        for count in threads if backend == "wasm" else (1,):
            variant = variant_name(backend, count)
            out.append((f"kgen {variant}", "kgen", backend, count))
            for peer in PEERS_OF[backend]:
                if peer in peers and not (peer == "tfjs" and count > 1):
                    out.append((f"{peer} {variant}", peer, backend, count))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="results/records.jsonl", help="tuning records kgen converts with")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10, help="timed runs per side and round")
    parser.add_argument("--webgpu", action="store_true", help="also WebGPU (SwiftShader here: slow, software)")
    parser.add_argument("--webgl", action="store_true", help="also WebGL (SwiftShader here: slow, software)")
    parser.add_argument("--peers", default="ort,tfjs", help="comma-separated: ort, tfjs")
    parser.add_argument("--threads", default="1,2", help="wasm: the thread counts compared (default 1,2)")
    parser.add_argument("--out", default="results/bench/models.json")
    args = parser.parse_args(argv)
    backends = ["wasm"] + ["webgl"] * args.webgl + ["webgpu"] * args.webgpu
    threads = protocol.thread_counts(args.threads, "bench.models")
    report = run(
        args.models.split(","),
        args.rounds,
        args.samples,
        backends,
        args.records,
        args.peers.split(","),
        threads=threads,
    )
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print_table(report)
    return 0


def run(
    models: list[str],
    rounds: int,
    samples: int,
    backends: Sequence[str],
    records: str,
    peers: Sequence[str] = ("ort", "tfjs"),
    warmup_ms: int = protocol.WARMUP_MS,
    threads: Sequence[int] = (1, 2),
) -> dict:
    """Convert and measure ``models`` on ``backends`` against ``peers`` (the protocol above), wasm on each count
    of ``threads``; the report ``summarize`` makes, with the fingerprint, the records used, the rounds, samples
    and busy shares."""
    side_list = sides(backends, peers, threads)
    for package in ("onnxruntime-web", "@tensorflow/tfjs-core", *(f"@tensorflow/tfjs-backend-{b}" for b in backends)):
        if not (PEERS / "node_modules" / package).is_dir():
            raise SystemExit(f"bench.models: {package} is missing: run `make peers` (from the npm registry)")
    store = RecordStore(records) if Path(records).is_file() else None
    with tempfile.TemporaryDirectory(prefix="kgen-bench-models-") as tmp:  # removed however the run ends
        work = Path(tmp)
        feeds, want, nets, flops = {}, {}, {}, {}
        untranslated: dict[str, str] = {}  # a model that TF.js cannot be given: why
        for name in models:
            model = zoo.MODELS[name]()
            zoo.save(model, work / f"{name}.onnx")
            feeds[name] = zoo.seeded_inputs(model, seed=7)
            (want[name],) = zoo.onnxruntime_outputs(model, feeds[name])
            if "tfjs" in peers:
                try:
                    nets[name], blob = tfjs_network.describe(model)
                    (work / f"{name}.tfjs.json").write_text(json.dumps(nets[name]))
                    (work / f"{name}.tfjs.bin").write_bytes(blob)
                except KgenError as err:
                    untranslated[name] = f"no tf translation: {err}"
            for count in sorted({*threads, 1}):  # the other backends' programs are in the 1-thread folder
                converted = (["wasm"] if count in threads else []) + (
                    [b for b in backends if b != "wasm"] if count == 1 else []
                )
                if converted:
                    convert(
                        work / f"{name}.onnx",
                        work / f"{name}_{count}t",
                        converted,
                        options=Options(store, threads=count),
                    )
            program = json.loads((work / f"{name}_{min(threads)}t" / "wasm.json").read_text())
            flops[name] = sum(node["flops"] or 0 for node in program["nodes"])
            print(f"bench.models: converted {name}", file=sys.stderr)
        options = {"samples": samples, "minSampleMs": 0, "warmupMs": warmup_ms}
        rows: dict[tuple[str, str], list[dict]] = {}
        refused: dict[tuple[str, str], str] = {}  # a peer that cannot run a network: its reason
        loads = []
        with BrowserSession(job_timeout_s=900, mounts={"/peers/": PEERS, "/bench/": work}) as session:
            fingerprint = session.fingerprint()
            for r in range(rounds):
                for name in models:
                    plain = {k: _plain(v) for k, v in feeds[name].items()}
                    for side, runtime, backend, count in side_list:
                        if (runtime == "tfjs" and name not in nets) or (name, side) in refused:
                            continue
                        session.restart()  # a fresh page (and browser): no state carried from the side before
                        loads.append(protocol.wait_idle())
                        if runtime == "kgen":
                            folder = f"/bench/{name}_{count}t"
                            result = session.evaluate(KGEN, [folder, backend, count, plain, options])
                            if backend == "wasm":  # the ceiling, in the same page right after
                                result["ceilingGflops"] = peak.probe_wasm(session, "madd", count, warmup_ms)
                        elif runtime == "ort":
                            result = session.evaluate(ORT, [f"/bench/{name}.onnx", backend, count, plain, options])
                        else:
                            values = tfjs_network.tfjs_inputs(nets[name], feeds[name])
                            result = session.evaluate(TFJS, [f"/bench/{name}.tfjs", backend, values, options])
                            result["output"] = tfjs_network.onnx_output(nets[name], result["output"]).ravel().tolist()
                        if "error" in result:
                            refused[name, side] = result["error"]
                            print(f"round {r + 1} {name:<13} {side:<13} cannot run it: {result['error']}")
                            continue
                        got = np.array(result.pop("output"), np.float32).reshape(want[name].shape)
                        check = compare_model(got, want[name], backend)
                        result["ok"] = check.ok
                        rows.setdefault((name, side), []).append(result)
                        mark = "" if check.ok else f"  WRONG: {check}"
                        figures = f"{result['medianMs']:9.2f} ms  cold {result['coldMs']:8.1f} ms"
                        print(f"round {r + 1} {name:<13} {side:<13} {figures}{mark}")
        report = summarize(rows, models, side_list, flops)
        tfjs_sides = [side for side, runtime, *_ in side_list if runtime == "tfjs"]
        refused |= {(name, side): why for name, why in untranslated.items() for side in tfjs_sides}
        for (name, side), reason in refused.items():
            report["models"][name].setdefault("refused", {})[side] = reason
        report.update(
            fingerprint=fingerprint,
            software_gpu=bool(fingerprint.get("software")),
            records=records if store else None,
            rounds=rounds,
            samples=samples,
            busy_before=[round(x, 3) for x in loads],
            protocol=__doc__.split("Protocol, ")[1].strip(),
        )
        return report


def _plain(array: np.ndarray) -> dict:
    """An input for the pages: its dims, values and dtype (int64 token ids go as integers)."""
    dtype = "float32" if array.dtype == np.float32 else "int64"
    return {"dims": list(array.shape), "values": array.ravel().tolist(), "dtype": dtype}


def _peak_memory(results: list[dict]) -> dict[str, int]:
    """The largest of each kind of peak memory over a side's rounds: wasm memory bytes, live WebGPU buffer bytes,
    live WebGL texture bytes (bench/peers/memory.js; the JS heap is not counted)."""
    keys = ("wasmBytes", "gpuBufferPeakBytes", "texturePeakBytes")
    return {k: max(r["peak"][k] for r in results) for k in keys}


def _share_of_peak(results: list[dict], flops: int) -> dict:
    """The model's GFLOP/s and, where the side timed the peak loop beside it, its share of that peak: per round, then
    the median and spread over rounds."""
    ok = [r for r in results if r["ok"]]
    if not ok or not flops:
        return {}
    gflops = statistics.median(flops / r["medianMs"] / 1e6 for r in ok)
    ceilings = [r for r in ok if r.get("ceilingGflops")]
    if not ceilings:
        return {"gflops": gflops}
    shares = protocol.Spread.of([flops / r["medianMs"] / 1e6 / r["ceilingGflops"] for r in ceilings])
    return {
        "gflops": gflops,
        "peak_gflops": statistics.median(r["ceilingGflops"] for r in ceilings),
        "peak_share": shares.median,
        "peak_share_low": shares.low,
        "peak_share_high": shares.high,
    }


def summarize(rows, models, side_list, flops: dict[str, int]) -> dict:
    out: dict = {"models": {}}
    for name in models:
        entry = {}
        for side, *_ in side_list:
            if (name, side) not in rows:  # a peer that cannot build this network
                continue
            results = rows[(name, side)]
            medians = [x["medianMs"] for x in results if x["ok"]]
            colds = [x["coldMs"] for x in results if x["ok"]]
            entry[side] = {
                "median_ms": statistics.median(medians) if medians else None,
                "spread_ms": [min(medians), max(medians)] if medians else None,
                "cold_ms": statistics.median(colds) if colds else None,
                "all_ok": all(x["ok"] for x in results),
                "peak_memory": _peak_memory(results),
                "version": results[0].get("version"),
                **_share_of_peak(results, flops[name]),
            }
        ratios = {}
        for variant in dict.fromkeys(side.split(" ", 1)[1] for side, *_ in side_list):
            kgen = entry.get(f"kgen {variant}")
            peers = {
                p: entry[f"{p} {variant}"] for p in ("ort", "tfjs") if entry.get(f"{p} {variant}", {}).get("median_ms")
            }
            if kgen and kgen["median_ms"] and peers:
                best = min(peers, key=lambda p: peers[p]["median_ms"])
                ratios[variant] = {"best_peer": best, "latency_ratio": kgen["median_ms"] / peers[best]["median_ms"]}
        out["models"][name] = {"sides": entry, "ratios": ratios}
    return out


def print_table(report: dict) -> None:
    print("\nmodel          side            median ms  (spread over rounds)   cold ms   peak MiB (wasm, GPU, textures)")
    for name, entry in report["models"].items():
        for side, v in entry["sides"].items():
            if v["median_ms"] is None:
                print(f"{name:<14} {side:<15} wrong output")
                continue
            lo, hi = v["spread_ms"]
            peak = ", ".join(f"{b / 2**20:.1f}" for b in v["peak_memory"].values())
            share = f"  {v['peak_share']:.0%} of the peak beside it" if v.get("peak_share") else ""
            figures = f"{v['median_ms']:9.2f}  ({lo:.2f} .. {hi:.2f})  {v['cold_ms']:9.1f}  {peak}"
            print(f"{name:<14} {side:<15} {figures}{share}")
        for side, reason in entry.get("refused", {}).items():
            print(f"{name:<14} {side:<15} cannot run it: {reason}")
        for variant, r in entry["ratios"].items():
            print(f"{name:<14} {variant:<15} kgen / {r['best_peer']} (faster peer) = {r['latency_ratio']:.2f}x latency")


if __name__ == "__main__":
    sys.exit(main())
