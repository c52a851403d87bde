"""Symbolic index math on sympy expressions.

Indices are sympy integer expressions. Division and modulo are the explicit functions ``FloorDiv`` and
``FloorMod`` (as in TVM) rather than sympy's ``floor(a/b)``, so renderers can print them directly and the
simplifier can reason about them. ``simplify`` knows the range of every loop variable and folds what tiling,
reshapes and texture packing produce: ``(4*i + j) // 4 -> i`` and ``(4*i + j) % 4 -> j`` when ``0 <= j < 4``;
``prove`` decides bounds checks that can be decided from those ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy

from kgen.errors import TEError

IndexExpr = sympy.Expr
#: inclusive (lo, hi) of each variable; None on a side means unbounded
Ranges = Mapping[sympy.Symbol, tuple[int, int]]
Bounds = tuple[int | None, int | None]


def index_var(name: str) -> sympy.Symbol:
    """A loop variable: a non-negative integer symbol."""
    return sympy.Symbol(name, integer=True, nonnegative=True)


def as_index(value: Any) -> IndexExpr:
    """Turn an int or sympy expression into an index expression; reject floats and other values."""
    if isinstance(value, bool):
        raise TEError(f"index must be an integer expression, got {value!r}")
    if isinstance(value, int | np.integer):
        return sympy.Integer(int(value))
    if isinstance(value, sympy.Expr) and value.is_integer:
        return value
    raise TEError(f"index must be an integer expression, got {value!r}")


class FloorDiv(sympy.Function):
    """Integer division rounding toward minus infinity, by a positive divisor."""

    is_integer = True

    @classmethod
    def eval(cls, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr | None:
        if b.is_Integer and int(b) <= 0:
            raise TEError(f"FloorDiv by a non-positive constant: {b}")
        if a.is_Integer and b.is_Integer:
            return sympy.Integer(int(a) // int(b))
        if b == 1:
            return a
        if a == 0:
            return sympy.Integer(0)
        if isinstance(a, FloorDiv) and b.is_Integer and a.args[1].is_Integer:
            return FloorDiv(a.args[0], a.args[1] * b)
        return None


class FloorMod(sympy.Function):
    """Remainder of ``FloorDiv``: always in ``[0, b)`` for a positive divisor."""

    is_integer = True
    is_nonnegative = True

    @classmethod
    def eval(cls, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr | None:
        if b.is_Integer and int(b) <= 0:
            raise TEError(f"FloorMod by a non-positive constant: {b}")
        if a.is_Integer and b.is_Integer:
            return sympy.Integer(int(a) % int(b))
        if b == 1 or a == 0:
            return sympy.Integer(0)
        return None


def floordiv(a: Any, b: Any) -> IndexExpr:
    return FloorDiv(as_index(a), as_index(b))


def floormod(a: Any, b: Any) -> IndexExpr:
    return FloorMod(as_index(a), as_index(b))


# ---------------------------------------------------------------------------------------------- bounds


def _add(x: int | None, y: int | None) -> int | None:
    return None if x is None or y is None else x + y


def _all_known(pick, values: tuple[int | None, ...]) -> int | None:
    """min/max over values that must all be known (the bound that depends on every argument)."""
    return None if None in values else pick(values)


def _any_known(pick, values: tuple[int | None, ...]) -> int | None:
    """min/max over the known values (a bound that any one argument already gives)."""
    known = [v for v in values if v is not None]
    return pick(known) if known else None


def _products(a: Bounds, b: Bounds) -> Bounds:
    if None in a or None in b:
        # c * [lo, None] with a known sign of c still has one finite side
        for const, other in ((a, b), (b, a)):
            if const[0] is not None and const[0] == const[1]:
                c = const[0]
                lo, hi = other
                if c >= 0:
                    return (None if lo is None else c * lo, None if hi is None else c * hi)
                return (None if hi is None else c * hi, None if lo is None else c * lo)
        return (None, None)
    corners = [x * y for x in a for y in b]  # type: ignore[operator]
    return (min(corners), max(corners))


def bounds(expr: sympy.Expr, ranges: Ranges) -> Bounds:
    """Inclusive integer bounds of ``expr`` by interval arithmetic; None where unknown."""
    if expr.is_Integer:
        return (int(expr), int(expr))
    if expr.is_Symbol:
        if expr in ranges:
            return ranges[expr]
        return (0, None) if expr.is_nonnegative else (None, None)
    if expr.is_Add:
        lo, hi = 0, 0
        for term in expr.args:
            t_lo, t_hi = bounds(term, ranges)
            lo, hi = _add(lo, t_lo), _add(hi, t_hi)
        return (lo, hi)
    if expr.is_Mul:
        acc: Bounds = (1, 1)
        for factor in expr.args:
            acc = _products(acc, bounds(factor, ranges))
        return acc
    if isinstance(expr, FloorDiv) and expr.args[1].is_Integer:
        c = int(expr.args[1])
        lo, hi = bounds(expr.args[0], ranges)
        return (None if lo is None else lo // c, None if hi is None else hi // c)
    if isinstance(expr, FloorMod) and expr.args[1].is_Integer:
        c = int(expr.args[1])
        lo, hi = bounds(expr.args[0], ranges)
        if lo is not None and hi is not None and lo // c == hi // c:
            return (lo % c, hi % c)
        return (0, c - 1)
    if isinstance(expr, sympy.Min | sympy.Max):
        los, his = zip(*(bounds(a, ranges) for a in expr.args), strict=True)
        if isinstance(expr, sympy.Min):
            return (_all_known(min, los), _any_known(min, his))
        return (_any_known(max, los), _all_known(max, his))
    if isinstance(expr, sympy.Abs):
        lo, hi = bounds(expr.args[0], ranges)
        if lo is not None and lo >= 0:
            return (lo, hi)
        if hi is not None and hi <= 0:
            return (-hi, None if lo is None else -lo)
        top = None if lo is None or hi is None else max(-lo, hi)
        return (0, top)
    return (None, None)


# ------------------------------------------------------------------------------------------- simplify


def _split_multiples(expr: sympy.Expr, c: int) -> tuple[sympy.Expr, sympy.Expr]:
    """Split ``expr`` into (terms whose coefficient is a multiple of c, the rest)."""
    multiple, rest = sympy.Integer(0), sympy.Integer(0)
    for term in sympy.Add.make_args(sympy.expand(expr)):
        coeff, _ = term.as_coeff_Mul()
        if coeff.is_Integer and int(coeff) % c == 0:
            multiple += term
        else:
            rest += term
    return multiple, rest


def _fold_div_mod(node: sympy.Expr, ranges: Ranges) -> sympy.Expr:
    a, b = node.args
    if not b.is_Integer:
        return node
    c = int(b)
    multiple, rest = _split_multiples(a, c)
    lo, hi = bounds(rest, ranges)
    if lo is None or hi is None or lo // c != hi // c:
        scaled = _divide_common_factor(node, ranges)
        if scaled is not None:
            return scaled
        if isinstance(node, FloorMod) and multiple != 0:
            return FloorMod(rest, b)  # multiples of c never change the remainder
        return node
    block = lo // c
    if isinstance(node, FloorDiv):
        return sympy.expand(multiple / c) + block
    return rest - block * c


def _divide_common_factor(node: sympy.Expr, ranges: Ranges) -> sympy.Expr | None:
    """With g the gcd of the divisor d and every variable term's coefficient: ``(g*x + r) // d -> x // (d/g)``
    and ``(g*x + r) % d -> g * (x % (d/g)) + r`` for an integer x and 0 <= r < g (since r/g < 1 never moves x
    past a multiple of d/g). A SIMD lane's pixel ``(4*q + k) // 28`` becomes ``q // 7``, the same in every lane."""
    a, b = node.args
    d = int(b)
    terms = sympy.Add.make_args(sympy.expand(a))
    constant = sum((int(t) for t in terms if t.is_Integer), 0)
    variable = [t for t in terms if not t.is_Integer]
    g = d
    for t in variable:
        coeff, _ = t.as_coeff_Mul()
        if not coeff.is_Integer:
            return None
        g = int(np.gcd(g, int(coeff)))
    if not variable or g <= 1:
        return None
    shift, r = divmod(constant, g)
    x = sympy.expand(sympy.Add(*variable) / g) + shift
    n = d // g
    if isinstance(node, FloorDiv):
        return x if n == 1 else _fold_div_mod(FloorDiv(x, n), ranges)
    return sympy.Integer(r) if n == 1 else g * _fold_div_mod(FloorMod(x, n), ranges) + r


