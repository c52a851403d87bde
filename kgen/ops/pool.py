"""max_pool2d, avg_pool2d (ONNX MaxPool / AveragePool on NCHW) and global_avg_pool."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy

from kgen import te
from kgen.errors import OpError
from kgen.ops.common import check_ints, check_rank, window_output_size
from kgen.ops.registry import Attr, Input, OpDef, register

POOL_ATTRS = (
    Attr("kernel_shape", "ints", doc="window size [kH, kW] (required)"),
    Attr("strides", "ints", (1, 1), "step of the window along H and W"),
    Attr("pads", "ints", (0, 0, 0, 0), "padding [top, left, bottom, right]"),
    Attr("dilations", "ints", (1, 1), "spacing between window taps"),
    Attr("ceil_mode", "int", 0, "1: round the output size up (keep a last partial window)", choices=(0, 1)),
)


def _window(op: str, x: te.Tensor, attrs: Mapping[str, Any]):
    """Validated geometry: output shape and, for an output (y, x) and taps (ry, rx), the input row/col."""
    check_rank(op, "input", x.shape, rank=4)
    check_ints(op, "kernel_shape", attrs["kernel_shape"], 2, 1)
    check_ints(op, "strides", attrs["strides"], 2, 1)
    check_ints(op, "pads", attrs["pads"], 4, 0)
    check_ints(op, "dilations", attrs["dilations"], 2, 1)
    (kh, kw), (sh, sw), (dh, dw) = attrs["kernel_shape"], attrs["strides"], attrs["dilations"]
    pt, pl, pb, pr = attrs["pads"]
    for begin, end, k, d, axis in ((pt, pb, kh, dh, "H"), (pl, pr, kw, dw, "W")):
        if max(begin, end) >= (k - 1) * d + 1:
            raise OpError(
                op,
                f"pads along {axis} ({begin}, {end}) must be smaller than the window span {(k - 1) * d + 1}",
            )
    ceil = bool(attrs["ceil_mode"])
    n, c, h, w = x.shape
    oh = window_output_size(op, "H", h, kh, sh, dh, pt, pb, ceil)
    ow = window_output_size(op, "W", w, kw, sw, dw, pl, pr, ceil)
    ry, rx = te.reduce_axis(kh, "ry"), te.reduce_axis(kw, "rx")

    def taps(y, xx):
        return y * sh + ry * dh - pt, xx * sw + rx * dw - pl

    return (n, c, oh, ow), (ry, rx), taps


def _max_pool2d(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    shape, axes, taps = _window("max_pool2d", x, attrs)
    return te.compute(
        shape,
        lambda n, c, y, xx: te.max(x.guarded((n, c, *taps(y, xx)), default=-math.inf), axes),
        name="max_pool2d",
        axis_names="nchw",
    )


def _avg_pool2d(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    shape, axes, taps = _window("avg_pool2d", x, attrs)
    h, w = x.shape[2:]
    total = te.compute(
        shape,
        lambda n, c, y, xx: te.sum(x.guarded((n, c, *taps(y, xx))), axes),
        name="avg_pool2d_sum",
        axis_names="nchw",
    )
    # which taps count: inside the input, or (count_include_pad) inside the padded input
    pt, pl, pb, pr = attrs["pads"] if attrs["count_include_pad"] else (0, 0, 0, 0)

    def counted(y, xx):
        ty, tx = taps(y, xx)
        inside = sympy.And(ty >= -pt, ty < h + pb, tx >= -pl, tx < w + pr)
        return te.sum(te.select(inside, 1.0, 0.0), axes)

    count = te.compute(shape[2:], counted, name="avg_pool2d_count", axis_names="hw")
    return te.compute(
        shape, lambda n, c, y, xx: total[n, c, y, xx] / count[y, xx], name="avg_pool2d", axis_names="nchw"
    )


def _pool_ref(x: np.ndarray, attrs: Mapping[str, Any], fill: float, reduce, include_pad: bool) -> np.ndarray:
    (kh, kw), (sh, sw), (dh, dw) = attrs["kernel_shape"], attrs["strides"], attrs["dilations"]
    pt, pl, pb, pr = attrs["pads"]
    h, w = x.shape[2:]
    oh = window_output_size("ref", "H", h, kh, sh, dh, pt, pb, bool(attrs["ceil_mode"]))
    ow = window_output_size("ref", "W", w, kw, sw, dw, pl, pr, bool(attrs["ceil_mode"]))
    # pad far enough for every window, including a last partial one
    eb = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - h - pt)
    er = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - w - pl)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, eb), (pl, er)), constant_values=fill)
    weight = np.zeros(xp.shape[2:])
    if include_pad:
        weight[: pt + h + pb, : pl + w + pr] = 1.0
    else:
        weight[pt : pt + h, pl : pl + w] = 1.0
    windows, counts = [], []
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
            windows.append(xp[:, :, rows, cols])
            counts.append(weight[rows, cols])
    return reduce(np.stack(windows), np.stack(counts))


def _max_pool2d_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    return _pool_ref(arrays[0], attrs, -np.inf, lambda win, _: win.max(axis=0), include_pad=False)


def _avg_pool2d_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    return _pool_ref(
        arrays[0],
        attrs,
        0.0,
        lambda win, cnt: win.sum(axis=0) / cnt.sum(axis=0),
        include_pad=bool(attrs["count_include_pad"]),
    )


register(
    OpDef(
        name="max_pool2d",
        family="pool",
        doc="Max over sliding windows of an NCHW tensor; padding never wins.",
        inputs=(Input("input"),),
        attrs=POOL_ATTRS,
        builder=_max_pool2d,
        reference_fn=_max_pool2d_ref,
    )
)
register(
    OpDef(
        name="avg_pool2d",
        family="pool",
        doc="Mean over sliding windows of an NCHW tensor.",
        inputs=(Input("input"),),
        attrs=(
            *POOL_ATTRS,
            Attr("count_include_pad", "int", 0, "1: padded taps count in the divisor", choices=(0, 1)),
        ),
        builder=_avg_pool2d,
        reference_fn=_avg_pool2d_ref,
    )
)


def _global_avg_pool(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    check_rank("global_avg_pool", "input", x.shape, min_rank=3)
    spatial = x.shape[2:]
    axes = [te.reduce_axis(d, f"r{k}") for k, d in enumerate(spatial)]
    out_shape = (*x.shape[:2], *(1 for _ in spatial))
    total = te.compute(out_shape, lambda n, c, *_: te.sum(x[(n, c, *axes)], axes), name="global_avg_pool_sum")
    scale = 1.0 / math.prod(spatial)
    return te.compute(out_shape, lambda *idx: total[idx] * scale, name="global_avg_pool")


register(
    OpDef(
        name="global_avg_pool",
        family="pool",
        doc="Mean over all spatial dimensions of an N, C, ... tensor; spatial dimensions become 1.",
        inputs=(Input("input"),),
        attrs=(),
        builder=_global_avg_pool,
        reference_fn=lambda arrays, attrs: arrays[0].mean(axis=tuple(range(2, arrays[0].ndim)), keepdims=True),
    )
)
