"""WebGPU kernels of the peer suite through wgpu-py, outside the browser, on whatever adapter wgpu finds.

    .venv/bin/python -m bench.webgpu_native [--configs 48] [--only conv] [--out results/bench/webgpu_native.json]

For a real GPU (e.g. a lent NVIDIA machine with its Vulkan driver): the same WGSL the browser gets, the template
default vs the best of a sampled grid, every candidate checked against numpy before it is timed. Time is wall
time per run over batches of back-to-back dispatches closed by a 1-value read-back (median of 7 batches, each
>= 2 ms). With ``--torch``, the same op through PyTorch on CUDA is timed beside it for scale (a native library,
not a browser peer). The adapter is printed and recorded; on SwiftShader the figures are software figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench.suite import SUITE, flops, geomeans_by_kind
from kgen.atomic import write_text_atomic
from kgen.build import build, space
from kgen.checking import compare
from kgen.native import wgpu_runner


def torch_ms(workload, arrays) -> float | None:
    """Median ms of the op in PyTorch on CUDA (None without a CUDA device)."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    x = [torch.from_numpy(a).cuda() for a in arrays]
    attrs = workload.attr_dict
    if workload.op == "matmul":
        fn = lambda: x[0] @ x[1]  # noqa: E731
    else:
        pads = attrs["pads"]
        fn = lambda: F.conv2d(x[0], x[1], stride=attrs["strides"], padding=pads[:2], groups=attrs["group"])  # noqa: E731
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(50):
            fn()
        torch.cuda.synchronize()
        times.append(1e3 * (time.perf_counter() - start) / 50)
    return statistics.median(times)


def run(configs: int, only: str | None, seed: int, with_torch: bool) -> dict:
    adapter = wgpu_runner.device().adapter.info
    keys = ("vendor", "architecture", "device", "description", "adapter_type", "backend_type")
    info = {k: adapter.get(k) for k in keys}
    print(f"adapter: {json.dumps(info)}", flush=True)
    rows = []
    for name, (workload, kind, _) in SUITE.items():
        if only and only not in name:
            continue
        arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(seed))
        want = workload.opdef.reference(arrays, workload.attr_dict)
        gflop = flops(workload) / 1e9
        results, failed = [], 0
        start = time.monotonic()
        for config in [None, *space(workload, "webgpu").sample(configs, seed=seed)]:
            program, full = build(workload, "webgpu", config)
            try:
                prepared = wgpu_runner.Prepared(program, arrays)
                prepared.dispatch()
                ok = compare(prepared.output().reshape(want.shape), want, "webgpu").ok
                results.append((full, statistics.median(wgpu_runner.time_ms(prepared)) if ok else None))
            except Exception as err:  # a candidate that cannot compile or run is data, not a crash
                print(f"  {json.dumps(full)}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
                results.append((full, None))
            failed += results[-1][1] is None
        default_ms = results[0][1]
        best_config, best_ms = min(((c, t) for c, t in results if t is not None), key=lambda ct: ct[1])
        row = {
            "workload": name,
            "kind": kind,
            "default_gflops": gflop / default_ms * 1e3 if default_ms else None,
            "best_gflops": gflop / best_ms * 1e3,
            "best_ms": best_ms,
            "best_config": best_config,
            "failed": failed,
            "candidates": len(results),
            "seconds": time.monotonic() - start,
        }
        ref = torch_ms(workload, arrays) if with_torch else None
        row["torch_cuda_gflops"] = gflop / ref * 1e3 if ref else None
        rows.append(row)
        print(
            f"{name:<26} default {row['default_gflops'] or float('nan'):8.1f}  best {row['best_gflops']:8.1f} GFLOP/s"
            + (f"  (PyTorch CUDA {row['torch_cuda_gflops']:8.1f})" if ref else "")
            + f"  failed {failed}  {row['seconds']:.0f}s  {json.dumps(best_config)}",
            flush=True,
        )
    summary = geomeans_by_kind(rows, ("default_gflops", "best_gflops", "torch_cuda_gflops"))
    for kind, means in summary.items():
        print(f"geomean {kind:<10} " + "  ".join(f"{k} {v:.1f}" for k, v in means.items()))
    return {"adapter": info, "configs_sampled": configs, "rows": rows, "summary": summary}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=48, help="sampled configs per workload (plus the default)")
    parser.add_argument("--only", help="run only workloads whose name contains this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch", action="store_true", help="time PyTorch on CUDA beside it, for scale")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    report = run(args.configs, args.only, args.seed, args.torch)
    if args.out:
        write_text_atomic(args.out, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
