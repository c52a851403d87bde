"""Multidirectional (numpy / ONNX) broadcasting of shapes and of indices."""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from kgen.errors import TEError


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """The shape that all ``shapes`` broadcast to, aligning them on the right."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank):
        dims = {s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0}
        dims.discard(1)
        if len(dims) > 1:
            listed = " and ".join(str(tuple(s)) for s in shapes)
            raise TEError(f"shapes {listed} do not broadcast (dimension {k} of the result)")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    """Whether ``shape`` broadcasts to ``target`` without changing it (unidirectional, as ONNX Gemm's C)."""
    if len(shape) > len(target):
        return False
    return all(d in (1, t) for d, t in zip(reversed(shape), reversed(target), strict=False))


def broadcast_indices(shape: Sequence[int], out_indices: Sequence[sympy.Expr]) -> tuple[sympy.Expr, ...]:
    """Indices into a tensor of ``shape`` for an element of the broadcast result at ``out_indices``."""
    tail = out_indices[len(out_indices) - len(shape) :]
    return tuple(sympy.Integer(0) if d == 1 else i for d, i in zip(shape, tail, strict=True))