def simplify(expr: sympy.Basic, ranges: Ranges) -> sympy.Basic:
    """Simplify an index expression or condition using the ranges of its variables."""
    if expr.is_Atom:
        return expr
    args = [simplify(a, ranges) for a in expr.args]
    node = expr.func(*args) if any(x is not y for x, y in zip(args, expr.args, strict=True)) else expr
    if isinstance(node, FloorDiv | FloorMod):
        return _fold_div_mod(node, ranges)
    if isinstance(node, sympy.Min | sympy.Max):
        return _fold_min_max(node, ranges)
    if node.is_Add:
        return _recombine_div_mod(node)
    if isinstance(node, sympy.core.relational.Relational):
        verdict = prove(node, ranges)
        return node if verdict is None else sympy.true if verdict else sympy.false
    return node


def _recombine_div_mod(node: sympy.Expr) -> sympy.Expr:
    """``c*a*(x // a) + c*(x % a) -> c*x``: what unravelling an index and flattening it again leaves."""
    terms = list(sympy.Add.make_args(node))
    for t in terms:
        coeff, rest = t.as_coeff_Mul()
        if isinstance(rest, FloorMod) and rest.args[1].is_Integer:
            x, a = rest.args
            partner = coeff * a * FloorDiv(x, a)
            if partner in terms:
                terms.remove(t)
                terms.remove(partner)
                return _recombine_div_mod(sympy.Add(*terms, coeff * x))
    return node


