"""Value expressions of the tensor-expression language.

A compute body is a tree of these nodes. Leaves are constants and loads from tensors at sympy index
expressions; inner nodes are elementwise math, comparisons, selects and casts; a ``Reduce`` node, only at the
top of a body, sums (or takes max/min) over reduction axes. Loads that may fall outside their tensor (padding)
carry an explicit guard and a default value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sympy

from kgen.errors import TEError

if TYPE_CHECKING:
    from kgen.te.tensor import IterVar, Tensor

DTYPES = ("float32", "int32", "bool")

UNARY_FUNCS = ("neg", "exp", "log", "tanh", "sigmoid", "sqrt", "abs", "floor", "ceil", "trunc")
BINARY_OPS = ("add", "sub", "mul", "div", "max", "min", "pow")
COMPARE_OPS = ("lt", "le", "gt", "ge", "eq", "ne")
REDUCE_KINDS = ("sum", "max", "min")


class Expr:
    """Base of value expressions; arithmetic operators build new nodes."""

    dtype: str

    def __add__(self, other: Any) -> Expr:
        return binary("add", self, other)

    def __radd__(self, other: Any) -> Expr:
        return binary("add", other, self)

    def __sub__(self, other: Any) -> Expr:
        return binary("sub", self, other)

    def __rsub__(self, other: Any) -> Expr:
        return binary("sub", other, self)

    def __mul__(self, other: Any) -> Expr:
        return binary("mul", self, other)

    def __rmul__(self, other: Any) -> Expr:
        return binary("mul", other, self)

    def __truediv__(self, other: Any) -> Expr:
        return binary("div", self, other)

    def __rtruediv__(self, other: Any) -> Expr:
        return binary("div", other, self)

    def __neg__(self) -> Expr:
        return Unary("neg", self)

    def __lt__(self, other: Any) -> Expr:
        return compare("lt", self, other)

    def __le__(self, other: Any) -> Expr:
        return compare("le", self, other)

    def __gt__(self, other: Any) -> Expr:
        return compare("gt", self, other)

    def __ge__(self, other: Any) -> Expr:
        return compare("ge", self, other)


@dataclass(frozen=True, eq=False)
class Const(Expr):
    value: float | int | bool
    dtype: str = "float32"


@dataclass(frozen=True, eq=False)
class Load(Expr):
    """``tensor[indices]``; with a guard, ``tensor[indices] if guard else default`` (never reads outside)."""

    tensor: Tensor
    indices: tuple[sympy.Expr, ...]
    guard: sympy.Basic = sympy.true
    default: float = 0.0

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.tensor.dtype


@dataclass(frozen=True, eq=False)
class Unary(Expr):
    func: str
    x: Expr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.x.dtype


@dataclass(frozen=True, eq=False)
class Binary(Expr):
    op: str
    a: Expr
    b: Expr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.a.dtype


@dataclass(frozen=True, eq=False)
class Compare(Expr):
    op: str
    a: Expr
    b: Expr
    dtype: str = "bool"


@dataclass(frozen=True, eq=False)
class IndexCond(Expr):
    """A condition on indices only (e.g. "inside the unpadded input"), usable as a select condition."""

    cond: sympy.Basic
    dtype: str = "bool"


@dataclass(frozen=True, eq=False)
class Select(Expr):
    cond: Expr
    a: Expr
    b: Expr

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.a.dtype


@dataclass(frozen=True, eq=False)
class Cast(Expr):
    x: Expr
    dtype: str


@dataclass(frozen=True, eq=False)
class Reduce(Expr):
    kind: str
    body: Expr
    axes: tuple[IterVar, ...]

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.body.dtype

    @property
    def identity(self) -> float:
        return {"sum": 0.0, "max": -math.inf, "min": math.inf}[self.kind]


def const(value: Any, dtype: str = "float32") -> Const:
    if dtype not in DTYPES:
        raise TEError(f"unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
    return Const(value, dtype)


def wrap(value: Any, like: Expr | None = None) -> Expr:
    """Python numbers become constants of the other operand's dtype."""
    if isinstance(value, Expr):
        return value
    if isinstance(value, bool | int | float):
        return const(value, like.dtype if like is not None and like.dtype != "bool" else "float32")
    raise TEError(f"cannot use {value!r} as a value expression")


def _operands(a: Any, b: Any) -> tuple[Expr, Expr]:
    like = a if isinstance(a, Expr) else b if isinstance(b, Expr) else None
    ea, eb = wrap(a, like), wrap(b, like)
    if ea.dtype != eb.dtype:
        raise TEError(f"operands have different dtypes ({ea.dtype} and {eb.dtype}): cast one first")
    return ea, eb


