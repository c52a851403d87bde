"""Packing a weight into the layout a micro-kernel reads it in (the CPU templates' ``pack`` knob).

A register tile reads, per reduction step, ``block`` neighbouring values of a weight along one tiled axis: a
conv's filter for ``tile_a`` output channels (splatted), a matmul's B for ``tile_b`` columns (4-wide reads).
In the weight's own layout those values lie a whole row apart (a conv's ``C*kH*kW`` floats, a matmul's ``N``),
and a tile's reads over its whole reduction span the tensor; a power-of-two row length maps them all to a few
cache sets. Packed, the weight becomes ``[ceil(D / block), ...the other dimensions..., block]``: what one tile
reads over its reduction is one contiguous panel, in the order it is read.

Only a ``constant`` input is packed (a weight: in a model an initializer), by a kernel that runs once per set
of inputs and is not timed (``ir.Program.prepare``); the stage then reads the packed copy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import sympy

from kgen.scheduling.partition import Stage
from kgen.te import index as ix
from kgen.te.expr import Expr, Load, map_children, walk
from kgen.te.tensor import PlaceholderOp, Tensor, compute


@dataclass(frozen=True)
class Packing:
    """``tensor``'s dimension ``dim`` (indexed by a tiled axis and nothing else) split into blocks of ``block``."""

    tensor: Tensor
    dim: int
    block: int


def _weight_reads(stage: Stage) -> dict[int, list[Load]]:
    """The reduction's reads of constant inputs (weights), by tensor."""
    reads: dict[int, list[Load]] = {}
    if stage.reduce is not None:
        for n in walk(stage.reduce.body):
            if isinstance(n, Load) and isinstance(n.tensor.op, PlaceholderOp) and n.tensor.op.constant:
                reads.setdefault(id(n.tensor), []).append(n)
    return reads


def reads_weight(stage: Stage) -> bool:
    """Whether the stage's reduction reads a weight, which a tile may read packed."""
    return bool(_weight_reads(stage))


def find(stage: Stage, tiled: dict[sympy.Symbol, int]) -> Packing | None:
    """The weight to pack for a tile of ``tiled`` (axis variable -> tile length): a constant input whose reads
    all index one dimension by exactly one tiled axis (tile longer than 1) and depend on no other tiled axis."""
    for reads in _weight_reads(stage).values():
        for var, block in tiled.items():
            dims = {_dim_of(n, var, tiled) for n in reads}
            if block > 1 and len(dims) == 1 and None not in dims:
                return Packing(reads[0].tensor, dims.pop(), block)  # type: ignore[arg-type]
    return None


def _dim_of(load: Load, var: sympy.Symbol, tiled: dict[sympy.Symbol, int]) -> int | None:
    """The dimension ``load`` indexes by ``var`` alone, where no other index, its guard or another tiled axis
    depends on it; else None."""
    dims = [d for d, e in enumerate(load.indices) if e == var]
    if len(dims) != 1:
        return None
    others = [e for d, e in enumerate(load.indices) if d != dims[0]] + [load.guard]
    symbols = set().union(*(e.free_symbols for e in others))
    if var in symbols or symbols & (set(tiled) - {var}):
        return None
    return dims[0]


def packed_tensor(p: Packing) -> Tensor:
    """The packed copy of ``p.tensor``: ``[ceil(D / block), ...other dimensions..., block]``, zero past ``D``."""
    shape = list(p.tensor.shape)
    extent = shape.pop(p.dim)
    blocks = math.ceil(extent / p.block)

    def element(outer, *rest):
        *others, inner = rest
        indices = list(others)
        indices.insert(p.dim, outer * p.block + inner)
        return p.tensor.guarded(tuple(indices))

    return compute((blocks, *shape, p.block), element, name=f"{p.tensor.name}_packed")


def read_packed(stage: Stage, p: Packing, packed: Tensor) -> Stage:
    """``stage`` with its reads of ``p.tensor`` turned into reads of ``packed``."""

    def rewrite(e: Expr) -> Expr:
        if isinstance(e, Load) and e.tensor is p.tensor:
            i = e.indices[p.dim]
            others = [x for d, x in enumerate(e.indices) if d != p.dim]
            indices = (ix.floordiv(i, p.block), *others, ix.floormod(i, p.block))
            return dataclasses.replace(e, tensor=packed, indices=indices)
        return map_children(e, rewrite)

    assert stage.reduce is not None
    return dataclasses.replace(stage, reduce=rewrite(stage.reduce))
