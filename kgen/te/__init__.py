"""Tensor expressions: what is computed, with symbolic (sympy) index math. No schedule lives here."""

from kgen.te.broadcast import broadcast_indices, broadcast_shapes, broadcasts_to
from kgen.te.expr import (
    Expr,
    binary,
    cast,
    const,
    exp,
    log,
    max,
    maximum,
    min,
    minimum,
    reduce,
    select,
    sigmoid,
    sqrt,
    sum,
    tanh,
    unary,
)
from kgen.te.index import FloorDiv, FloorMod, floordiv, floormod
from kgen.te.interpret import evaluate
from kgen.te.tensor import IterVar, Tensor, compute, placeholder, reduce_axis

__all__ = [
    "Expr",
    "FloorDiv",
    "FloorMod",
    "IterVar",
    "Tensor",
    "binary",
    "broadcast_indices",
    "broadcast_shapes",
    "broadcasts_to",
    "cast",
    "compute",
    "const",
    "evaluate",
    "exp",
    "floordiv",
    "floormod",
    "log",
    "max",
    "maximum",
    "min",
    "minimum",
    "placeholder",
    "reduce",
    "reduce_axis",
    "select",
    "sigmoid",
    "sqrt",
    "sum",
    "tanh",
    "unary",
]
