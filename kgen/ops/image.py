"""lrn (ONNX LRN) and resize (ONNX Resize / Upsample by rational factors, nearest and linear), NCHW.

Resize by a factor num/den (in lowest terms) is periodic: output row ``y = num * q + p`` reads input rows
``den * q + offset[p]`` (and the next, for linear) with weight ``frac[p]``, tables over the phase ``p`` computed here
exactly (fractions), so the index math stays integer and the weights are a select over the phase. ``align_corners``
is the same with the factor (out - 1) / (in - 1). Periods longer than ``MAX_PERIOD`` are refused (a select chain of
that length per output).
"""

from __future__ import annotations

import functools
import math
import operator
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

COORDINATES = ("half_pixel", "asymmetric", "pytorch_half_pixel", "align_corners")
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
MAX_PERIOD = 64


def _nearest(v: Fraction, mode: str) -> int:
    if mode == "floor":
        return math.floor(v)
    if mode == "ceil":
        return math.ceil(v)
    low = math.floor(v)
    if v - low == Fraction(1, 2):
        return low if mode == "round_prefer_floor" else low + 1
    return round(v)


def _length(size: int, factor: Fraction) -> int:
    return math.floor(size * factor)


def _step(size: int, factor: Fraction, coordinates: str) -> Fraction:
    """The input distance between neighbouring outputs: 1 / factor, or (in - 1) / (out - 1) where the corners are
    aligned (align_corners, and pytorch_half_pixel's single output, which reads input 0)."""
    out = _length(size, factor)
    if coordinates == "align_corners" or (coordinates == "pytorch_half_pixel" and out == 1):
        return Fraction(size - 1, out - 1) if out > 1 else Fraction(0)
    return 1 / factor


def _source(y: int, size: int, factor: Fraction, coordinates: str) -> Fraction:
    """ONNX's input coordinate of output index ``y`` along an axis of ``size`` inputs."""
    step = _step(size, factor, coordinates)
    centred = coordinates in ("half_pixel", "pytorch_half_pixel") and step == 1 / factor
    return (y + Fraction(1, 2)) * step - Fraction(1, 2) if centred else y * step


def _cubic(t: float, a: float) -> list[float]:
    """The weights of the 4 inputs around a source at fraction ``t`` past the second: ONNX's cubic convolution
    with coefficient ``a`` (-0.75, as PyTorch's bicubic)."""

    def near(d: float) -> float:  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d: float) -> float:  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(1 + t), near(t), near(1 - t), far(2 - t)]


def _read(src: Fraction, attrs: Mapping[str, Any]) -> tuple[int, list[float]]:
    """The first input index read at ``src`` and the weights of it and the inputs after it."""
    if attrs["mode"] == "nearest":
        return _nearest(src, attrs["nearest_mode"]), [1.0]
    low, t = math.floor(src), float(src - math.floor(src))
    if attrs["mode"] == "linear":
        return low, [1.0 - t, t]
    return low - 1, _cubic(t, attrs["cubic_coeff_a"])


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


def _factors(op: str, attrs: Mapping[str, Any]) -> list[Fraction]:
    check_ints(op, "scales", attrs["scales"], 2, 1)
    check_ints(op, "divisors", attrs["divisors"], 2, 1)
    return [Fraction(n, d) for n, d in zip(attrs["scales"], attrs["divisors"], strict=True)]


def _resize(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    op = "resize"
    check_rank(op, "input", x.shape, rank=4)
    coordinates = attrs["coordinate_transformation_mode"]
    n, c, h, w = x.shape
    factors = _factors(op, attrs)
    axes = []
    for name, size, factor in zip("HW", (h, w), factors, strict=True):
        if _length(size, factor) < 1:
            raise OpError(op, f"factor {factor} leaves no output along {name} (input length {size})")
        distance = _step(size, factor, coordinates)  # the source repeats every `period` outputs, `step` inputs on
        period, step = distance.denominator, distance.numerator
        if period > MAX_PERIOD:
            raise OpError(op, f"factor {factor} along {name} repeats every {period} outputs; at most {MAX_PERIOD}")
        reads = [_read(_source(p, size, factor, coordinates), attrs) for p in range(period)]
        axes.append((size, period, step, [r[0] for r in reads], [r[1] for r in reads]))

    def taps(y, axis) -> list[tuple[Any, te.Expr | None]]:
        """Each input index read for output ``y``, clamped into the tensor (ONNX clamps the source), and its
        weight (None for nearest's one read)."""
        size, period, step, offsets, weights = axis
        q, p = te.floordiv(y, period), te.floormod(y, period)
        first = step * q + _offset(offsets, p, period)
        count = len(weights[0])
        return [
            (
                sympy.Min(sympy.Max(first + k, 0), size - 1),
                None if count == 1 else _by_phase([w[k] for w in weights], p),
            )
            for k in range(count)
        ]

    def weighted(value: te.Expr, weight: te.Expr | None) -> te.Expr:
        return value if weight is None else value * weight

    def body(b, ch, y, xx):
        cols = taps(xx, axes[1])
        rows = [weighted(_total([weighted(x[b, ch, r, c], wx) for c, wx in cols]), wy) for r, wy in taps(y, axes[0])]
        return _total(rows)

    shape = (n, c, *(_length(size, f) for size, f in zip((h, w), factors, strict=True)))
    return te.compute(shape, body, name=op, axis_names="nchw")


def _total(terms: list[te.Expr]) -> te.Expr:
    return functools.reduce(operator.add, terms)


def _resize_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    out = arrays[0]
    coordinates = attrs["coordinate_transformation_mode"]
    for axis, factor in zip((2, 3), _factors("resize", attrs), strict=True):
        size = out.shape[axis]
        reads = [_read(_source(y, size, factor, coordinates), attrs) for y in range(_length(size, factor))]
        first = np.array([r[0] for r in reads])
        weights = np.array([r[1] for r in reads])
        along = [-1 if a == axis else 1 for a in range(out.ndim)]
        out = sum(
            np.take(out, np.clip(first + k, 0, size - 1), axis=axis) * weights[:, k].reshape(along)
            for k in range(weights.shape[1])
        )
    return out


register(
    OpDef(
        name="resize",
        family="image",
        doc="Resize H and W by rational factors, nearest, (bi)linear or (bi)cubic (ONNX Resize / Upsample).",
        inputs=(Input("X"),),
        attrs=(
            Attr("scales", "ints", doc="numerators of the factors [sH, sW] (required)"),
            Attr("divisors", "ints", (1, 1), "denominators of the factors: H is resized by scales[0] / divisors[0]"),
            Attr("mode", "string", "nearest", "nearest, linear or cubic", choices=("nearest", "linear", "cubic")),
            Attr(
                "coordinate_transformation_mode",
                "string",
                "half_pixel",
                "how an output coordinate maps to the input",
                choices=COORDINATES,
            ),
            Attr("nearest_mode", "string", "round_prefer_floor", "rounding of mode nearest", choices=NEAREST),
            Attr("cubic_coeff_a", "float", -0.75, "the cubic convolution's coefficient (mode cubic)"),
        ),
        builder=_resize,
        reference_fn=_resize_ref,
    )
)
