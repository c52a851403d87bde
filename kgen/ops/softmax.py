"""softmax along one axis (ONNX Softmax, opset 13), computed stably: exp(x - max) / sum."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kgen import te
from kgen.ops.common import normalize_axis
from kgen.ops.reduce import reduce_axes
from kgen.ops.registry import Attr, Input, OpDef, register


def _softmax(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    axis = normalize_axis("softmax", attrs["axis"], x.ndim)

    def at_axis(t: te.Tensor, idx: tuple) -> te.Expr:
        return t[tuple(i for k, i in enumerate(idx) if k != axis) or (0,)]

    # the max and the sum without the reduced axis, so that their output's last axis is one the input runs along
    # (a row of the last axis's reduction: SIMD lanes then take 4 rows, not 1 of a kept axis of size 1)
    peak = reduce_axes("softmax", x, "max", [axis], keepdims=False)
    shifted = te.compute(x.shape, lambda *idx: te.exp(x[idx] - at_axis(peak, idx)), name="softmax_exp")
    total = reduce_axes("softmax", shifted, "sum", [axis], keepdims=False)
    return te.compute(x.shape, lambda *idx: shifted[idx] / at_axis(total, idx), name="softmax")


def _softmax_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    x = arrays[0]
    e = np.exp(x - x.max(axis=attrs["axis"], keepdims=True))
    return e / e.sum(axis=attrs["axis"], keepdims=True)


register(
    OpDef(
        name="softmax",
        family="softmax",
        doc="exp(x) / sum(exp(x)) along one axis.",
        inputs=(Input("X"),),
        attrs=(Attr("axis", "int", -1, "the axis to normalize along (negative counts from the end)"),),
        builder=_softmax,
        reference_fn=_softmax_ref,
    )
)
