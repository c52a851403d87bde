"""Normalizations: batch_norm in inference form (running statistics), and the ones that compute their statistics
from the input: layer_norm (and its RMS form), instance_norm and group_norm (ONNX semantics)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kgen import te
from kgen.errors import OpError
from kgen.ops.common import broadcast, check_rank, normalize_axis
from kgen.ops.reduce import reduce_axes
from kgen.ops.registry import Attr, Input, OpDef, register

_PARAMS = ("scale", "B", "mean", "var")
_EPSILON = Attr("epsilon", "float", 1e-5, "added to the variance")


def _check_epsilon(op: str, eps: float) -> None:
    if eps < 0:
        raise OpError(op, f"attribute 'epsilon' must be >= 0, got {eps}")


def _batch_norm(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x, scale, bias, mean, var = inputs
    check_rank("batch_norm", "input", x.shape, min_rank=2)
    channels = x.shape[1]
    for name, t in zip(_PARAMS, inputs[1:], strict=True):
        if t.shape != (channels,):
            raise OpError("batch_norm", f"{name} has shape {t.shape} but the input has {channels} channels")
    eps = attrs["epsilon"]
    _check_epsilon("batch_norm", eps)

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
        attrs=(_EPSILON,),
        builder=_batch_norm,
        reference_fn=_batch_norm_ref,
        domains=(("var", "positive"),),
    )
)


def _statistics(
    op: str, x: te.Tensor, axes: Sequence[int], eps: float, centered: bool
) -> tuple[te.Tensor | None, te.Tensor]:
    """The mean (None where not ``centered``) and 1 / sqrt(variance + eps) of ``x`` over ``axes``, both with
    those axes kept (size 1): two reductions, or one for the RMS form (the mean square about 0)."""
    count = math.prod(x.shape[a] for a in axes)

    def at(t: te.Tensor, idx: tuple) -> te.Expr:
        return t[tuple(0 if k in axes else i for k, i in enumerate(idx))]

    mean = None
    deviation = x
    if centered:
        total = reduce_axes(op, x, "sum", axes, keepdims=True)
        mean = te.compute(total.shape, lambda *idx: total[idx] * (1.0 / count), name=f"{op}_mean")
        deviation = te.compute(x.shape, lambda *idx: x[idx] - at(mean, idx), name=f"{op}_centered")
    squares = te.compute(x.shape, lambda *idx: deviation[idx] * deviation[idx], name=f"{op}_square")
    spread = reduce_axes(op, squares, "sum", axes, keepdims=True)
    inverse = te.compute(
        spread.shape, lambda *idx: 1.0 / te.sqrt(spread[idx] * (1.0 / count) + eps), name=f"{op}_inv_std"
    )
    return mean, inverse


def _normalized(x: te.Tensor, mean: te.Tensor | None, inverse: te.Tensor, stat_index, affine, name: str):
    """``(x - mean) · inverse`` at each element, then ``affine(value, idx)`` (scale and bias)."""

    def body(*idx):
        at = stat_index(idx)
        value = x[idx] if mean is None else x[idx] - mean[at]
        return affine(value * inverse[at], idx)

    return te.compute(x.shape, body, name=name)


def _layer_norm_builder(rms: bool):
    op = "rms_norm" if rms else "layer_norm"

    def build(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
        x, scale, *bias = inputs
        axis = normalize_axis(op, attrs["axis"], x.ndim)
        _check_epsilon(op, attrs["epsilon"])
        normalized = x.shape[axis:]
        for name, t in (("scale", scale), *(("B", b) for b in bias)):
            if broadcast(op, [("X's normalized axes", normalized), (name, t.shape)]) != normalized:
                raise OpError(op, f"{name} of shape {t.shape} does not broadcast to X's normalized axes {normalized}")
        axes = list(range(axis, x.ndim))
        mean, inverse = _statistics(op, x, axes, attrs["epsilon"], centered=not rms)

        def affine(value, idx):
            tail = idx[axis:]
            value = value * scale[te.broadcast_indices(scale.shape, tail)]
            return value + bias[0][te.broadcast_indices(bias[0].shape, tail)] if bias else value

        return _normalized(x, mean, inverse, lambda idx: idx[:axis] + (0,) * len(axes), affine, op)

    return build


def _layer_norm_ref(rms: bool):
    def ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
        x, scale, *bias = arrays
        axes = tuple(range(attrs["axis"] % x.ndim, x.ndim))
        centered = x if rms else x - x.mean(axis=axes, keepdims=True)
        out = centered / np.sqrt((centered**2).mean(axis=axes, keepdims=True) + attrs["epsilon"]) * scale
        return out + bias[0] if bias else out

    return ref


_AXIS = Attr("axis", "int", -1, "the first normalized axis: the statistics are over it and every axis after it")
for _name, _rms, _doc in (
    (
        "layer_norm",
        False,
        "(x - mean) / sqrt(var + epsilon) · scale + B over the axes from `axis` on (ONNX LayerNormalization).",
    ),
    (
        "rms_norm",
        True,
        "x / sqrt(mean(x²) + epsilon) · scale (+ B) over the axes from `axis` on (RMSNorm: no mean subtracted).",
    ),
):
    register(
        OpDef(
            name=_name,
            family="normalization",
            doc=_doc,
            inputs=(Input("X"), Input("scale", weight=True), Input("B", optional=True, weight=True)),
            attrs=(_AXIS, _EPSILON),
            builder=_layer_norm_builder(rms=_rms),
            reference_fn=_layer_norm_ref(rms=_rms),
        )
    )


def _channel_params(op: str, x: te.Tensor, params: Sequence[te.Tensor], names: Sequence[str]) -> None:
    check_rank(op, "input", x.shape, min_rank=3)
    for name, t in zip(names, params, strict=True):
        if t.shape != (x.shape[1],):
            raise OpError(op, f"{name} has shape {t.shape} but the input has {x.shape[1]} channels")


def _group_norm_builder(op: str):
    def build(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
        x, scale, bias = inputs
        _channel_params(op, x, (scale, bias), ("scale", "B"))
        _check_epsilon(op, attrs["epsilon"])
        channels = x.shape[1]
        groups = channels if op == "instance_norm" else attrs["num_groups"]
        if groups < 1 or channels % groups:
            raise OpError(op, f"attribute 'num_groups'={groups} does not divide the {channels} channels")
        per_group = channels // groups
        # a view (N, groups, channels per group, *spatial) whose statistics are over every axis from 2 on
        grouped = te.compute(
            (x.shape[0], groups, per_group, *x.shape[2:]),
            lambda n, g, j, *rest: x[(n, g * per_group + j, *rest)],
            name=f"{op}_grouped",
        )
        axes = list(range(2, grouped.ndim))
        mean, inverse = _statistics(op, grouped, axes, attrs["epsilon"], centered=True)

        def stat_index(idx):
            return (idx[0], te.floordiv(idx[1], per_group)) + (0,) * len(axes)

        return _normalized(x, mean, inverse, stat_index, lambda value, idx: value * scale[idx[1]] + bias[idx[1]], op)

    return build


def _group_norm_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    x, scale, bias = arrays
    groups = attrs.get("num_groups", x.shape[1])
    grouped = x.reshape(x.shape[0], groups, -1)
    centered = grouped - grouped.mean(axis=2, keepdims=True)
    out = (centered / np.sqrt((centered**2).mean(axis=2, keepdims=True) + attrs["epsilon"])).reshape(x.shape)
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    return out * scale.reshape(per_channel) + bias.reshape(per_channel)


_CHANNEL_PARAMS = (Input("input"), Input("scale", weight=True), Input("B", weight=True))
register(
    OpDef(
        name="instance_norm",
        family="normalization",
        doc="(x - mean) / sqrt(var + epsilon) · scale + B, statistics per sample and channel over the spatial axes.",
        inputs=_CHANNEL_PARAMS,
        attrs=(_EPSILON,),
        builder=_group_norm_builder("instance_norm"),
        reference_fn=_group_norm_ref,
    )
)
register(
    OpDef(
        name="group_norm",
        family="normalization",
        doc="(x - mean) / sqrt(var + epsilon) · scale + B, statistics per sample over groups of channels and the "
        "spatial axes; scale and B per channel (ONNX GroupNormalization of opset 21).",
        inputs=_CHANNEL_PARAMS,
        attrs=(Attr("num_groups", "int", doc="the number of groups; it divides the channels (required)"), _EPSILON),
        builder=_group_norm_builder("group_norm"),
        reference_fn=_group_norm_ref,
    )
)
