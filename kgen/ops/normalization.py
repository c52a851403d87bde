"""batch_norm in inference form (ONNX BatchNormalization with running statistics)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kgen import te
from kgen.errors import OpError
from kgen.ops.common import check_rank
from kgen.ops.registry import Attr, Input, OpDef, register

_PARAMS = ("scale", "B", "mean", "var")


def _batch_norm(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x, scale, bias, mean, var = inputs
    check_rank("batch_norm", "input", x.shape, min_rank=2)
    channels = x.shape[1]
    for name, t in zip(_PARAMS, inputs[1:], strict=True):
        if t.shape != (channels,):
            raise OpError("batch_norm", f"{name} has shape {t.shape} but the input has {channels} channels")
    eps = attrs["epsilon"]
    if eps < 0:
        raise OpError("batch_norm", f"attribute 'epsilon' must be >= 0, got {eps}")

    def body(*idx):
        c = idx[1]
        return (x[idx] - mean[c]) * (scale[c] / te.sqrt(var[c] + eps)) + bias[c]

    return te.compute(x.shape, body, name="batch_norm")


def _batch_norm_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    x, scale, bias, mean, var = arrays
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + attrs["epsilon"]) * scale.reshape(
        shape
    ) + bias.reshape(shape)


register(
    OpDef(
        name="batch_norm",
        family="normalization",
        doc="(x - mean) / sqrt(var + epsilon) · scale + B, per channel (axis 1).",
        inputs=tuple(Input(n) for n in ("input", *_PARAMS)),
        attrs=(Attr("epsilon", "float", 1e-5, "added to the variance"),),
        builder=_batch_norm,
        reference_fn=_batch_norm_ref,
        domains=(("var", "positive"),),
    )
)
