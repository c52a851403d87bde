"""A numpy interpreter for any tensor-expression graph.

It evaluates each compute on open index grids (one axis per loop variable) in a wide type (float64 for
float32 tensors), rounding to the tensor's dtype at every tensor boundary. It is the executable meaning of an
op's compute definition, checked against each op's hand-written numpy reference.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import sympy

from kgen.errors import TEError
from kgen.te.expr import Binary, Cast, Compare, Const, Expr, IndexCond, Load, Reduce, Select, Unary
from kgen.te.index import evaluate_index
from kgen.te.tensor import ComputeOp, PlaceholderOp, Tensor

NUMPY_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
_WIDE = {"float32": np.float64, "int32": np.int64, "bool": np.bool_}

_UNARY = {
    "neg": np.negative,
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "sqrt": np.sqrt,
    "abs": np.abs,
    "floor": np.floor,
    "ceil": np.ceil,
    "trunc": np.trunc,
}
_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "max": np.maximum,
    "min": np.minimum,
    "pow": np.power,
}
_COMPARE = {
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
    "eq": np.equal,
    "ne": np.not_equal,
}
_REDUCE = {"sum": np.sum, "max": np.max, "min": np.min}


def evaluate(output: Tensor, feeds: Mapping[Tensor, np.ndarray]) -> np.ndarray:
    """The value of ``output`` given arrays for the placeholders it depends on."""
    values: dict[int, np.ndarray] = {}

    def value_of(t: Tensor) -> np.ndarray:
        if id(t) in values:
            return values[id(t)]
        if isinstance(t.op, PlaceholderOp):
            if t not in feeds:
                raise TEError(f"no value fed for placeholder {t.name}")
            arr = np.asarray(feeds[t])
            if arr.shape != t.shape:
                raise TEError(f"placeholder {t.name} expects shape {t.shape}, got {arr.shape}")
            result = arr.astype(NUMPY_DTYPES[t.dtype], copy=False)
        else:
            result = _evaluate_compute(t, value_of)
        values[id(t)] = result
        return result

    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return value_of(output)


def _evaluate_compute(t: Tensor, value_of) -> np.ndarray:
    op: ComputeOp = t.op  # type: ignore[assignment]
    all_axes = op.axes + op.reduce_axes
    rank = len(all_axes)
    env = {
        ax.var: np.arange(ax.extent).reshape([-1 if k == pos else 1 for k in range(rank)])
        for pos, ax in enumerate(all_axes)
    }
    body = op.body.body if isinstance(op.body, Reduce) else op.body
    full_shape = tuple(ax.extent for ax in all_axes)
    result = np.broadcast_to(_eval(body, env, value_of), full_shape)
    if isinstance(op.body, Reduce):
        result = _REDUCE[op.body.kind](result, axis=tuple(range(len(op.axes), rank)))
    return np.asarray(result).astype(NUMPY_DTYPES[t.dtype])


def _eval(expr: Expr, env, value_of) -> np.ndarray:
    match expr:
        case Const(value=v, dtype=dt):
            return _WIDE[dt](v)
        case Load(tensor=tensor, indices=indices, guard=guard, default=default):
            arr = value_of(tensor).astype(_WIDE[tensor.dtype], copy=False)
            idx = [evaluate_index(i, env) for i in indices]
            if guard is sympy.true:
                return arr[tuple(idx)]
            ok = evaluate_index(guard, env)
            safe = tuple(np.where(ok, i, 0) for i in idx)
            return np.where(ok, arr[safe], _WIDE[tensor.dtype](default))
        case Unary(func=f, x=x):
            return _UNARY[f](_eval(x, env, value_of))
        case Binary(op="div", a=a, b=b):
            num, den = _eval(a, env, value_of), _eval(b, env, value_of)
            return np.trunc(num / den).astype(np.int64) if expr.dtype == "int32" else num / den
        case Binary(op=o, a=a, b=b):
            return _BINARY[o](_eval(a, env, value_of), _eval(b, env, value_of))
        case Compare(op=o, a=a, b=b):
            return _COMPARE[o](_eval(a, env, value_of), _eval(b, env, value_of))
        case IndexCond(cond=c):
            return evaluate_index(c, env)
        case Select(cond=c, a=a, b=b):
            return np.where(_eval(c, env, value_of), _eval(a, env, value_of), _eval(b, env, value_of))
        case Cast(x=x, dtype=dt):
            return _cast(_eval(x, env, value_of), dt)
        case Reduce():
            raise TEError("a reduction may only be the whole body of a compute")
    raise TEError(f"cannot interpret {type(expr).__name__}")


def _cast(x: np.ndarray, dtype: str) -> np.ndarray:
    x = np.asarray(x)
    if dtype == "bool":
        return x != 0
    if dtype == "int32":
        return np.trunc(x).astype(np.int64) if x.dtype.kind == "f" else x.astype(np.int64)
    return x.astype(np.float32).astype(np.float64)
