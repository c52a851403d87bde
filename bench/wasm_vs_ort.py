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
import json
import sys
from pathlib import Path

from bench import kernel_suite, protocol
from bench.finalists import fastest, study_finalists
from bench.suite import SUITE, flops, geomean, geomeans_by_kind
from kgen.atomic import write_text_atomic
from kgen.browser.session import BrowserSession
from kgen.records.store import RecordStore
from kgen.tune.tune import tune

PEERS_COMPARED = ("ort", "tfjs")
KINDS = ("conv", "matmul")


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
    chosen = {}
    for threads in (1, 2):
        variant = kernel_suite.Variant("wasm", threads)
        kernel_suite.check_installed(variant, PEERS_COMPARED)
        if args.from_records:
            configs = records_configs(names, threads, args.records)
        else:
            configs = tuned_configs(names, threads, args.trials, args.storage, args.records)
        chosen[variant] = {name: kernel_suite.Chosen(c, "record") for name, c in configs.items()}
    rows, versions = kernel_suite.compare(chosen, names, PEERS_COMPARED, args.rounds, seed=args.seed)
    table = kernel_suite.ratio_table(rows)
    print(f"wasm, {', '.join(f'{k} {v}' for k, v in versions.items())}; GFLOP/s, kgen / faster peer")
    for t in table:
        peers = "  ".join(f"{p} {t[f'{p}_gflops']:6.1f}" for p in PEERS_COMPARED if f"{p}_gflops" in t)
        print(f"  {t['threads']}t {t['workload']:<26} kgen {t['kgen_gflops']:6.1f}  {peers}  {t['ratio']:.2f}x")
    summary = {}
    for threads in (1, 2):
        sel = [t for t in table if t["threads"] == threads]
        keys = tuple(k for k in ("kgen_gflops", "ort_gflops", "tfjs_gflops", "best_peer_gflops") if k in sel[0])
        by_kind = geomeans_by_kind(sel, keys)
        by_kind["conv+matmul"] = {f"{k}_geomean": geomean(t[k] for t in sel) for k in keys}
        summary[f"{threads}t"] = by_kind
        for kind, g in by_kind.items():
            peers = "  ".join(f"{k.removesuffix('_gflops_geomean')} {v:.1f}" for k, v in g.items())
            ratio = g["kgen_gflops_geomean"] / g["best_peer_gflops_geomean"]
            print(f"geomean {threads}t {kind:<11} {peers} GFLOP/s  kgen {ratio:.2f}x best peer")
    if args.out:
        report = {"versions": versions, "rows": rows, "table": table, "summary": summary}
        write_text_atomic(args.out, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
