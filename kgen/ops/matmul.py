"""matmul (numpy / ONNX MatMul semantics, batched with broadcasting) and gemm (ONNX Gemm)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from kgen import te
from kgen.errors import OpError
from kgen.ops.common import broadcast, check_rank
from kgen.ops.registry import Attr, Input, OpDef, register


def _matmul(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    a, b = inputs
    check_rank("matmul", "A", a.shape, min_rank=1)
    check_rank("matmul", "B", b.shape, min_rank=1)
    a_shape = (1, *a.shape) if a.ndim == 1 else a.shape  # a vector is a row
    b_shape = (*b.shape, 1) if b.ndim == 1 else b.shape  # a vector is a column
    m, k = a_shape[-2:]
    k2, n = b_shape[-2:]
    if k != k2:
        raise OpError("matmul", f"A has {k} columns but B has {k2} rows (inner dimensions must match)")
    batch = broadcast("matmul", [("A batch", a_shape[:-2]), ("B batch", b_shape[:-2])])
    out_shape = (*batch, *([m] if a.ndim > 1 else []), *([n] if b.ndim > 1 else []))
    r = te.reduce_axis(k, "k")

    def body(*idx):
        bidx = idx[: len(batch)]
        rest = list(idx[len(batch) :])
        i = rest.pop(0) if a.ndim > 1 else 0
        j = rest.pop(0) if b.ndim > 1 else 0
        a_idx = (*te.broadcast_indices(a_shape[:-2], bidx), i, r) if a.ndim > 1 else (r,)
        b_idx = (*te.broadcast_indices(b_shape[:-2], bidx), r, j) if b.ndim > 1 else (r,)
        return te.sum(a[a_idx] * b[b_idx], r)

    # vector · vector: numpy gives a scalar; kgen tensors have rank >= 1, so the result has shape (1,)
    return te.compute(out_shape or (1,), body, name="matmul")


def _matmul_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    out = np.matmul(arrays[0], arrays[1])
    return out.reshape(1) if out.ndim == 0 else out


register(
    OpDef(
        name="matmul",
        family="matmul",
        doc="Matrix product with numpy semantics: batch dimensions broadcast, 1-D operands are vectors.",
        inputs=(Input("A"), Input("B", weight=True)),
        attrs=(),
        builder=_matmul,
        reference_fn=_matmul_ref,
    )
)


def _gemm(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    a, b = inputs[:2]
    check_rank("gemm", "A", a.shape, rank=2)
    check_rank("gemm", "B", b.shape, rank=2)
    ta, tb = attrs["transA"], attrs["transB"]
    m, k = a.shape[::-1] if ta else a.shape
    k2, n = b.shape[::-1] if tb else b.shape
    if k != k2:
        a_name, b_name = "Aᵀ" if ta else "A", "Bᵀ" if tb else "B"
        raise OpError("gemm", f"{a_name} has {k} columns but {b_name} has {k2} rows")
    r = te.reduce_axis(k, "k")
    prod = te.compute(
        (m, n),
        lambda i, j: te.sum((a[r, i] if ta else a[i, r]) * (b[j, r] if tb else b[r, j]), r),
        name="gemm_mm",
    )
    alpha, beta = attrs["alpha"], attrs["beta"]
    if len(inputs) == 2:
        return te.compute((m, n), lambda i, j: prod[i, j] * alpha, name="gemm")
    c = inputs[2]
    if not te.broadcasts_to(c.shape, (m, n)):
        raise OpError("gemm", f"C has shape {c.shape}, which does not broadcast to the result {(m, n)}")
    return te.compute(
        (m, n), lambda i, j: prod[i, j] * alpha + c[te.broadcast_indices(c.shape, (i, j))] * beta, name="gemm"
    )


def _gemm_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    a = arrays[0].T if attrs["transA"] else arrays[0]
    b = arrays[1].T if attrs["transB"] else arrays[1]
    out = attrs["alpha"] * (a @ b)
    if len(arrays) == 3:
        out = out + attrs["beta"] * arrays[2]
    return out


register(
    OpDef(
        name="gemm",
        family="matmul",
        doc="Y = alpha · A' · B' + beta · C, where A' and B' are optionally transposed; C broadcasts to Y.",
        inputs=(Input("A"), Input("B", weight=True), Input("C", optional=True)),
        attrs=(
            Attr("alpha", "float", 1.0, "scale of A·B"),
            Attr("beta", "float", 1.0, "scale of C"),
            Attr("transA", "int", 0, "transpose A first", choices=(0, 1)),
            Attr("transB", "int", 0, "transpose B first", choices=(0, 1)),
        ),
        builder=_gemm,
        reference_fn=_gemm_ref,
    )
)
