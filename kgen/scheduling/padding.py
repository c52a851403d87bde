"""Padding an input so that a reduction reads it without bounds checks (the ``pad`` knob).

A padded convolution or pooling reads its image through a guard: ``x[i] if 0 <= i < extent else default``. On a
small image (7x7, 14x14) almost every tile touches the border, so interior versioning (``versioning``) rarely
applies, and each read of a SIMD tile becomes a lane mask or a gather. Padded, the image lives in a larger
tensor whose border, as far as the reads reach past each edge, holds ``default``; the reduction reads it
unguarded: whole 4-wide reads, no masks. The border is filled once (a ``prepare`` kernel, like a packed weight);
on every run a kernel copies the image into the interior, a window of the padded buffer (``Buffers.windows``),
with no guards either. It moves one image's worth of data, which the reduction reads once per output channel.
A backend whose kernels cannot write a window of a tensor (WebGL: a fragment shader covers its whole output
texture) makes the whole padded copy on every run instead (``padded_copy``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy

from kgen.scheduling.partition import Stage
from kgen.scheduling.space import Knob, flag
from kgen.te import index as ix
from kgen.te.expr import Const, Expr, Load, map_children, walk
from kgen.te.tensor import PlaceholderOp, Tensor, compute


@dataclass(frozen=True)
class Padding:
    """``tensor`` widened by ``before[d]`` and ``after[d]`` elements of ``default`` along each dimension ``d``."""

    tensor: Tensor
    before: tuple[int, ...]
    after: tuple[int, ...]
    default: float


def input_reads(stage: Stage) -> list[list[Load]]:
    """The reduction's reads of each (non-constant) input, one list per input tensor, in order."""
    assert stage.reduce is not None
    reads: dict[int, list[Load]] = {}
    for n in walk(stage.reduce.body):
        if isinstance(n, Load) and isinstance(n.tensor.op, PlaceholderOp) and not n.tensor.op.constant:
            reads.setdefault(id(n.tensor), []).append(n)
    return list(reads.values())


def bounds_guard(load: Load, ranges: ix.Ranges) -> bool:
    """Whether ``load``'s guard is its tensor's bounds check and nothing more."""
    return ix.simplify(ix.in_bounds(load.indices, load.tensor.shape), ranges) == load.guard


def find(stage: Stage) -> Padding | None:
    """The input to pad: a (non-constant) input the reduction reads only through bounds guards, all with one
    default, whose indices reach past its edges by a bounded amount. A guard that tests more than the bounds
    (a strided transposed convolution's grid test) leaves its tensor unpadded."""
    if stage.reduce is None:
        return None
    ranges = stage.ranges
    for loads in input_reads(stage):
        tensor = loads[0].tensor
        if any(n.guard is sympy.true for n in loads) or len({n.default for n in loads}) != 1:
            continue
        if not all(bounds_guard(n, ranges) for n in loads):
            continue
        reach = [[ix.bounds(n.indices[d], ranges) for n in loads] for d in range(len(tensor.shape))]
        if any(lo is None or hi is None for dim in reach for lo, hi in dim):
            continue
        before = tuple(max(0, -min(lo for lo, _ in dim)) for dim in reach)
        after = tuple(
            max(0, max(hi for _, hi in dim) - (extent - 1)) for dim, extent in zip(reach, tensor.shape, strict=True)
        )
        if any(before) or any(after):
            return Padding(tensor, before, after, loads[0].default)
    return None


#: floats in a 16-byte SIMD vector: ``align`` pads rows to a multiple of this
VECTOR_FLOATS = 4


def aligned_length(n: int) -> int:
    """``n`` rounded up to a whole number of 4-wide vectors: the length ``align`` gives a row of ``n`` floats."""
    return n + -n % VECTOR_FLOATS


