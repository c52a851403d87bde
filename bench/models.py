"""Whole models end to end in one browser: kgen's runtime against ONNX Runtime Web on the same ONNX.

    make peers   # once: onnxruntime-web from the npm registry into bench/peers/node_modules
    .venv/bin/python -m bench.models [--records results/records.jsonl] [--rounds 3] [--webgpu] \\
        [--out results/bench/models.json]

The models are kgen.graph.zoo's, seeded (ResNet-50 v1 with BN unfolded, the MobileNet-v2-like net, the DCGAN
generator), batch 1. kgen converts each for wasm on 1 and 2 threads (and WebGPU with ``--webgpu``) with the
records given; ONNX Runtime Web runs the same .onnx on its wasm EP with 1 and 2 threads (and WebGPU).

Protocol, the same for every side: a fresh page per (round, model, side), sides interleaved within a round;
the machine is let go idle (bench.protocol.wait_idle), then cold start (from fetching the model's files from the
local server to the first output: kgen's ``load()`` and first run; ORT's fetch of the .onnx, session creation and
first run), then a warm-up of >= 1 s and 3
runs, then ``--samples`` runs timed one by one (a run: input set, model, outputs read back); the figure is the
median, and the medians' spread over the rounds is reported. Every side's output is checked against
onnxruntime (CPU) before its figure counts. The CPU busy share seen before each side is recorded: a
figure taken beside other work is not a figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench import protocol
from kgen.atomic import write_text_atomic
from kgen.browser.session import BrowserSession
from kgen.checking import compare_model
from kgen.descriptor.assemble import Options
from kgen.descriptor.convert import convert
from kgen.graph import zoo
from kgen.records.store import RecordStore

PEERS = Path(__file__).resolve().parent / "peers"
MODELS = ("resnet50", "mobilenet_v2", "dcgan")

KGEN = """async ([dir, backend, feeds, options]) => {
  const kgen = await import('/kgen.js');
  const { timeRuns } = await import('/peers/timing.js');
  const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, Float32Array.from(v.values)]));
  const t0 = performance.now();
  const runner = await kgen.load(dir, {backendOrder: backend});
  await runner.run(inputs);
  const coldMs = performance.now() - t0;
  const timed = await timeRuns(() => runner.run(inputs), options);
  const output = Array.from(Object.values(timed.output)[0]);
  const memory = runner.descriptor.program.memory_bytes ?? null;
  runner.destroy();
  return {coldMs, medianMs: timed.medianMs, sampleMs: timed.sampleMs, output, backend: runner.backendName, memory};
}"""

ORT = """async ([url, ep, threads, feeds, options]) => {
  const peer = await import('/peers/ort_model.js');
  const info = await peer.setup(threads, ep);
  return {...(await peer.timeModel(url, feeds, ep, options)), version: info.version};
}"""


def sides(webgpu: bool) -> list[tuple[str, str, str, int]]:
    """(name, runtime, backend, threads)."""
    out = [("kgen wasm 1t", "kgen", "wasm", 1), ("ort wasm 1t", "ort", "wasm", 1)]
    out += [("kgen wasm 2t", "kgen", "wasm", 2), ("ort wasm 2t", "ort", "wasm", 2)]
    if webgpu:
        out += [("kgen webgpu", "kgen", "webgpu", 1), ("ort webgpu", "ort", "webgpu", 1)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="results/records.jsonl", help="tuning records kgen converts with")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10, help="timed runs per side and round")
    parser.add_argument("--webgpu", action="store_true", help="also WebGPU (SwiftShader here: slow, software)")
    parser.add_argument("--out", default="results/bench/models.json")
    args = parser.parse_args(argv)
    report = run(args.models.split(","), args.rounds, args.samples, args.webgpu, args.records)
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print_table(report)
    return 0


def run(models: list[str], rounds: int, samples: int, webgpu: bool, records: str) -> dict:
    """Convert and measure ``models`` (the protocol above); the report ``summarize`` makes, with the fingerprint,
    the records used, the rounds, samples and load averages."""
    if not (PEERS / "node_modules" / "onnxruntime-web").is_dir():
        raise SystemExit("bench.models: run `make peers` first (onnxruntime-web from the npm registry)")
    store = RecordStore(records) if Path(records).is_file() else None
    work = Path(tempfile.mkdtemp(prefix="kgen-bench-models-"))
    feeds, want = {}, {}
    for name in models:
        model = zoo.MODELS[name]()
        zoo.save(model, work / f"{name}.onnx")
        feeds[name] = zoo.seeded_inputs(model, seed=7)
        (want[name],) = zoo.onnxruntime_outputs(model, feeds[name])
        for threads in (1, 2):
            backends = ["wasm"] + (["webgpu"] if webgpu and threads == 1 else [])
            convert(
                work / f"{name}.onnx", work / f"{name}_{threads}t", backends, options=Options(store, threads=threads)
            )
        print(f"bench.models: converted {name}", file=sys.stderr)
    options = {"samples": samples, "minSampleMs": 0, "warmupMs": 1000}
    rows: dict[tuple[str, str], list[dict]] = {}
    loads = []
    with BrowserSession(job_timeout_s=900, mounts={"/peers/": PEERS, "/bench/": work}) as session:
        fingerprint = session.fingerprint()
        for r in range(rounds):
            for name in models:
                plain = {k: {"dims": list(v.shape), "values": v.ravel().tolist()} for k, v in feeds[name].items()}
                for side, runtime, backend, threads in sides(webgpu):
                    session.restart()  # a fresh page (and browser): no state carried from the side before
                    loads.append(protocol.wait_idle())
                    if runtime == "kgen":
                        folder = f"/bench/{name}_{threads}t"
                        result = session.evaluate(KGEN, [folder, backend, plain, options])
                    else:
                        result = session.evaluate(ORT, [f"/bench/{name}.onnx", backend, threads, plain, options])
                    got = np.array(result.pop("output"), np.float32).reshape(want[name].shape)
                    check = compare_model(got, want[name], backend)
                    result["ok"] = check.ok
                    rows.setdefault((name, side), []).append(result)
                    mark = "" if check.ok else f"  WRONG: {check}"
                    figures = f"{result['medianMs']:9.2f} ms  cold {result['coldMs']:8.1f} ms"
                    print(f"round {r + 1} {name:<13} {side:<13} {figures}{mark}")
    report = summarize(rows, models, sides(webgpu))
    report.update(
        fingerprint=fingerprint,
        software_webgpu=bool(fingerprint.get("software")),
        records=records if store else None,
        rounds=rounds,
        samples=samples,
        busy_before=[round(x, 3) for x in loads],
        protocol=__doc__.split("Protocol, ")[1].strip(),
    )
    return report


def summarize(rows, models, side_list) -> dict:
    out: dict = {"models": {}}
    for name in models:
        entry = {}
        for side, *_ in side_list:
            results = rows[(name, side)]
            medians = [x["medianMs"] for x in results if x["ok"]]
            colds = [x["coldMs"] for x in results if x["ok"]]
            entry[side] = {
                "median_ms": statistics.median(medians) if medians else None,
                "spread_ms": [min(medians), max(medians)] if medians else None,
                "cold_ms": statistics.median(colds) if colds else None,
                "all_ok": all(x["ok"] for x in results),
                "memory_bytes": results[0].get("memory"),
                "version": results[0].get("version"),
            }
        for kind in ("wasm 1t", "wasm 2t", "webgpu"):
            k, p = entry.get(f"kgen {kind}"), entry.get(f"ort {kind}")
            if k and p and k["median_ms"] and p["median_ms"]:
                entry[f"ratio {kind}"] = k["median_ms"] / p["median_ms"]
        out["models"][name] = entry
    return out


def print_table(report: dict) -> None:
    print("\nmodel          side            median ms  (spread over rounds)   cold ms")
    for name, entry in report["models"].items():
        for side, v in entry.items():
            if side.startswith("ratio"):
                print(f"{name:<14} {side:<15} kgen / ORT = {v:.2f}x")
            elif v["median_ms"] is not None:
                lo, hi = v["spread_ms"]
                print(f"{name:<14} {side:<15} {v['median_ms']:9.2f}  ({lo:.2f} .. {hi:.2f})  {v['cold_ms']:9.1f}")
            else:
                print(f"{name:<14} {side:<15} wrong output")


if __name__ == "__main__":
    sys.exit(main())
