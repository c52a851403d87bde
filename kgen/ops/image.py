"""lrn (ONNX LRN) and resize (ONNX Resize / Upsample by integer factors, nearest and linear), NCHW.

Resize by an integer factor s is periodic: output row ``y = s * q + p`` reads input rows ``q + offset[p]`` (and the
next, for linear) with weight ``frac[p]``, tables over the phase ``p`` computed here exactly (fractions), so the
index math stays integer and the weights are a select over the phase. Downscaling and ``align_corners`` (not
periodic) are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np
import sympy

from kgen import te
from kgen.errors import OpError
from kgen.ops.common import check_ints, check_rank
from kgen.ops.registry import Attr, Input, OpDef, register
from kgen.te.expr import binary


def _lrn(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    check_rank("lrn", "input", x.shape, min_rank=3)
    size = attrs["size"]
    if size < 1:
        raise OpError("lrn", f"attribute 'size' must be >= 1, got {size}")
    lo = (size - 1) // 2
    r = te.reduce_axis(size, "rc")

    def window(*idx):
        v = x.guarded((idx[0], idx[1] - lo + r, *idx[2:]))
        return te.sum(v * v, r)

    squares = te.compute(x.shape, window, name="lrn_squares")
    scale = attrs["alpha"] / size
    return te.compute(
        x.shape,
        lambda *i: x[i] / binary("pow", squares[i] * scale + attrs["bias"], te.const(attrs["beta"])),
        name="lrn",
    )


def _lrn_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    x = arrays[0]
    size = attrs["size"]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    padded = np.pad(x**2, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    window = sum(padded[:, k : k + x.shape[1]] for k in range(size))
    return x / (attrs["bias"] + attrs["alpha"] / size * window) ** attrs["beta"]


register(
    OpDef(
        name="lrn",
        family="image",
        doc="Local response normalization across channels: x / (bias + alpha / size · Σ x²)^beta.",
        inputs=(Input("X"),),
        attrs=(
            Attr("size", "int", doc="channels in the window (required)"),
            Attr("alpha", "float", 1e-4, "scale of the sum of squares"),
            Attr("beta", "float", 0.75, "exponent"),
            Attr("bias", "float", 1.0, "added to the scaled sum"),
        ),
        builder=_lrn,
        reference_fn=_lrn_ref,
    )
)

COORDINATES = ("half_pixel", "asymmetric", "pytorch_half_pixel")
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _source(p: int, s: int, coordinates: str) -> Fraction:
    """The input coordinate of output phase ``p`` relative to ``q`` (output ``s * q + p``)."""
    if coordinates == "asymmetric":
        return Fraction(p, s)
    return Fraction(2 * p + 1, 2 * s) - Fraction(1, 2)


def _nearest(v: Fraction, mode: str) -> int:
    if mode == "floor":
        return math.floor(v)
    if mode == "ceil":
        return math.ceil(v)
    low = math.floor(v)
    if v - low == Fraction(1, 2):
        return low if mode == "round_prefer_floor" else low + 1
    return round(v)


def _tables(s: int, mode: str, coordinates: str, nearest: str) -> tuple[list[int], list[float]]:
    """Per phase: the offset of the first input row read, and (linear) the weight of the next one."""
    offsets, fracs = [], []
    for p in range(s):
        src = _source(p, s, coordinates)
        if mode == "nearest":
            offsets.append(_nearest(src, nearest))
            fracs.append(0.0)
        else:
            offsets.append(math.floor(src))
            fracs.append(float(src - math.floor(src)))
    return offsets, fracs


def _by_phase(values: list[float], phase) -> te.Expr:
    """``values[phase]`` (a weight per phase) as a chain of selects over the integer index ``phase``."""
    out: te.Expr = te.const(values[-1])
    for p in range(len(values) - 2, -1, -1):
        out = te.select(sympy.Eq(phase, p), values[p], out)
    return out


def _offset(offsets: list[int], phase, s: int):
    """``offsets[phase]`` (non-decreasing over the phases 0..s-1) as integer index math: the first offset plus,
    for each phase k where it steps up, the step times [phase >= k] = (phase - k + s) // s."""
    out = sympy.Integer(offsets[0])
    for k in range(1, len(offsets)):
        if offsets[k] != offsets[k - 1]:
            out += (offsets[k] - offsets[k - 1]) * te.floordiv(phase - k + s, s)
    return out


