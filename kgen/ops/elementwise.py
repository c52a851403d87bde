"""Unary activations and binary arithmetic with broadcasting (ONNX semantics)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from kgen import te
from kgen.errors import OpError
from kgen.ops.common import broadcast
from kgen.ops.registry import Attr, Input, OpDef, register

Elementwise = Callable[[te.Expr, Mapping[str, Any]], te.Expr]

# Abramowitz and Stegun 7.1.26: |error| <= 1.5e-7 over the whole line, from exp alone (no backend has erf)
_ERF_P = 0.3275911
_ERF_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(v: te.Expr) -> te.Expr:
    t = 1.0 / (1.0 + _ERF_P * te.unary("abs", v))
    poly = te.const(_ERF_A[-1])
    for a in reversed(_ERF_A[:-1]):
        poly = poly * t + a
    magnitude = 1.0 - poly * t * te.exp(-(v * v))
    return te.select(v < 0.0, -magnitude, magnitude)


def _erf_ref(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _gelu(v: te.Expr, a: Mapping[str, Any]) -> te.Expr:
    if a["approximate"] == "tanh":
        inner = te.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * (v * v * v)))
    else:
        inner = erf(v * math.sqrt(0.5))
    return 0.5 * v * (1.0 + inner)


def _gelu_ref(x: np.ndarray, a: Mapping[str, Any]) -> np.ndarray:
    if a["approximate"] == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + _erf_ref(x / math.sqrt(2.0)))


def _pow(v: te.Expr, a: Mapping[str, Any]) -> te.Expr:
    """Whole exponents up to 4 as products (GLSL's and WGSL's pow is undefined for a negative base, and a
    decomposed LayerNorm squares differences); halves through sqrt; the rest through pow."""
    e = a["exponent"]
    if e == 0.0:
        return v * 0.0 + 1.0
    magnitude = abs(e)
    if magnitude.is_integer() and magnitude <= 4:
        result = v
        for _ in range(int(magnitude) - 1):
            result = result * v
    elif magnitude == 0.5:
        result = te.sqrt(v)
    elif magnitude.is_integer():
        power = te.binary("pow", te.unary("abs", v), magnitude)
        result = te.select(v < 0.0, -power, power) if magnitude % 2 else power
    else:
        result = te.binary("pow", v, magnitude)
    return 1.0 / result if e < 0 else result


class _Unary(NamedTuple):
    body: Elementwise
    reference: Callable[[np.ndarray, Mapping[str, Any]], np.ndarray]
    doc: str
    attrs: tuple[Attr, ...] = ()
    domain: str | None = None  # where random test data must stay: "positive" or "nonzero"


def _hard_sigmoid(v: te.Expr, alpha: float, beta: float) -> te.Expr:
    return te.maximum(te.minimum(v * alpha + beta, 1.0), 0.0)


UNARY: dict[str, _Unary] = {
    "relu": _Unary(lambda v, a: te.maximum(v, 0.0), lambda x, a: np.maximum(x, 0.0), "max(x, 0)"),
    "leaky_relu": _Unary(
        lambda v, a: te.select(v >= 0.0, v, v * a["alpha"]),
        lambda x, a: np.where(x >= 0, x, a["alpha"] * x),
        "x if x >= 0 else alpha · x",
        (Attr("alpha", "float", 0.01, "slope for x < 0"),),
    ),
    "sigmoid": _Unary(lambda v, a: te.sigmoid(v), lambda x, a: 1.0 / (1.0 + np.exp(-x)), "1 / (1 + exp(-x))"),
    "tanh": _Unary(lambda v, a: te.tanh(v), lambda x, a: np.tanh(x), "hyperbolic tangent"),
    "clip": _Unary(
        lambda v, a: te.minimum(te.maximum(v, a["min"]), a["max"]),
        lambda x, a: np.minimum(np.maximum(x, a["min"]), a["max"]),
        "min(max(x, min), max)",
        (
            Attr("min", "float", -math.inf, "lower bound"),
            Attr("max", "float", math.inf, "upper bound (wins when min > max)"),
        ),
    ),
    "exp": _Unary(lambda v, a: te.exp(v), lambda x, a: np.exp(x), "e to the x"),
    "neg": _Unary(lambda v, a: -v, lambda x, a: -x, "-x"),
    "abs": _Unary(lambda v, a: te.unary("abs", v), lambda x, a: np.abs(x), "|x|"),
    "sqrt": _Unary(lambda v, a: te.sqrt(v), lambda x, a: np.sqrt(x), "square root", domain="positive"),
    "log": _Unary(lambda v, a: te.log(v), lambda x, a: np.log(x), "natural logarithm", domain="positive"),
    "reciprocal": _Unary(lambda v, a: 1.0 / v, lambda x, a: 1.0 / x, "1 / x", domain="nonzero"),
    "pow": _Unary(
        _pow,
        lambda x, a: np.power(x, a["exponent"]),
        "x to a constant power (ONNX Pow with a constant exponent)",
        (Attr("exponent", "float", doc="the power (required)"),),
        domain="positive",
    ),
    "erf": _Unary(lambda v, a: erf(v), lambda x, a: _erf_ref(x), "the error function"),
    "gelu": _Unary(
        _gelu,
        _gelu_ref,
        "x · Φ(x), the Gaussian error linear unit (exact, or its tanh approximation)",
        (Attr("approximate", "string", "none", "none (erf) or tanh", choices=("none", "tanh")),),
    ),
    "hard_sigmoid": _Unary(
        lambda v, a: _hard_sigmoid(v, a["alpha"], a["beta"]),
        lambda x, a: np.clip(a["alpha"] * x + a["beta"], 0.0, 1.0),
        "max(0, min(1, alpha · x + beta))",
        (Attr("alpha", "float", 0.2, "slope"), Attr("beta", "float", 0.5, "offset")),
    ),
    "hard_swish": _Unary(
        lambda v, a: v * _hard_sigmoid(v, 1.0 / 6.0, 0.5),
        lambda x, a: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
        "x · max(0, min(1, x / 6 + 1/2))",
    ),
    "elu": _Unary(
        lambda v, a: te.select(v >= 0.0, v, (te.exp(v) - 1.0) * a["alpha"]),
        lambda x, a: np.where(x >= 0, x, a["alpha"] * (np.exp(x) - 1.0)),
        "x if x >= 0 else alpha · (exp(x) - 1)",
        (Attr("alpha", "float", 1.0, "scale for x < 0"),),
    ),
    "silu": _Unary(lambda v, a: v * te.sigmoid(v), lambda x, a: x / (1.0 + np.exp(-x)), "x · sigmoid(x) (swish)"),
    # written so that exp never overflows: max(x, 0) + log(1 + exp(-|x|))
    "softplus": _Unary(
        lambda v, a: te.maximum(v, 0.0) + te.log(1.0 + te.exp(-te.unary("abs", v))),
        lambda x, a: np.logaddexp(0.0, x),
        "log(1 + exp(x))",
    ),
}

BINARY: dict[str, tuple[Callable[[te.Expr, te.Expr], te.Expr], Callable[..., np.ndarray], str]] = {
    "add": (lambda a, b: a + b, np.add, "A + B"),
    "sub": (lambda a, b: a - b, np.subtract, "A - B"),
    "mul": (lambda a, b: a * b, np.multiply, "A · B"),
    "div": (lambda a, b: a / b, np.divide, "A / B"),
    "max": (te.maximum, np.maximum, "elementwise maximum"),
    "min": (te.minimum, np.minimum, "elementwise minimum"),
    "prelu": (
        lambda x, slope: te.select(x >= 0.0, x, x * slope),
        lambda x, slope: np.where(x >= 0, x, x * slope),
        "X if X >= 0 else slope · X, the slope broadcast to X",
    ),
}
_OPERANDS = {"prelu": ("X", "slope")}


def _unary_builder(name: str, fn: Elementwise):
    def build(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
        x = inputs[0]
        return te.compute(x.shape, lambda *idx: fn(x[idx], attrs), name=name)

    return build


def _binary_builder(name: str, fn: Callable[[te.Expr, te.Expr], te.Expr]):
    def build(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
        a, b = inputs
        first, second = _OPERANDS.get(name, ("A", "B"))
        shape = broadcast(name, [(first, a.shape), (second, b.shape)])
        if name in _OPERANDS and shape != a.shape:
            raise OpError(name, f"{second} of shape {b.shape} does not broadcast to {first}'s {a.shape}")
        return te.compute(
            shape,
            lambda *idx: fn(a[te.broadcast_indices(a.shape, idx)], b[te.broadcast_indices(b.shape, idx)]),
            name=name,
        )

    return build


for _name, _u in UNARY.items():
    register(
        OpDef(
            name=_name,
            family="elementwise",
            doc=_u.doc,
            inputs=(Input("X"),),
            attrs=_u.attrs,
            builder=_unary_builder(_name, _u.body),
            reference_fn=lambda arrays, attrs, ref=_u.reference: ref(arrays[0], attrs),
            domains=(("X", _u.domain),) if _u.domain else (),
        )
    )

for _name, (_fn, _ref, _doc) in BINARY.items():
    _first, _second = _OPERANDS.get(_name, ("A", "B"))
    register(
        OpDef(
            name=_name,
            family="elementwise",
            doc=_doc + ("" if _name in _OPERANDS else " (broadcasting)"),
            inputs=(Input(_first), Input(_second)),
            attrs=(),
            builder=_binary_builder(_name, _fn),
            reference_fn=lambda arrays, attrs, ref=_ref: ref(arrays[0], arrays[1]),
            domains=(("B", "nonzero"),) if _name == "div" else (),
        )
    )
