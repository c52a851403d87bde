"""kgen's WebGL2 kernels (the template default, the best of a sampled grid, the tuned config) vs TensorFlow.js's
WebGL backend, side by side in one page.

    make peers   # once: TF.js from the npm registry into bench/peers/node_modules
    .venv/bin/python -m bench.webgl_vs_tfjs [--configs 8] [--trials 24] [--rounds 3] [--only conv] [--out FILE]

1. Grid: the default and ``--configs`` sampled configs per workload, each checked and timed once (as
   ``bench.kernels``); the fastest is the grid's best.
2. Tune: ``kgen tune --backend webgl`` (TPE after the template's seeds) per workload, studies kept in
   ``results/bench/webgl_tune.db`` (a later run goes on with them); the study's 8 best configs are measured
   again, 3 times each (interleaved), in one fresh page, and the fastest median there is the tuned config
   (``bench.finalists``: a study's single best is often a lucky sample in SwiftShader).
3. Compare, in ``--rounds`` fresh pages (the median is reported): in one page, per workload, kgen's default, grid
   best and tuned kernels (kernel only: batches of draws closed by a 1-pixel readPixels), then TF.js's WebGL
   backend on ``tf.conv2d`` / ``tf.depthwiseConv2d`` / ``tf.matMul`` in its own layouts (the weight a tensor made
   once, the input copied in and the output read back by ``dataSync``, as in BROWSER.md's peer table), its first
   outputs checked against numpy. Every side gets the same warm-up and samples.

WebGL runs on SwiftShader here (the CPU): every figure is a software figure, and is labelled so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench.finalists import fastest, study_finalists
from bench.kernel_suite import PEERS_DIR as PEERS
from bench.kernel_suite import check_peer, tfjs_operands
from bench.suite import SUITE, flops, geomeans_by_kind
from kgen.atomic import write_text_atomic
from kgen.browser.measure import Harness
from kgen.browser.session import BrowserSession
from kgen.build import build, space
from kgen.records.store import RecordStore
from kgen.tune.tune import tune

TFJS = "/peers/tfjs_runner.js"
SIDES = ("default", "grid", "tuned")
WARMUP_MS = 300
TIMEOUT_S = 300


def measure_round(names: list[str], configs: dict[str, dict[str, dict]], seed: int) -> dict[str, dict[str, float]]:
    """One fresh page: per workload, kgen's three kernels and then TF.js's WebGL backend ({name: {side: ms}})."""
    times: dict[str, dict[str, float]] = {}
    with BrowserSession(job_timeout_s=TIMEOUT_S, mounts={"/peers/": PEERS}) as session:
        limits = session.limits()
        tfjs = session.evaluate(f"async () => (await import('{TFJS}')).setup(1, 'webgl')")
        assert tfjs["backend"] == "webgl", tfjs
        for name in names:
            workload = SUITE[name][0]
            arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(seed))
            want = workload.opdef.reference(arrays, workload.attr_dict)
            harness = Harness(session, arrays, want, "webgl", timeout_s=TIMEOUT_S, warmup_ms=WARMUP_MS)
            times[name] = {}
            for side in SIDES:
                m = harness.measure(build(workload, "webgl", configs[name][side], limits)[0])
                assert m.ok, f"{name} {side}: {m.status} {m.reason}"
                times[name][side] = m.median_ms
            op, x, w = tfjs_operands(workload, arrays)
            script = f"async ([o, x, w, t]) => (await import('{TFJS}')).time(o, x, w, {{warmupMs: t}})"
            peer = session.evaluate(script, [op, x, w, WARMUP_MS])
            check_peer(name, "TF.js", peer["output"], want if op["kind"] == "matmul" else want.transpose(0, 2, 3, 1))
            times[name]["tfjs"] = peer["medianMs"]
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=8, help="sampled configs per workload (plus the default)")
    parser.add_argument("--trials", type=int, default=24, help="tuning trials per workload (0: reuse the studies)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh comparison pages (median taken)")
    parser.add_argument("--only", help="run only workloads whose name contains this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--storage", default="sqlite:///results/bench/webgl_tune.db")
    parser.add_argument("--records", type=Path, default=Path("results/bench/webgl_records.jsonl"))
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if not (PEERS / "node_modules" / "@tensorflow" / "tfjs-backend-webgl").is_dir():
        raise SystemExit("@tensorflow/tfjs-backend-webgl is not installed: run `make peers`")
    names = [n for n in SUITE if not args.only or args.only in n]
    Path("results/bench").mkdir(parents=True, exist_ok=True)
    configs: dict[str, dict[str, dict]] = {}
    with BrowserSession(job_timeout_s=TIMEOUT_S) as session:
        fp = session.fingerprint()
        label = "software (SwiftShader)" if fp["software"] else "hardware"
        print(f"webgl device: {fp['webgl2'].get('renderer')}: {label}; {fp['browser']}", flush=True)
        for n, name in enumerate(names, 1):
            print(f"[{n}/{len(names)}] grid of {args.configs} for {name}", file=sys.stderr, flush=True)
            workload = SUITE[name][0]
            sampled = space(workload, "webgl").sample(args.configs, seed=args.seed, limits=session.limits())
            grid, _ = fastest(session, workload, "webgl", [None, *sampled], passes=1, timeout_s=120)
            configs[name] = {"default": space(workload, "webgl").default(), "grid": grid}
    finalists = {}
    for n, name in enumerate(names, 1):
        print(f"[{n}/{len(names)}] tuning {name}: {args.trials} trials", file=sys.stderr, flush=True)
        summary = tune(SUITE[name][0], "webgl", args.trials, args.storage, records=RecordStore(args.records), seed=0)
        assert summary.best_config is not None, f"{name}: no candidate passed"
        finalists[name] = study_finalists(args.storage, summary.study)
    with BrowserSession(job_timeout_s=TIMEOUT_S) as session:
        for name in names:
            workload = SUITE[name][0]
            configs[name]["tuned"], best_ms = fastest(session, workload, "webgl", finalists[name], warmup_ms=WARMUP_MS)
            gflops = flops(workload) / best_ms / 1e6
            print(f"  {name}: {gflops:.2f} GFLOP/s {json.dumps(configs[name]['tuned'])}", file=sys.stderr, flush=True)
    rounds = [measure_round(names, configs, args.seed) for _ in range(args.rounds)]
    rows = []
    print(f"software (SwiftShader) WebGL2, GFLOP/s, median of {args.rounds} pages; TF.js {args.rounds} pages too")
    for name in names:
        workload, kind, _ = SUITE[name]
        gflop = flops(workload) / 1e9
        row = {"workload": name, "kind": kind, "configs": configs[name], "rounds_ms": [r[name] for r in rounds]}
        for side in (*SIDES, "tfjs"):
            ms = float(np.median([r[name][side] for r in rounds]))
            row[f"{side}_ms"], row[f"{side}_gflops"] = ms, gflop / ms * 1e3
        row["ratio"] = row["tuned_gflops"] / row["tfjs_gflops"]
        rows.append(row)
        cells = "  ".join(f"{side} {row[f'{side}_gflops']:6.3f}" for side in (*SIDES, "tfjs"))
        print(f"  {name:<26} {cells}  tuned {row['ratio']:.2f}x TF.js")
    keys = tuple(f"{side}_gflops" for side in (*SIDES, "tfjs"))
    summary = geomeans_by_kind(rows, keys)
    for kind, s in summary.items():
        cells = "  ".join(f"{k.removesuffix('_gflops_geomean')} {v:.3f}" for k, v in s.items())
        ratio = s["tuned_gflops_geomean"] / s["tfjs_gflops_geomean"]
        print(f"geomean {kind:<10} {cells}  tuned {ratio:.2f}x TF.js")
    if args.out:
        report = {"device": fp, "software": fp["software"], "rows": rows, "summary": summary}
        write_text_atomic(args.out, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
