"""Symbolic index math: folding, proofs, and that simplification never changes a value."""

import numpy as np
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from kgen.te import index as ix

i, j, k = ix.index_var("i"), ix.index_var("j"), ix.index_var("k")


def test_tiling_div_mod_fold_away():
    ranges = {i: (0, 9), j: (0, 3)}
    assert ix.simplify(ix.floordiv(4 * i + j, 4), ranges) == i
    assert ix.simplify(ix.floormod(4 * i + j, 4), ranges) == j
    assert ix.simplify(ix.floordiv(8 * i + 4 + j, 4), ranges) == 2 * i + 1


def test_div_mod_kept_when_ranges_do_not_decide():
    ranges = {i: (0, 9), j: (0, 4)}
    assert ix.simplify(ix.floordiv(4 * i + j, 4), ranges) == ix.floordiv(4 * i + j, 4)
    # multiples of the divisor never change a remainder
    assert ix.simplify(ix.floormod(4 * i + j, 4), ranges) == ix.floormod(j, 4)


def test_unravel_then_flatten_is_the_identity():
    ranges = {i: (0, 99)}
    flat = 7 * ix.floordiv(i, 7) + ix.floormod(i, 7) + 3
    assert ix.simplify(flat, ranges) == i + 3
    assert ix.simplify(2 * flat, ranges) == 2 * i + 6


def test_constants_fold():
    assert ix.floordiv(-7, 2) == -4
    assert ix.floormod(-7, 2) == 1
    assert ix.floordiv(i, 1) == i
    assert ix.floordiv(ix.floordiv(i, 2), 3) == ix.floordiv(i, 6)


def test_prove_bounds_checks():
    ranges = {i: (0, 9)}
    assert ix.prove(sympy.Lt(i + 2, 12), ranges) is True
    assert ix.prove(sympy.Ge(i - 1, 0), ranges) is None
    assert ix.prove(sympy.Lt(i, 0), ranges) is False
    assert ix.simplify(ix.in_bounds((i + 1,), (11,)), ranges) is sympy.true


def test_bounds_of_min_max_abs():
    ranges = {i: (0, 9)}
    assert ix.bounds(sympy.Min(sympy.Max(i - 3, 0), 4), ranges) == (0, 4)
    assert ix.bounds(sympy.Abs(i - 3), ranges) == (0, 6)
    assert ix.bounds(3 - sympy.Abs(3 - sympy.Abs(i - 2)), ranges) == (-1, 3)


def test_non_integer_index_rejected():
    import pytest

    from kgen.errors import TEError

    with pytest.raises(TEError, match="integer expression"):
        ix.as_index(1.5)


@st.composite
def index_exprs(draw, depth=0):
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from([i, j, k, sympy.Integer(draw(st.integers(-5, 9)))]))
    kind = draw(st.sampled_from(["add", "mul", "div", "mod", "min", "max"]))
    a = draw(index_exprs(depth + 1))
    if kind == "add":
        return a + draw(index_exprs(depth + 1))
    if kind == "mul":
        return a * draw(st.integers(-3, 5))
    if kind in ("div", "mod"):
        fn = ix.floordiv if kind == "div" else ix.floormod
        return fn(a, draw(st.integers(1, 6)))
    b = draw(index_exprs(depth + 1))
    return sympy.Min(a, b) if kind == "min" else sympy.Max(a, b)


@settings(max_examples=200, deadline=None)
@given(expr=index_exprs(), ext=st.tuples(st.integers(1, 7), st.integers(1, 7), st.integers(1, 7)))
def test_simplify_preserves_value_and_bounds_hold(expr, ext):
    ranges = {v: (0, e - 1) for v, e in zip((i, j, k), ext, strict=True)}
    grids = np.meshgrid(*(np.arange(e) for e in ext), indexing="ij")
    env = dict(zip((i, j, k), grids, strict=True))
    before = np.broadcast_to(ix.evaluate_index(expr, env), grids[0].shape)
    after = np.broadcast_to(ix.evaluate_index(ix.simplify(expr, ranges), env), grids[0].shape)
    assert np.array_equal(before, after)
    lo, hi = ix.bounds(expr, ranges)
    assert lo is None or before.min() >= lo
    assert hi is None or before.max() <= hi


def test_common_factor_of_divisor_and_coefficients_divides_out():
    """(4q + 3) // 28 is q // 7 in every SIMD lane, so 4 neighbouring pixels of a merged H*W axis are one read."""
    q = ix.index_var("q")
    ranges = {q: (0, 195)}
    assert ix.simplify(ix.floordiv(4 * q + 3, 28), ranges) == ix.floordiv(q, 7)
    assert ix.simplify(ix.floormod(4 * q + 3, 28), ranges) == 4 * ix.floormod(q, 7) + 3
    assert ix.simplify(ix.floordiv(6 * q + 7, 4), ranges) == ix.floordiv(3 * q + 3, 2)
