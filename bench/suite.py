"""The kernel suite of ../shared/BROWSER.md's peer table: matmuls, ResNet-50 conv layers, depthwise convs.

Peer figures are GFLOP/s medians measured on this kind of machine (2-core AMD EPYC, Chromium 156, SwiftShader),
one op run including host input and output read-back, copied from that table.
"""

from __future__ import annotations

import math

from kgen.ops import Workload


def _conv(c_in, c_out, size, k, stride=1, group=1):
    pad = k // 2
    attrs = {"pads": (pad, pad, pad, pad), "strides": (stride, stride), "group": group}
    return Workload.create("conv2d", [(1, c_in, size, size), (c_out, c_in // group, k, k)], attrs)


# name: (workload, kind, {peer: GFLOP/s})
SUITE = {
    "matmul 256³": (
        Workload.create("matmul", [(256, 256), (256, 256)]),
        "matmul",
        {
            "tfjs_webgpu": 0.45,
            "ort_webgpu": 0.45,
            "tfjs_webgl": 1.91,
            "ort_wasm_1t": 22.7,
            "ort_wasm_2t": 30.2,
            "tfjs_wasm_1t": 22.0,
        },
    ),
    "matmul 512³": (
        Workload.create("matmul", [(512, 512), (512, 512)]),
        "matmul",
        {
            "tfjs_webgpu": 0.52,
            "ort_webgpu": 0.48,
            "tfjs_webgl": 2.74,
            "ort_wasm_1t": 24.3,
            "ort_wasm_2t": 46.0,
            "tfjs_wasm_1t": 24.6,
        },
    ),
    "conv 3→64, 224², k7 s2": (
        _conv(3, 64, 224, 7, 2),
        "conv",
        {
            "tfjs_webgpu": 0.36,
            "ort_webgpu": 0.19,
            "tfjs_webgl": 0.95,
            "ort_wasm_1t": 19.7,
            "ort_wasm_2t": 34.3,
            "tfjs_wasm_1t": 22.7,
        },
    ),
    "conv 64→64, 56², k3": (
        _conv(64, 64, 56, 3),
        "conv",
        {
            "tfjs_webgpu": 0.49,
            "ort_webgpu": 0.36,
            "tfjs_webgl": 1.59,
            "ort_wasm_1t": 22.9,
            "ort_wasm_2t": 44.6,
            "tfjs_wasm_1t": 24.4,
        },
    ),
    "conv 64→256, 56², k1": (
        _conv(64, 256, 56, 1),
        "conv",
        {
            "tfjs_webgpu": 0.33,
            "ort_webgpu": 0.14,
            "tfjs_webgl": 1.90,
            "ort_wasm_1t": 16.8,
            "ort_wasm_2t": 26.9,
            "tfjs_wasm_1t": 15.7,
        },
    ),
    "conv 256→64, 56², k1": (
        _conv(256, 64, 56, 1),
        "conv",
        {
            "tfjs_webgpu": 0.47,
            "ort_webgpu": 0.13,
            "tfjs_webgl": 1.90,
            "ort_wasm_1t": 20.9,
            "ort_wasm_2t": 38.5,
            "tfjs_wasm_1t": 22.2,
        },
    ),
    "conv 128→128, 28², k3": (
        _conv(128, 128, 28, 3),
        "conv",
        {
            "tfjs_webgpu": 0.50,
            "ort_webgpu": 0.39,
            "tfjs_webgl": 1.60,
            "ort_wasm_1t": 23.1,
            "ort_wasm_2t": 41.5,
            "tfjs_wasm_1t": 25.5,
        },
    ),
    "conv 256→256, 14², k3": (
        _conv(256, 256, 14, 3),
        "conv",
        {
            "tfjs_webgpu": 0.46,
            "ort_webgpu": 0.38,
            "tfjs_webgl": 1.82,
            "ort_wasm_1t": 23.0,
            "ort_wasm_2t": 43.9,
            "tfjs_wasm_1t": 25.6,
        },
    ),
    "conv 1024→256, 14², k1": (
        _conv(1024, 256, 14, 1),
        "conv",
        {
            "tfjs_webgpu": 0.47,
            "ort_webgpu": 0.29,
            "tfjs_webgl": 2.46,
            "ort_wasm_1t": 22.7,
            "ort_wasm_2t": 41.9,
            "tfjs_wasm_1t": 25.2,
        },
    ),
    "conv 512→512, 7², k3": (
        _conv(512, 512, 7, 3),
        "conv",
        {
            "tfjs_webgpu": 0.39,
            "ort_webgpu": 0.35,
            "tfjs_webgl": 1.25,
            "ort_wasm_1t": 18.6,
            "ort_wasm_2t": 36.5,
            "tfjs_wasm_1t": 24.6,
        },
    ),
    "depthwise 32ch, 112², k3": (
        _conv(32, 32, 112, 3, group=32),
        "depthwise",
        {
            "tfjs_webgpu": 0.23,
            "ort_webgpu": 0.018,
            "tfjs_webgl": 0.17,
            "ort_wasm_1t": 3.5,
            "ort_wasm_2t": 4.6,
            "tfjs_wasm_1t": 3.9,
        },
    ),
    "depthwise 512ch, 14², k3": (
        _conv(512, 512, 14, 3, group=512),
        "depthwise",
        {
            "tfjs_webgpu": 0.20,
            "ort_webgpu": 0.016,
            "tfjs_webgl": 0.13,
            "ort_wasm_1t": 1.9,
            "ort_wasm_2t": 2.5,
            "tfjs_wasm_1t": 3.5,
        },
    ),
}


def flops(workload: Workload) -> int:
    """2 per multiply-add of the op's main reduction (the peer table's convention)."""
    from kgen.scheduling.lower import main_stage

    return main_stage(workload).flops


def geomeans_by_kind(rows: list[dict], keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """For each kind of workload (conv, matmul, depthwise) with rows: ``{key}_geomean`` over its rows' values
    (rows without a value for a key are left out of that key's geomean)."""
    summary = {}
    for kind in ("conv", "matmul", "depthwise"):
        sel = [r for r in rows if r["kind"] == kind]
        if sel:
            summary[kind] = {f"{k}_geomean": geomean(r[k] for r in sel if r[k]) for k in keys}
    return summary


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")