def _resize(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    op = "resize"
    check_rank(op, "input", x.shape, rank=4)
    check_ints(op, "scales", attrs["scales"], 2, 1)
    mode, coordinates, nearest = attrs["mode"], attrs["coordinate_transformation_mode"], attrs["nearest_mode"]
    (sh, sw) = attrs["scales"]
    n, c, h, w = x.shape
    th, fh = _tables(sh, mode, coordinates, nearest)
    tw, fw = _tables(sw, mode, coordinates, nearest)

    def row(base, offsets, phase, s, k, limit):
        """Input index ``base + offsets[phase] + k``, clamped into the tensor (ONNX clamps the source)."""
        return sympy.Min(sympy.Max(base + _offset(offsets, phase, s) + k, 0), limit - 1)

    def body(b, ch, y, xx):
        qy, py, qx, px = te.floordiv(y, sh), te.floormod(y, sh), te.floordiv(xx, sw), te.floormod(xx, sw)
        rows = [row(qy, th, py, sh, k, h) for k in (0, 1)]
        cols = [row(qx, tw, px, sw, k, w) for k in (0, 1)]
        if mode == "nearest":
            return x[b, ch, rows[0], cols[0]]
        wy, wx = _by_phase(fh, py), _by_phase(fw, px)
        top = x[b, ch, rows[0], cols[0]] * (1.0 - wx) + x[b, ch, rows[0], cols[1]] * wx
        bottom = x[b, ch, rows[1], cols[0]] * (1.0 - wx) + x[b, ch, rows[1], cols[1]] * wx
        return top * (1.0 - wy) + bottom * wy

    return te.compute((n, c, h * sh, w * sw), body, name=op, axis_names="nchw")


def _resize_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    x = arrays[0]
    mode, coordinates, nearest = attrs["mode"], attrs["coordinate_transformation_mode"], attrs["nearest_mode"]
    out = x
    for axis, s in ((2, attrs["scales"][0]), (3, attrs["scales"][1])):
        size = out.shape[axis]
        src = [
            Fraction(d, s) if coordinates == "asymmetric" else Fraction(2 * d + 1, 2 * s) - Fraction(1, 2)
            for d in range(size * s)
        ]
        if mode == "nearest":
            idx = np.array([_nearest(v, nearest) for v in src])
            out = np.take(out, np.clip(idx, 0, size - 1), axis=axis)
        else:
            low = np.array([math.floor(v) for v in src])
            frac = np.array([float(v - math.floor(v)) for v in src])
            frac = frac.reshape([-1 if a == axis else 1 for a in range(out.ndim)])
            a = np.take(out, np.clip(low, 0, size - 1), axis=axis)
            b = np.take(out, np.clip(low + 1, 0, size - 1), axis=axis)
            out = a * (1 - frac) + b * frac
    return out


register(
    OpDef(
        name="resize",
        family="image",
        doc="Upsample H and W by integer factors, nearest or (bi)linear (ONNX Resize / Upsample).",
        inputs=(Input("X"),),
        attrs=(
            Attr("scales", "ints", doc="integer factors [sH, sW] (required)"),
            Attr("mode", "string", "nearest", "nearest or linear", choices=("nearest", "linear")),
            Attr(
                "coordinate_transformation_mode",
                "string",
                "half_pixel",
                "how an output coordinate maps to the input",
                choices=COORDINATES,
            ),
            Attr("nearest_mode", "string", "round_prefer_floor", "rounding of mode nearest", choices=NEAREST),
        ),
        builder=_resize,
        reference_fn=_resize_ref,
    )
)