def find_unaligned(stage: Stage) -> Padding | None:
    """The input to align (``align``): a (non-constant) input the reduction reads without guards, along the
    stage's last axis (a 1x1 convolution's image), whose rows are not a whole number of 4-wide vectors long
    (7, 14 pixels). Most rows then start off a 16-byte boundary, and a tile's 4-wide reads straddle cache
    lines: a 1x1 conv 2048->512 on 7x7 ran 1.7x faster on rows of 8 (one pixel more per row).
    Padded at the end of each row to a multiple of 4, it is read aligned. Not where ``pad`` applies."""
    if stage.reduce is None or find(stage) is not None:
        return None
    last = stage.axes[-1].var
    for loads in input_reads(stage):
        tensor = loads[0].tensor
        extent = tensor.shape[-1]
        if len(tensor.shape) < 2 or extent % VECTOR_FLOATS == 0 or any(n.guard is not sympy.true for n in loads):
            continue
        if all(last in sympy.sympify(n.indices[-1]).free_symbols for n in loads):
            rank = len(tensor.shape)
            return Padding(tensor, (0,) * rank, (0,) * (rank - 1) + (aligned_length(extent) - extent,), 0.0)
    return None


#: the ``align`` knob (on by default), for a stage that reads an input with unaligned rows (its own, or its
#: compact copy's: ``subsampling.unaligned``)
ALIGN = flag(
    "align", "read an input whose rows are not a multiple of 4 floats long with aligned rows (not with merge_hw)", True
)


def pad_knobs(stage: Stage) -> list[Knob]:
    """The ``pad`` flag, for a stage that reads an input it could pad."""
    return [flag("pad", "read the padded input from a padded copy, with no bounds checks")] if find(stage) else []


def requested(stage: Stage, config: Mapping[str, Any]) -> Padding | None:
    """The padding a config asks for (``pad``), or None."""
    return find(stage) if config.get("pad") else None


def aligns(config: Mapping[str, Any]) -> bool:
    """Whether a config reads unaligned rows aligned (``align``). Merged pixels (``merge_hw``) are read across
    rows, which padded rows would break apart, so they are read as they are."""
    return bool(config.get("align")) and not config.get("merge_hw")


def requested_alignment(stage: Stage, config: Mapping[str, Any]) -> Padding | None:
    """The row alignment a config asks for (``align``), or None."""
    return find_unaligned(stage) if aligns(config) else None


def _padded_shape(p: Padding) -> tuple[int, ...]:
    return tuple(e + b + a for e, b, a in zip(p.tensor.shape, p.before, p.after, strict=True))


def padded_tensors(p: Padding) -> tuple[Tensor, Tensor]:
    """(the padded tensor, every element ``default``: its fill; the interior: a copy of ``p.tensor`` that lives
    in the padded tensor's buffer at offset ``p.before``)."""
    name = p.tensor.name
    padded = compute(_padded_shape(p), lambda *_: Const(p.default, p.tensor.dtype), name=f"{name}_padded")
    interior = compute(p.tensor.shape, lambda *i: p.tensor[i], name=f"{name}_interior")
    return padded, interior


def padded_copy(p: Padding) -> Tensor:
    """The padded tensor, border and all, as one compute: for a backend whose kernels write whole tensors (a
    WebGL fragment shader covers its whole output texture), made on every run."""

    def element(*indices):
        return p.tensor.guarded(tuple(i - b for i, b in zip(indices, p.before, strict=True)), p.default)

    return compute(_padded_shape(p), element, name=f"{p.tensor.name}_padded")


def read_padded(stage: Stage, p: Padding, padded: Tensor) -> Stage:
    """``stage`` with its guarded reads of ``p.tensor`` turned into unguarded reads of ``padded``."""

    def rewrite(e: Expr) -> Expr:
        if isinstance(e, Load) and e.tensor is p.tensor:
            indices = tuple(i + b for i, b in zip(e.indices, p.before, strict=True))
            return dataclasses.replace(e, tensor=padded, indices=indices, guard=sympy.true)
        return map_children(e, rewrite)

    assert stage.reduce is not None
    return dataclasses.replace(stage, reduce=rewrite(stage.reduce))
