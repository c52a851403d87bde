"""Scaled dot-product attention, softmax(Q · Kᵀ · scale + mask) · V, as one op.

K comes transposed, [..., D, T], as exporters hand it to the scores' MatMul. Its TE is the unfused chain (the
scores, a softmax over the keys with its probabilities stored, the product with V), which any template lowers
as five kernels, as the graph's own MatMul, Softmax and MatMul would be; the output
compute carries an ``AttentionPattern`` so that a template with a fused attention kernel (online softmax over
blocks of keys, ``kgen.scheduling.templates.attention``) lowers the whole op as one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from kgen import te
from kgen.errors import OpError
from kgen.ops.matmul import _matmul
from kgen.ops.registry import Attr, Input, OpDef, register
from kgen.ops.softmax import LOWEST, TINIEST, _softmax


@dataclasses.dataclass(frozen=True)
class AttentionPattern:
    """The operands of one attention: Q [*batch, S, D], K [*batch, D, T], V [*batch, T, Dv] and an additive mask
    that broadcasts to [*batch, S, T] (or None)."""

    q: te.Tensor
    k: te.Tensor
    v: te.Tensor
    mask: te.Tensor | None
    scale: float

    @property
    def batch(self) -> tuple[int, ...]:
        return self.q.shape[:-2]

    @property
    def sizes(self) -> tuple[int, int, int, int]:
        """S (queries), T (keys), D (the dot products' length), Dv (values per key)."""
        return self.q.shape[-2], self.k.shape[-1], self.q.shape[-1], self.v.shape[-1]


def _check(q: te.Tensor, k: te.Tensor, v: te.Tensor, mask: te.Tensor | None) -> None:
    for name, t in (("Q", q), ("K", k), ("V", v)):
        if t.ndim < 2:
            raise OpError("attention", f"{name} has rank {t.ndim}; it needs at least 2 ([..., rows, columns])")
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        raise OpError(
            "attention",
            f"Q, K and V need the same batch dimensions, got {q.shape[:-2]}, {k.shape[:-2]}, {v.shape[:-2]}",
        )
    if q.shape[-1] != k.shape[-2]:
        raise OpError("attention", f"Q has {q.shape[-1]} columns but K (transposed keys) has {k.shape[-2]} rows")
    if k.shape[-1] != v.shape[-2]:
        raise OpError("attention", f"K has {k.shape[-1]} keys but V has {v.shape[-2]} rows")
    scores = (*q.shape[:-1], k.shape[-1])
    if mask is not None and not te.broadcasts_to(mask.shape, scores):
        raise OpError("attention", f"the mask of shape {mask.shape} does not broadcast to the scores' {scores}")


def _attention(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    q, k, v = inputs[:3]
    mask = inputs[3] if len(inputs) > 3 else None
    _check(q, k, v, mask)
    scale = attrs["scale"]
    scores = _matmul([q, k], {})

    def biased(*idx):
        s = scores[idx] * scale
        return s if mask is None else s + mask[te.broadcast_indices(mask.shape, idx)]

    probs = _softmax([te.compute(scores.shape, biased, name="attention_scores")], {"axis": -1}, zero_masked_rows=True)
    probs = dataclasses.replace(probs, op=dataclasses.replace(probs.op, materialize=True))  # not one exp per column
    out = _matmul([probs, v], {})
    pattern = AttentionPattern(q, k, v, mask, scale)
    return dataclasses.replace(out, name="attention", op=dataclasses.replace(out.op, pattern=pattern))


def _attention_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    q, k, v = arrays[:3]
    s = (q.astype(np.float64) @ k) * attrs["scale"]
    if len(arrays) > 3:
        s = s + arrays[3]
    e = np.exp(s - np.maximum(s.max(axis=-1, keepdims=True), LOWEST))  # a row of -inf scores gives zeros
    return ((e / np.maximum(e.sum(axis=-1, keepdims=True), TINIEST)) @ v).astype(q.dtype)


def flops(pattern: AttentionPattern) -> int:
    """Multiply-adds of both products, 2 flops each."""
    s, t, d, dv = pattern.sizes
    return 2 * math.prod(pattern.batch) * s * t * (d + dv)


register(
    OpDef(
        name="attention",
        family="attention",
        doc="softmax(Q · K · scale + mask) · V over the last axis, K given transposed ([..., D, T]); a row whose "
        "every score is -inf gives zeros.",
        inputs=(Input("Q"), Input("K"), Input("V"), Input("mask", optional=True)),
        attrs=(Attr("scale", "float", 1.0, "the factor of the dot products (1 / sqrt(D) in most models)"),),
        builder=_attention,
        reference_fn=_attention_ref,
        domains=(("mask", "attention mask"),),
    )
)
