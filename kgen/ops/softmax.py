"""softmax along one axis (ONNX Softmax, opset 13), computed stably: exp(x - max) / sum."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kgen import te
from kgen.ops.common import normalize_axis
from kgen.ops.reduce import reduce_axes
from kgen.ops.registry import Attr, Input, OpDef, register

#: the lowest float32: what a masked score is, and what attention's running maximum starts at (finite, so that
#: exp(old max - new max) is 0, not NaN, before the first key)
LOWEST = -3.4028234663852886e38
#: the smallest normal float32: the least sum of exponentials a row's inverse is taken of, where it is 0
TINIEST = 1.1754943508222875e-38


def _softmax(inputs: list[te.Tensor], attrs: Mapping[str, Any], zero_masked_rows: bool = False) -> te.Tensor:
    """``zero_masked_rows``: a row whose every value is -inf gives zeros, not NaN (attention's rule: a query that may
    see no key, as exporters' guard of Where(IsNaN(p), 0, p) has it): its maximum is taken no lower than the lowest
    float, so that its exponentials are 0, and its sum no lower than the smallest normal float."""
    x = inputs[0]
    axis = normalize_axis("softmax", attrs["axis"], x.ndim)

    def at_axis(t: te.Tensor, idx: tuple) -> te.Expr:
        return t[tuple(i for k, i in enumerate(idx) if k != axis) or (0,)]

    # the max and the sum without the reduced axis, so that their output's last axis is one the input runs along
    # (a row of the last axis's reduction: SIMD lanes then take 4 rows, not 1 of a kept axis of size 1)
    peak = reduce_axes("softmax", x, "max", [axis], keepdims=False)
    at_least = te.maximum if zero_masked_rows else lambda v, _: v
    shifted = te.compute(
        x.shape, lambda *idx: te.exp(x[idx] - at_least(at_axis(peak, idx), LOWEST)), name="softmax_exp"
    )
    total = reduce_axes("softmax", shifted, "sum", [axis], keepdims=False)
    return te.compute(x.shape, lambda *idx: shifted[idx] / at_least(at_axis(total, idx), TINIEST), name="softmax")


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
