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

# erf(x) = x·P(x²) / Q(x²), x clamped to ±4 (where float32's erf is ±1): a rational fit made for kgen (least
# squares reweighted toward minimax), |error| < 4e-7 in float32. No exp: half the operations of the exponential
# form it replaced, which made a transformer's MLP matmul with its GELU epilogue 14% slower than without on wasm.
_ERF_P = (
    1.128379225730896,
    0.18471038341522217,
    0.05433260276913643,
    0.003839530749246478,
    0.0003826924366876483,
    4.78054471386713e-06,
    -1.3666810794177309e-08,
)
_ERF_Q = (
    1.0,
    0.4970288574695587,
    0.11382632702589035,
    0.015453520230948925,
    0.0013095795875415206,
    6.40093203401193e-05,
)


def _polynomial(coefficients: tuple[float, ...], z: te.Expr) -> te.Expr:
    """Σ coefficients[k] · z^k, by Horner's rule."""
    result: te.Expr = te.const(coefficients[-1])
    for c in reversed(coefficients[:-1]):
        result = result * z + c
    return result


def erf(v: te.Expr) -> te.Expr:
    x = te.minimum(te.maximum(v, -4.0), 4.0)
    z = x * x
    return x * _polynomial(_ERF_P, z) / _polynomial(_ERF_Q, z)


# sin(r) = r·S(r²) and cos(r) = C(r²) on [-π/2, π/2]: fits made for kgen, |error| < 1.5e-7 in float32. The argument
# is reduced by the nearest multiple n of π (Cody–Waite: π in three parts, n·P1 and n·P2 exact for |n| < 4096), and
# sin(x) = (-1)^n sin(r), cos(x) = (-1)^n cos(r).
_SIN_S = (1.0, -0.16666658222675323, 0.008333050645887852, -0.00019809075456578285, 2.6052241537399823e-06)
_COS_C = (1.0, -0.5, 0.04166664183139801, -0.00138884037733078, 2.476188456057571e-05, -2.607706903745566e-07)
_PI_PARTS = (3.140625, 0.0009677410125732422, -8.742277657347586e-08)


def _trigonometric(v: te.Expr, cosine: bool) -> te.Expr:
    n = te.unary("floor", v * (1.0 / math.pi) + 0.5)
    r = v
    for part in _PI_PARTS:
        r = r - n * part
    z = r * r
    sign = 1.0 - 2.0 * (n - 2.0 * te.unary("floor", n * 0.5))  # (-1)^n
    return sign * (_polynomial(_COS_C, z) if cosine else r * _polynomial(_SIN_S, z))


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


def _truth(cond: te.Expr) -> te.Expr:
    """A condition as a value: integer and boolean tensors are carried in float32 (exact up to 2^24), 1 or 0."""
    return te.select(cond, 1.0, 0.0)


class _Unary(NamedTuple):
    body: Elementwise
    reference: Callable[[np.ndarray, Mapping[str, Any]], np.ndarray]
    doc: str
    attrs: tuple[Attr, ...] = ()
    domain: str | None = None  # where random test data must stay (see OpDef.domains)


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
    "sin": _Unary(lambda v, a: _trigonometric(v, False), lambda x, a: np.sin(x), "sine (radians)"),
    "cos": _Unary(lambda v, a: _trigonometric(v, True), lambda x, a: np.cos(x), "cosine (radians)"),
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
    "floor": _Unary(lambda v, a: te.unary("floor", v), lambda x, a: np.floor(x), "the largest integer <= x"),
    "ceil": _Unary(lambda v, a: te.unary("ceil", v), lambda x, a: np.ceil(x), "the smallest integer >= x"),
    "trunc": _Unary(
        lambda v, a: te.unary("trunc", v),
        lambda x, a: np.trunc(x),
        "x rounded toward zero (a Cast from a float to an integer type)",
    ),
    "not": _Unary(
        lambda v, a: _truth(te.compare("eq", v, 0.0)),
        lambda x, a: (x == 0).astype(x.dtype),
        "1 where x is 0, else 0",
        domain="boolean",
    ),
    "silu": _Unary(lambda v, a: v * te.sigmoid(v), lambda x, a: x / (1.0 + np.exp(-x)), "x · sigmoid(x) (swish)"),
    # written so that exp never overflows: max(x, 0) + log(1 + exp(-|x|))
    "softplus": _Unary(
        lambda v, a: te.maximum(v, 0.0) + te.log(1.0 + te.exp(-te.unary("abs", v))),
        lambda x, a: np.logaddexp(0.0, x),
        "log(1 + exp(x))",
    ),
}

Binary = Callable[[te.Expr, te.Expr, Mapping[str, Any]], te.Expr]


class _Binary(NamedTuple):
    body: Binary
    reference: Callable[[np.ndarray, np.ndarray, Mapping[str, Any]], np.ndarray]
    doc: str
    attrs: tuple[Attr, ...] = ()
    domains: tuple[str | None, str | None] = (None, None)  # of each operand (see OpDef.domains)
    operands: tuple[str, str] = ("A", "B")
    #: the result has the first operand's shape (PRelu's slope broadcasts to X), rather than both broadcast
    one_way: bool = False