def _fold_min_max(node: sympy.Expr, ranges: Ranges) -> sympy.Expr:
    a, *others = node.args
    if len(others) != 1:
        return node
    b = others[0]
    lo, hi = bounds(a - b, ranges)
    a_le_b = hi is not None and hi <= 0
    a_ge_b = lo is not None and lo >= 0
    if isinstance(node, sympy.Min):
        return a if a_le_b else b if a_ge_b else node
    return b if a_le_b else a if a_ge_b else node


def prove(cond: sympy.Basic, ranges: Ranges) -> bool | None:
    """True or False when the ranges decide ``cond``; None when they do not."""
    if cond is sympy.true or cond is True:
        return True
    if cond is sympy.false or cond is False:
        return False
    if isinstance(cond, sympy.And):
        verdicts = [prove(c, ranges) for c in cond.args]
        if False in verdicts:
            return False
        return True if all(v is True for v in verdicts) else None
    if isinstance(cond, sympy.Or):
        verdicts = [prove(c, ranges) for c in cond.args]
        if True in verdicts:
            return True
        return False if all(v is False for v in verdicts) else None
    if isinstance(cond, sympy.Not):
        inner = prove(cond.args[0], ranges)
        return None if inner is None else not inner
    if isinstance(cond, sympy.core.relational.Relational):
        lo, hi = bounds(sympy.expand(cond.lhs - cond.rhs), ranges)
        op = cond.rel_op
        checks = {
            "<": (hi is not None and hi < 0, lo is not None and lo >= 0),
            "<=": (hi is not None and hi <= 0, lo is not None and lo > 0),
            ">": (lo is not None and lo > 0, hi is not None and hi <= 0),
            ">=": (lo is not None and lo >= 0, hi is not None and hi < 0),
            "==": (lo == hi == 0, (lo is not None and lo > 0) or (hi is not None and hi < 0)),
            "!=": ((lo is not None and lo > 0) or (hi is not None and hi < 0), lo == hi == 0),
        }
        holds, fails = checks[op]
        return True if holds else False if fails else None
    return None


def in_bounds(indices: tuple[sympy.Expr, ...], shape: tuple[int, ...]) -> sympy.Basic:
    """The condition that ``indices`` address an element of a tensor of ``shape``."""
    terms = []
    for idx, dim in zip(indices, shape, strict=True):
        terms.append(sympy.Ge(idx, 0))
        terms.append(sympy.Lt(idx, dim))
    return sympy.And(*terms)


# ------------------------------------------------------------------------------------ numpy evaluation

_NARY = {
    sympy.Add: np.add,
    sympy.Mul: np.multiply,
    sympy.Min: np.minimum,
    sympy.Max: np.maximum,
    sympy.And: np.logical_and,
    sympy.Or: np.logical_or,
}
_BINARY = {
    FloorDiv: np.floor_divide,
    FloorMod: np.mod,
    sympy.StrictLessThan: np.less,
    sympy.LessThan: np.less_equal,
    sympy.StrictGreaterThan: np.greater,
    sympy.GreaterThan: np.greater_equal,
    sympy.Equality: np.equal,
    sympy.Unequality: np.not_equal,
}


def evaluate_index(expr: sympy.Basic, env: Mapping[sympy.Symbol, Any]) -> Any:
    """Evaluate an index expression or condition over numpy arrays bound to its variables."""
    if expr is sympy.true:
        return np.bool_(True)
    if expr is sympy.false:
        return np.bool_(False)
    if expr.is_Integer:
        return np.int64(int(expr))
    if expr.is_Symbol:
        if expr not in env:
            raise TEError(f"index variable {expr} is not bound here")
        return env[expr]
    func = expr.func
    if func in _NARY:
        values = [evaluate_index(a, env) for a in expr.args]
        result = values[0]
        for v in values[1:]:
            result = _NARY[func](result, v)
        return result
    if func in _BINARY:
        return _BINARY[func](evaluate_index(expr.args[0], env), evaluate_index(expr.args[1], env))
    if func is sympy.Abs:
        return np.abs(evaluate_index(expr.args[0], env))
    if func is sympy.Not:
        return np.logical_not(evaluate_index(expr.args[0], env))
    raise TEError(f"cannot evaluate index expression {expr} (only integer arithmetic is allowed)")
