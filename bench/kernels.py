"""Kernels of the peer suite in headless Chromium: the template default vs the best of a sampled grid.

    .venv/bin/python -m bench.kernels [--backend webgpu|webgl] [--configs 24] [--only conv] [--out FILE] \\
        [--records results/bench/webgpu_records.jsonl]

Prints GFLOP/s per workload (median of >= 5 samples, kernel time only: timestamp queries on WebGPU, batches of
draws closed by a 1-pixel readPixels on WebGL), the ratio to the best peer on the same backend from
../shared/BROWSER.md (TF.js / ORT WebGPU; TF.js WebGL), and geomeans over the conv layers and the matmuls. On
SwiftShader the figures are software figures and are labelled so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.suite import SUITE, flops, geomeans_by_kind
from kgen.atomic import write_text_atomic
from kgen.browser.measure import Harness, budget
from kgen.browser.session import BrowserSession
from kgen.build import build, space
from kgen.records.store import Record, RecordStore

PEERS = {"webgpu": ("tfjs_webgpu", "ort_webgpu"), "webgl": ("tfjs_webgl",)}


def run(
    backend: str, configs: int, only: str | None, seed: int, timeout_s: float, records: RecordStore | None = None
) -> dict:
    """``records``: each workload's best is added there (``kgen bench`` takes kgen's kernels from records)."""
    rows = []
    with BrowserSession(job_timeout_s=timeout_s) as session:
        fp = session.fingerprint()
        limits = session.limits()
        label = "software (SwiftShader)" if fp["software"] else "hardware"
        device = fp["webgl2"].get("renderer") if backend == "webgl" else fp["webgpu"].get("architecture")
        print(f"{backend} device: {device}: {label}; {fp['browser']}")
        for name, (workload, kind, peers) in SUITE.items():
            if only and only not in name:
                continue
            arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(seed))
            want = workload.opdef.reference(arrays, workload.attr_dict)
            harness = Harness(session, arrays, want, backend, samples=5, timeout_s=timeout_s)
            candidates = [None, *space(workload, backend).sample(configs, seed=seed, limits=limits)]
            results = []
            start = time.monotonic()
            for config in candidates:
                program, full = build(workload, backend, config, limits)
                timed = [m.median_ms for _, m in results if m.ok]
                # the default (first) is timed in full; later candidates far off the best only estimated
                results.append((full, harness.measure(program, budget_ms=budget(min(timed, default=None)))))
            default = results[0][1]
            timed = [(c, m) for c, m in results if m.ok]
            best_config, best = min(timed, key=lambda cm: cm[1].median_ms)
            gflops = flops(workload) / 1e6
            peer = max(peers[p] for p in PEERS[backend])
            row = {
                "workload": name,
                "key": workload.key,
                "kind": kind,
                "gflop": gflops / 1e3,
                "default_ms": default.median_ms,
                "default_gflops": gflops / default.median_ms if default.ok else None,
                "best_ms": best.median_ms,
                "best_iqr_ms": best.iqr_ms,
                "best_gflops": gflops / best.median_ms,
                "best_config": best_config,
                "best_peer_gflops": peer,
                "ratio_to_peer": gflops / best.median_ms / peer,
                "failed": {
                    m.status: sum(1 for _, x in results if x.status == m.status) for _, m in results if not m.ok
                },
                "candidates": len(candidates),
                "seconds": time.monotonic() - start,
            }
            rows.append(row)
            if records is not None:
                source = f"bench.kernels, best of the default and {configs} sampled configs"
                records.add(
                    [
                        Record.measured(
                            workload,
                            backend,
                            fp,
                            best_config,
                            best.median_ms,
                            best.iqr_ms or 0.0,
                            best.samples,
                            best.digest,
                            source,
                        )
                    ]
                )
            print(
                f"{name:<26} default {row['default_gflops'] or float('nan'):6.3f}  "
                f"best {row['best_gflops']:6.3f} GFLOP/s"
                f"  (peer {peer:.2f}: {row['ratio_to_peer']:.1f}x)  {row['seconds']:.0f}s  {json.dumps(best_config)}",
                flush=True,
            )
    summary = geomeans_by_kind(rows, ("default_gflops", "best_gflops", "best_peer_gflops"))
    for kind, s in summary.items():
        print(
            f"geomean {kind:<10} default {s['default_gflops_geomean']:.3f}  best {s['best_gflops_geomean']:.3f}  "
            f"best {backend} peer {s['best_peer_gflops_geomean']:.3f}  "
            f"ratio {s['best_gflops_geomean'] / s['best_peer_gflops_geomean']:.2f}x"
        )
    return {
        "backend": backend,
        "device": fp,
        "software": fp["software"],
        "configs_sampled": configs,
        "rows": rows,
        "summary": summary,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=tuple(PEERS), default="webgpu")
    parser.add_argument("--configs", type=int, default=24, help="sampled configs per workload (plus the default)")
    parser.add_argument("--only", help="run only workloads whose name contains this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a candidate counts as hung")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--records", type=Path, help="add each workload's best to this records file")
    args = parser.parse_args(argv)
    records = RecordStore(args.records) if args.records else None
    report = run(args.backend, args.configs, args.only, args.seed, args.timeout, records)
    if args.out:
        write_text_atomic(args.out, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