def _compare(op: str, ref: Callable[..., np.ndarray], doc: str) -> _Binary:
    return _Binary(
        lambda a, b, at: _truth(te.compare(op, a, b)),
        lambda x, y, at: ref(x, y).astype(x.dtype),
        doc,
        domains=("integer", "integer"),
    )


def _mod(a: te.Expr, b: te.Expr, attrs: Mapping[str, Any]) -> te.Expr:
    return a - b * te.unary("trunc" if attrs["fmod"] else "floor", a / b)


BINARY: dict[str, _Binary] = {
    "add": _Binary(lambda a, b, at: a + b, lambda x, y, at: x + y, "A + B"),
    "sub": _Binary(lambda a, b, at: a - b, lambda x, y, at: x - y, "A - B"),
    "mul": _Binary(lambda a, b, at: a * b, lambda x, y, at: x * y, "A · B"),
    "div": _Binary(lambda a, b, at: a / b, lambda x, y, at: x / y, "A / B", domains=(None, "nonzero")),
    "max": _Binary(lambda a, b, at: te.maximum(a, b), lambda x, y, at: np.maximum(x, y), "elementwise maximum"),
    "min": _Binary(lambda a, b, at: te.minimum(a, b), lambda x, y, at: np.minimum(x, y), "elementwise minimum"),
    "mod": _Binary(
        _mod,
        lambda x, y, at: np.fmod(x, y) if at["fmod"] else np.mod(x, y),
        "the remainder of A / B, with the sign of B (or of A with fmod 1)",
        (Attr("fmod", "int", 0, "1: the sign of A, as C's fmod", choices=(0, 1)),),
        domains=("integer", "nonzero integer"),
    ),
    "prelu": _Binary(
        lambda x, slope, at: te.select(x >= 0.0, x, x * slope),
        lambda x, slope, at: np.where(x >= 0, x, x * slope),
        "X if X >= 0 else slope · X, the slope broadcast to X",
        operands=("X", "slope"),
        one_way=True,
    ),
    "equal": _compare("eq", np.equal, "1 where A = B, else 0"),
    "less": _compare("lt", np.less, "1 where A < B, else 0"),
    "less_or_equal": _compare("le", np.less_equal, "1 where A <= B, else 0"),
    "greater": _compare("gt", np.greater, "1 where A > B, else 0"),
    "greater_or_equal": _compare("ge", np.greater_equal, "1 where A >= B, else 0"),
    "and": _Binary(
        lambda a, b, at: _truth(te.compare("ne", a, 0.0)) * _truth(te.compare("ne", b, 0.0)),
        lambda x, y, at: ((x != 0) & (y != 0)).astype(x.dtype),
        "1 where both are nonzero, else 0",
        domains=("boolean", "boolean"),
    ),
    "or": _Binary(
        lambda a, b, at: te.maximum(_truth(te.compare("ne", a, 0.0)), _truth(te.compare("ne", b, 0.0))),
        lambda x, y, at: ((x != 0) | (y != 0)).astype(x.dtype),
        "1 where either is nonzero, else 0",
        domains=("boolean", "boolean"),
    ),
}


def _unary_builder(name: str, fn: Elementwise):
    def build(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
        x = inputs[0]
        return te.compute(x.shape, lambda *idx: fn(x[idx], attrs), name=name)

    return build


def _broadcast_builder(name: str, operands: tuple[str, ...], fn: Callable[..., te.Expr], one_way: bool = False):
    """An elementwise op of several operands broadcast together (numpy's rules, from the last axis)."""

    def build(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
        shape = broadcast(name, list(zip(operands, (t.shape for t in inputs), strict=True)))
        if one_way and shape != inputs[0].shape:
            raise OpError(
                name,
                f"{operands[1]} of shape {inputs[1].shape} does not broadcast to {operands[0]}'s {inputs[0].shape}",
            )

        def body(*idx):
            return fn(*(t[te.broadcast_indices(t.shape, idx)] for t in inputs), attrs)

        return te.compute(shape, body, name=name)

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

for _name, _b in BINARY.items():
    register(
        OpDef(
            name=_name,
            family="elementwise",
            doc=_b.doc + ("" if _b.one_way else " (broadcasting)"),
            inputs=(Input(_b.operands[0]), Input(_b.operands[1])),
            attrs=_b.attrs,
            builder=_broadcast_builder(_name, _b.operands, _b.body, _b.one_way),
            reference_fn=lambda arrays, attrs, ref=_b.reference: ref(arrays[0], arrays[1], attrs),
            domains=tuple((o, d) for o, d in zip(_b.operands, _b.domains, strict=True) if d),
        )
    )

register(
    OpDef(
        name="where",
        family="elementwise",
        doc="X where the condition is nonzero, else Y (broadcasting)",
        inputs=(Input("condition"), Input("X"), Input("Y")),
        attrs=(),
        builder=_broadcast_builder(
            "where", ("condition", "X", "Y"), lambda c, x, y, at: te.select(te.compare("ne", c, 0.0), x, y)
        ),
        reference_fn=lambda arrays, attrs: np.where(arrays[0] != 0, arrays[1], arrays[2]),
        domains=(("condition", "boolean"),),
    )
)
