"""Unary activations and binary arithmetic with broadcasting (ONNX semantics)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from kgen import te
from kgen.ops.common import broadcast
from kgen.ops.registry import Attr, Input, OpDef, register

Elementwise = Callable[[te.Expr, Mapping[str, Any]], te.Expr]

# name: (TE body, numpy reference, attributes, doc)
UNARY: dict[str, tuple[Elementwise, Callable[..., np.ndarray], tuple[Attr, ...], str]] = {
    "relu": (lambda v, a: te.maximum(v, 0.0), lambda x, a: np.maximum(x, 0.0), (), "max(x, 0)"),
    "leaky_relu": (
        lambda v, a: te.select(v >= 0.0, v, v * a["alpha"]),
        lambda x, a: np.where(x >= 0, x, a["alpha"] * x),
        (Attr("alpha", "float", 0.01, "slope for x < 0"),),
        "x if x >= 0 else alpha · x",
    ),
    "sigmoid": (lambda v, a: te.sigmoid(v), lambda x, a: 1.0 / (1.0 + np.exp(-x)), (), "1 / (1 + exp(-x))"),
    "tanh": (lambda v, a: te.tanh(v), lambda x, a: np.tanh(x), (), "hyperbolic tangent"),
    "clip": (
        lambda v, a: te.minimum(te.maximum(v, a["min"]), a["max"]),
        lambda x, a: np.minimum(np.maximum(x, a["min"]), a["max"]),
        (
            Attr("min", "float", -math.inf, "lower bound"),
            Attr("max", "float", math.inf, "upper bound (wins when min > max)"),
        ),
        "min(max(x, min), max)",
    ),
    "exp": (lambda v, a: te.exp(v), lambda x, a: np.exp(x), (), "e to the x"),
    "neg": (lambda v, a: -v, lambda x, a: -x, (), "-x"),
}

BINARY: dict[str, tuple[Callable[[te.Expr, te.Expr], te.Expr], Callable[..., np.ndarray], str]] = {
    "add": (lambda a, b: a + b, np.add, "A + B"),
    "sub": (lambda a, b: a - b, np.subtract, "A - B"),
    "mul": (lambda a, b: a * b, np.multiply, "A · B"),
    "div": (lambda a, b: a / b, np.divide, "A / B"),
    "max": (te.maximum, np.maximum, "elementwise maximum"),
    "min": (te.minimum, np.minimum, "elementwise minimum"),
}


def _unary_builder(name: str, fn: Elementwise):
    def build(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
        x = inputs[0]
        return te.compute(x.shape, lambda *idx: fn(x[idx], attrs), name=name)

    return build


def _binary_builder(name: str, fn: Callable[[te.Expr, te.Expr], te.Expr]):
    def build(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
        a, b = inputs
        shape = broadcast(name, [("A", a.shape), ("B", b.shape)])
        return te.compute(
            shape,
            lambda *idx: fn(a[te.broadcast_indices(a.shape, idx)], b[te.broadcast_indices(b.shape, idx)]),
            name=name,
        )

    return build


for _name, (_fn, _ref, _attrs, _doc) in UNARY.items():
    register(
        OpDef(
            name=_name,
            family="elementwise",
            doc=_doc,
            inputs=(Input("X"),),
            attrs=_attrs,
            builder=_unary_builder(_name, _fn),
            reference_fn=lambda arrays, attrs, ref=_ref: ref(arrays[0], attrs),
        )
    )

for _name, (_fn, _ref, _doc) in BINARY.items():
    register(
        OpDef(
            name=_name,
            family="elementwise",
            doc=_doc + " (broadcasting)",
            inputs=(Input("A"), Input("B")),
            attrs=(),
            builder=_binary_builder(_name, _fn),
            reference_fn=lambda arrays, attrs, ref=_ref: ref(arrays[0], arrays[1]),
            domains=(("B", "nonzero"),) if _name == "div" else (),
        )
    )
