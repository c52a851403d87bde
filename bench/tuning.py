"""In-page tuning from foreign records: how close a page gets, tuning on this device, to the speed of the same
model converted with this device's own records, and how long it takes.

    python -m bench.tuning [--model mobilenet_v2 --model resnet50] [--backend wasm --backend webgpu]
        [--candidates 6] [--budget-ms 10000] [--rounds 5] [--threads 1] [--out results/tuning.json]

Each zoo model is converted twice: with this machine's records (``results/records.jsonl``), and with another
device class's only, with ``--candidates K``: on WebGPU the H100's best configs of the peer suite
(``results/bench/webgpu_native_h100.json``, measured through wgpu-py), on wasm none at all (the template defaults
and seeds). In one page the second is loaded with ``tune: {budgetMs}``, run once and tuned (the progress after
each kernel is kept, and the long tasks a PerformanceObserver saw once it started). Then three runners are timed
side by side in interleaved rounds: own records, foreign untuned (``tune: "off"``) and foreign tuned (the choices
the page kept). Wasm runs on ``--threads`` threads (default 1). WebGPU runs on SwiftShader here: software
figures. Run it on a quiet machine."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.store import code_version
from bench.suite import SUITE
from kgen.atomic import write_text_atomic
from kgen.browser.session import BrowserSession
from kgen.descriptor.assemble import Options
from kgen.descriptor.convert import convert
from kgen.graph import zoo
from kgen.records.store import Record, RecordStore, device_class, host_cpu
from kgen.scheduling.lower import main_stage

H100 = Path("results/bench/webgpu_native_h100.json")

PAGE = """async ([own, foreign, backend, feeds, budgetMs, rounds, runs, threads]) => {
  const kgen = await import('/kgen.js');
  const typed = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, Float32Array.from(v)]));
  const timeline = [];
  const longTasks = [];
  const seen = (list) => list.getEntries().forEach((e) => longTasks.push([e.startTime, e.duration]));
  const observer = new PerformanceObserver(seen);
  const options = (tune) => ({backendOrder: backend, threads, tune});
  const tuningCallback = (p) => timeline.push([p.spentMs, p.speedup]);
  const tuning = await kgen.load(foreign, {...options({budgetMs}), tuningCallback});
  await tuning.run(typed);
  observer.observe({type: 'longtask'});
  const progress = await tuning.tune();
  observer.disconnect();
  const during = longTasks.filter(([start]) => start >= progress.startedAt).map(([, ms]) => ms);
  tuning.destroy();
  const sides = {own: await kgen.load(own, options('off')), start: await kgen.load(foreign, options('off')),
                 tuned: await kgen.load(foreign, options('cached'))};
  const ms = Object.fromEntries(Object.keys(sides).map((k) => [k, []]));
  for (const r of Object.values(sides)) for (let k = 0; k < 3; k++) await r.run(typed);
  for (let round = 0; round < rounds; round++) {
    for (const [name, r] of Object.entries(sides)) {
      const times = [];
      for (let k = 0; k < runs; k++) {
        const t0 = performance.now();
        await r.run(typed);
        times.push(performance.now() - t0);
      }
      ms[name].push(times.sort((a, b) => a - b)[Math.floor(times.length / 2)]);
    }
  }
  const fromStart = sides.tuned.tuning.fromStart;
  Object.values(sides).forEach((r) => r.destroy());
  return {progress, timeline, longTasks: during, ms, fromStart};
}"""


def h100_records(path: Path) -> list[Record]:
    """The H100's best config of each peer-suite workload (wgpu-py, outside the browser) as WebGPU records of its
    device class."""
    data = json.loads(path.read_text())
    fingerprint = {"webgpu": data["adapter"]}
    out = []
    for row in data["rows"]:
        workload = SUITE[row["workload"]][0]
        out.append(
            Record(
                workload=json.loads(workload.to_json()),
                key=workload.key,
                backend="webgpu",
                device_class=device_class(fingerprint, "webgpu"),
                config=row["best_config"],
                median_ms=row["best_ms"],
                iqr_ms=0.0,
                samples=7,
                gflops=main_stage(workload).flops / row["best_ms"] / 1e6,
                digest="",
                fingerprint=fingerprint,
                source=str(path),
            )
        )
    return out


def reached(timeline: list[list[float]], share: float, final: float) -> float | None:
    """The page time (ms) after which the estimated speed-up first reached ``share`` of its final value."""
    return next((ms for ms, speedup in timeline if speedup >= share * final), None)


def measure(model: str, backend: str, args, work: Path) -> dict[str, Any]:
    onnx_path = work / f"{model}.onnx"
    if not onnx_path.exists():
        zoo.save(zoo.MODELS[model](), onnx_path)
    own, foreign = work / f"{model}-{backend}-own", work / f"{model}-{backend}-foreign"
    threads = (args.threads,) if backend == "wasm" else None
    convert(onnx_path, own, [backend], options=Options(RecordStore(args.records)), force=True, wasm_threads=threads)
    store = RecordStore(work / "foreign.jsonl")
    if backend == "webgpu" and not store.path.exists():
        store.add(h100_records(H100))
    records = store if backend == "webgpu" else None
    t0 = time.perf_counter()
    options = Options(records, candidates=args.candidates)
    convert(onnx_path, foreign, [backend], options=options, force=True, wasm_threads=threads)
    convert_s = time.perf_counter() - t0
    feeds = {k: v.ravel().tolist() for k, v in zoo.seeded_inputs(zoo.MODELS[model](), 1).items()}
    budget = args.budget_ms or (30000 if model == "resnet50" else 10000)
    with BrowserSession(job_timeout_s=900, mounts={"/work/": work}) as session:
        dirs = [f"/work/{own.name}", f"/work/{foreign.name}"]
        got = session.evaluate(PAGE, [*dirs, backend, feeds, budget, args.rounds, args.runs, args.threads])
    med = {k: statistics.median(v) for k, v in got["ms"].items()}
    p = got["progress"]
    row = {
        "model": model,
        "backend": backend,
        "threads": args.threads if backend == "wasm" else None,
        "software": backend == "webgpu",
        "foreign": "h100" if backend == "webgpu" else "none (template defaults and seeds)",
        "candidates": args.candidates,
        "convert_s": round(convert_s, 1),
        "budget_ms": budget,
        "tuning": p,
        "median_ms": med,
        "rounds_ms": got["ms"],
        "tuned_share_of_own_speed": med["own"] / med["tuned"],
        "speedup_over_start": med["start"] / med["tuned"],
        "time_to_90pct_of_gain_ms": reached(got["timeline"], 0.9, p["speedup"]),
        "long_tasks_ms": sorted(got["longTasks"], reverse=True),
        "reload_from_start": got["fromStart"],
    }
    print(
        f"{model} {backend}: own {med['own']:.2f} ms, foreign start {med['start']:.2f}, tuned {med['tuned']:.2f} "
        f"({row['tuned_share_of_own_speed']:.0%} of own speed, {row['speedup_over_start']:.2f}x over the start) "
        f"after {p['spentMs']:.0f} ms of tuning ({p['state']}; {p['swapped']} swapped); long tasks "
        f"{len(row['long_tasks_ms'])}",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", choices=("mobilenet_v2", "resnet50", "mobilenet_v3", "dcgan"))
    parser.add_argument("--backend", action="append", choices=("wasm", "webgpu", "js"))
    parser.add_argument("--candidates", type=int, default=6, help="configs per kernel in the foreign conversion")
    parser.add_argument("--budget-ms", type=float, help="tuning budget (default 10 s; ResNet-50 30 s)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (default 5)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs per side and round")
    parser.add_argument("--threads", type=int, default=1, help="wasm threads of both programs (default 1)")
    parser.add_argument("--records", default="results/records.jsonl", help="this machine's records")
    parser.add_argument("--out", default="results/tuning.json")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kgen-tuning-") as tmp:
        for model in args.model or ["mobilenet_v2", "resnet50"]:
            for backend in args.backend or ["wasm", "webgpu"]:
                rows.append(measure(model, backend, args, Path(tmp)))
    result = {"commit": code_version(), "cpu": host_cpu(), "date": time.strftime("%Y-%m-%d"), "rows": rows}
    write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
