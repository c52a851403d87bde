"""reduce_sum, reduce_mean, reduce_max, reduce_min, reduce_sum_square, reduce_l1 and reduce_l2 over chosen axes
(ONNX ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceSumSquare, ReduceL1, ReduceL2), and cumsum (ONNX CumSum): a
sum over the whole axis with the terms past the output's position masked, so it lowers with the reduction templates
(quadratic in the axis: position ids and masks are at most a few thousand)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import sympy

from kgen import te
from kgen.errors import OpError
from kgen.ops.common import normalize_axis
from kgen.ops.registry import Attr, Input, OpDef, register


def reduce_axes(
    op: str,
    x: te.Tensor,
    kind: str,
    axes: Sequence[int],
    keepdims: bool,
    term: Callable[[te.Expr], te.Expr] | None = None,
) -> te.Tensor:
    """``kind`` (sum, max, min) of ``x`` (of ``term(x)``, where given) over ``axes`` (already normalized,
    distinct)."""
    raxes = {a: te.reduce_axis(x.shape[a], f"r{a}") for a in axes}
    out_shape = tuple(1 if a in raxes else d for a, d in enumerate(x.shape) if keepdims or a not in raxes)
    kept = [a for a in range(x.ndim) if a not in raxes]

    def body(*idx):
        # without keepdims the output indexes only the kept axes (or one dummy axis when none is kept)
        out_of = {a: idx[a] for a in kept} if keepdims else dict(zip(kept, idx[: len(kept)], strict=True))
        src = tuple(raxes[a] if a in raxes else out_of[a] for a in range(x.ndim))
        value = x[src]
        return te.reduce(kind, value if term is None else term(value), list(raxes.values()))

    return te.compute(out_shape or (1,), body, name=f"reduce_{kind}")


def _normalized_axes(op: str, x: te.Tensor, axes: Sequence[int] | None) -> list[int]:
    if axes is None:
        return list(range(x.ndim))
    norm = [normalize_axis(op, a, x.ndim, "axes") for a in axes]
    if len(set(norm)) != len(norm):
        raise OpError(op, f"attribute 'axes' {list(axes)} names an axis twice")
    return sorted(norm)


class _Reduction(NamedTuple):
    kind: str  # sum, max or min
    reference: Callable[..., np.ndarray]  # numpy's, with axis and keepdims
    doc: str
    term: Callable[[te.Expr], te.Expr] | None = None  # applied to each value before the reduction
    finish: Callable[[te.Expr, int], te.Expr] | None = None  # applied to the result, given the count reduced


REDUCTIONS: dict[str, _Reduction] = {
    "reduce_sum": _Reduction("sum", np.sum, "sum over axes"),
    "reduce_mean": _Reduction("sum", np.mean, "mean over axes", finish=lambda v, n: v * (1.0 / n)),
    "reduce_max": _Reduction("max", np.max, "maximum over axes"),
    "reduce_min": _Reduction("min", np.min, "minimum over axes"),
    "reduce_sum_square": _Reduction(
        "sum", lambda x, **k: np.sum(x * x, **k), "sum of squares over axes", term=lambda v: v * v
    ),
    "reduce_l1": _Reduction(
        "sum", lambda x, **k: np.sum(np.abs(x), **k), "sum of magnitudes over axes", term=lambda v: te.unary("abs", v)
    ),
    "reduce_l2": _Reduction(
        "sum",
        lambda x, **k: np.sqrt(np.sum(x * x, **k)),
        "Euclidean norm over axes (a cosine attention's normalization)",
        term=lambda v: v * v,
        finish=lambda v, n: te.sqrt(v),
    ),
}


def _builder(op: str, r: _Reduction):
    def build(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
        x = inputs[0]
        axes = _normalized_axes(op, x, attrs["axes"])
        out = reduce_axes(op, x, r.kind, axes, bool(attrs["keepdims"]), r.term)
        if r.finish is None:
            return out
        count = math.prod(x.shape[a] for a in axes)
        return te.compute(out.shape, lambda *idx: r.finish(out[idx], count), name=op)

    return build


def _reference(fn):
    def ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
        x = arrays[0]
        axes = None if attrs["axes"] is None else tuple(attrs["axes"])
        out = fn(x, axis=axes, keepdims=bool(attrs["keepdims"]))
        return out.reshape(1) if out.ndim == 0 else out

    return ref


_ATTRS = (
    Attr("axes", "ints?", None, "axes to reduce (negative counts from the end); all when left out"),
    Attr("keepdims", "int", 1, "1: keep reduced axes as size 1", choices=(0, 1)),
)

for _op, _r in REDUCTIONS.items():
    register(
        OpDef(
            name=_op,
            family="reduce",
            doc=_r.doc,
            inputs=(Input("X"),),
            attrs=_ATTRS,
            builder=_builder(_op, _r),
            reference_fn=_reference(_r.reference),
        )
    )


def _cumsum(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    axis = normalize_axis("cumsum", attrs["axis"], x.ndim, "axis")
    k = te.reduce_axis(x.shape[axis], "rk")
    before = {(0, 0): sympy.Le, (1, 0): sympy.Lt, (0, 1): sympy.Ge, (1, 1): sympy.Gt}
    taken = before[(attrs["exclusive"], attrs["reverse"])]

    def body(*idx):
        term = x[(*idx[:axis], k, *idx[axis + 1 :])]
        return te.sum(te.select(taken(k.var, idx[axis]), term, 0.0), k)

    return te.compute(x.shape, body, name="cumsum")


def _cumsum_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    x, axis = arrays[0], attrs["axis"]
    if attrs["reverse"]:
        x = np.flip(x, axis)
    out = np.cumsum(x, axis=axis)
    if attrs["exclusive"]:
        out = out - x
    return np.flip(out, axis) if attrs["reverse"] else out


register(
    OpDef(
        name="cumsum",
        family="reduce",
        doc="Running sum along an axis (ONNX CumSum).",
        inputs=(Input("X"),),
        attrs=(
            Attr("axis", "int", doc="axis to sum along (negative counts from the end; required)"),
            Attr("exclusive", "int", 0, "1: each output leaves out its own element", choices=(0, 1)),
            Attr("reverse", "int", 0, "1: sum from the end of the axis", choices=(0, 1)),
        ),
        builder=_cumsum,
        reference_fn=_cumsum_ref,
    )
)