def binary(op: str, a: Any, b: Any) -> Expr:
    if op not in BINARY_OPS:
        raise TEError(f"unknown binary op {op!r}")
    return Binary(op, *_operands(a, b))


def compare(op: str, a: Any, b: Any) -> Expr:
    if op not in COMPARE_OPS:
        raise TEError(f"unknown comparison {op!r}")
    return Compare(op, *_operands(a, b))


def unary(func: str, x: Any) -> Expr:
    if func not in UNARY_FUNCS:
        raise TEError(f"unknown unary function {func!r}")
    return Unary(func, wrap(x))


def select(cond: Expr | sympy.Basic, a: Any, b: Any) -> Expr:
    """``a`` where ``cond`` holds, else ``b``; ``cond`` is a value comparison or an index condition."""
    if isinstance(cond, sympy.Basic):
        cond = IndexCond(cond)
    if cond.dtype != "bool":
        raise TEError(f"select condition must be boolean, got {cond.dtype}")
    ea, eb = _operands(a, b)
    return Select(cond, ea, eb)


def cast(x: Expr, dtype: str) -> Expr:
    if dtype not in DTYPES:
        raise TEError(f"unknown dtype {dtype!r} (expected one of {', '.join(DTYPES)})")
    return x if x.dtype == dtype else Cast(x, dtype)


def reduce(kind: str, body: Any, axis: IterVar | Sequence[IterVar]) -> Reduce:
    """``kind`` (sum, max, min) of ``body`` over reduction axes; the whole body of a compute."""
    if kind not in REDUCE_KINDS:
        raise TEError(f"unknown reduction {kind!r} (expected one of {', '.join(REDUCE_KINDS)})")
    axes = (axis,) if not isinstance(axis, Sequence) else tuple(axis)
    if not axes:
        raise TEError(f"{kind}: no reduction axis given")
    for ax in axes:
        if ax.kind != "reduce":
            raise TEError(f"{kind}: axis {ax.name} is not a reduction axis (use reduce_axis)")
    return Reduce(kind, wrap(body), axes)


def sum(body: Any, axis: IterVar | Sequence[IterVar]) -> Reduce:
    return reduce("sum", body, axis)


def max(body: Any, axis: IterVar | Sequence[IterVar]) -> Reduce:
    return reduce("max", body, axis)


def min(body: Any, axis: IterVar | Sequence[IterVar]) -> Reduce:
    return reduce("min", body, axis)


def exp(x: Any) -> Expr:
    return unary("exp", x)


def log(x: Any) -> Expr:
    return unary("log", x)


def tanh(x: Any) -> Expr:
    return unary("tanh", x)


def sigmoid(x: Any) -> Expr:
    return unary("sigmoid", x)


def sqrt(x: Any) -> Expr:
    return unary("sqrt", x)


def maximum(a: Any, b: Any) -> Expr:
    return binary("max", a, b)


def minimum(a: Any, b: Any) -> Expr:
    return binary("min", a, b)


def children(expr: Expr) -> tuple[Expr, ...]:
    """The value sub-expressions of a node (loads and constants have none)."""
    match expr:
        case Unary(x=x) | Cast(x=x):
            return (x,)
        case Binary(a=a, b=b) | Compare(a=a, b=b):
            return (a, b)
        case Select(cond=c, a=a, b=b):
            return (c, a, b)
        case Reduce(body=body):
            return (body,)
    return ()


def walk(expr: Expr):
    """Every node of a value expression, parents before children."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def map_children(expr: Expr, fn) -> Expr:
    """Rebuild ``expr`` with ``fn`` applied to each of its value children (leaves come back unchanged)."""
    match expr:
        case Unary() | Cast():
            return replace(expr, x=fn(expr.x))
        case Binary() | Compare():
            return replace(expr, a=fn(expr.a), b=fn(expr.b))
        case Select():
            return replace(expr, cond=fn(expr.cond), a=fn(expr.a), b=fn(expr.b))
        case Reduce():
            return replace(expr, body=fn(expr.body))
    return expr


def map_indices(expr: Expr, fn) -> Expr:
    """Rebuild ``expr`` with ``fn`` applied to every index expression and index condition in it."""
    match expr:
        case Load():
            return replace(expr, indices=tuple(fn(i) for i in expr.indices), guard=fn(expr.guard))
        case IndexCond():
            return replace(expr, cond=fn(expr.cond))
    return map_children(expr, lambda e: map_indices(e, fn))
