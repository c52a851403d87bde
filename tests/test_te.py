"""Tensor-expression construction rules and the interpreter's semantics."""

import math

import numpy as np
import pytest
import sympy

from kgen import te
from kgen.errors import TEError


def test_guarded_load_reads_default_outside_and_drops_provable_checks():
    a = te.placeholder((3,), name="A")
    padded = te.compute((5,), lambda i: a.guarded((i - 1,), default=-1.0), name="P")
    assert te.evaluate(padded, {a: np.array([1, 2, 3])}).tolist() == [-1, 1, 2, 3, -1]
    inner = te.compute((3,), lambda i: a.guarded((i,)), name="Q")
    assert inner.op.body.guard is sympy.true


def test_unguarded_read_that_may_leave_its_tensor_is_rejected():
    a = te.placeholder((3,), name="A")
    with pytest.raises(TEError, match=r"read of A\[i0 \+ 1\] may fall outside its shape \(3,\)"):
        te.compute((3,), lambda i: a[i + 1])


def test_reduction_must_be_the_whole_body():
    a = te.placeholder((3, 4), name="A")
    k = te.reduce_axis(4, "k")
    with pytest.raises(TEError, match="reduction must be the whole body"):
        te.compute((3,), lambda i: te.sum(a[i, k], k) + 1.0)


def test_axis_of_another_compute_is_rejected():
    a = te.placeholder((3, 4), name="A")
    k = te.reduce_axis(4, "k")
    with pytest.raises(TEError, match="uses k, which is not an axis"):
        te.compute((3,), lambda i: a[i, k])


def test_axis_names_must_be_distinct():
    a = te.placeholder((3, 4), name="A")
    k = te.reduce_axis(4, "i0")
    with pytest.raises(TEError, match="axis names must be distinct"):
        te.compute((3,), lambda i: te.sum(a[i, k], k))


def test_wrong_arity_and_dtype_mismatch():
    a = te.placeholder((3, 4), name="A")
    with pytest.raises(TEError, match="A has 2 dimensions but was indexed with 1"):
        te.compute((3,), lambda i: a[i])
    n = te.placeholder((3,), dtype="int32", name="N")
    with pytest.raises(TEError, match="different dtypes"):
        te.compute((3,), lambda i: a[i, 0] + n[i])


def test_select_cast_and_math():
    a = te.placeholder((4,), name="A")
    x = np.array([-2.0, -0.5, 0.5, 3.7], dtype=np.float32)
    out = te.compute((4,), lambda i: te.select(a[i] > 0.0, te.sqrt(a[i]), te.exp(a[i])))
    np.testing.assert_allclose(te.evaluate(out, {a: x}), np.where(x > 0, np.sqrt(np.abs(x)), np.exp(x)), rtol=1e-6)
    as_int = te.compute((4,), lambda i: te.cast(a[i], "int32"))
    assert te.evaluate(as_int, {a: x}).tolist() == [-2, 0, 0, 3]  # truncates toward zero
    by_index = te.compute((4,), lambda i: te.select(i < 2, 1.0, 0.0))
    assert te.evaluate(by_index, {}).tolist() == [1, 1, 0, 0]


def test_reductions_max_min_with_infinite_identity():
    a = te.placeholder((2, 3), name="A")
    r = te.reduce_axis(3, "r")
    hi = te.compute((2,), lambda i: te.max(a[i, r], r))
    lo = te.compute((2,), lambda i: te.min(a[i, r], r))
    x = np.array([[1, 5, 2], [-1, -7, 0]], dtype=np.float32)
    assert te.evaluate(hi, {a: x}).tolist() == [5, 0]
    assert te.evaluate(lo, {a: x}).tolist() == [1, -7]
    assert te.max(a[0, r], r).identity == -math.inf


def test_broadcasting_shapes_and_indices():
    assert te.broadcast_shapes((3, 1), (4,)) == (3, 4)
    with pytest.raises(TEError, match="do not broadcast"):
        te.broadcast_shapes((3,), (4,))


def test_feeds_are_checked():
    a = te.placeholder((3,), name="A")
    out = te.compute((3,), lambda i: a[i] * 2.0)
    with pytest.raises(TEError, match="no value fed for placeholder A"):
        te.evaluate(out, {})
    with pytest.raises(TEError, match=r"A expects shape \(3,\), got \(4,\)"):
        te.evaluate(out, {a: np.zeros(4)})
