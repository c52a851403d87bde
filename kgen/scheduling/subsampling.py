"""Reading a strided input through a compact copy (the ``subsample`` knob).

A 1x1 convolution with stride 2 (ResNet-50's downsampling shortcuts) reads its image at ``x[n, c, 2h, 2w]``: a
SIMD tile's four neighbouring outputs read every other pixel, so each 4-wide read is two reads and a shuffle,
and half of every cache line fetched is never used, once per block of output channels. Subsampled, a kernel
first copies the pixels read into a compact tensor, ``x_sub[n, c, h, w] = x[n, c, 2h, 2w]`` (a quarter of the
image, moved once per run), and the reduction reads that one at stride 1, as a stride-1 convolution does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy

from kgen.scheduling.partition import Stage
from kgen.scheduling.space import Knob, flag
from kgen.te.expr import Expr, Load, map_children, walk
from kgen.te.tensor import PlaceholderOp, Tensor, compute


@dataclass(frozen=True)
class Subsampling:
    """``tensor`` read along dimension ``d`` only at ``strides[d] * variables[d]`` (a variable of extent
    ``shape[d]``); dimensions of stride 1 are read as they are."""

    tensor: Tensor
    indices: tuple[sympy.Expr, ...]  # the one index expression per dimension that every read uses
    strides: tuple[int, ...]
    shape: tuple[int, ...]  # the compact tensor's


def _strided(index: Any, extents: Mapping[sympy.Symbol, int]) -> tuple[int, sympy.Symbol] | None:
    """(s, v) where ``index`` is ``s * v`` for an integer s > 1 and a variable v (terms in variables of extent 1,
    a 1x1 window's, being 0), else None."""
    index = sympy.sympify(index).subs({v: 0 for v, e in extents.items() if e == 1})
    if isinstance(index, sympy.Mul) and len(index.args) == 2:
        s, v = sorted(index.args, key=lambda a: not a.is_Integer)
        if s.is_Integer and int(s) > 1 and isinstance(v, sympy.Symbol):
            return int(s), v
    return None


def find(stage: Stage) -> Subsampling | None:
    """The input to subsample: a (non-constant) input the reduction reads unguarded, every read at the same
    indices, each of them either strided (``s * v``) or left as it is, at least one strided."""
    if stage.reduce is None:
        return None
    extents = _extents(stage)
    reads: dict[int, list[Load]] = {}
    for n in walk(stage.reduce.body):
        if isinstance(n, Load) and isinstance(n.tensor.op, PlaceholderOp) and not n.tensor.op.constant:
            reads.setdefault(id(n.tensor), []).append(n)
    for loads in reads.values():
        if any(n.guard is not sympy.true or n.indices != loads[0].indices for n in loads):
            continue
        strides, shape = [], []
        for index, extent in zip(loads[0].indices, loads[0].tensor.shape, strict=True):
            strided = _strided(index, extents)
            if strided is None or strided[1] not in extents:
                strides.append(1)
                shape.append(extent)
            else:
                strides.append(strided[0])
                shape.append(extents[strided[1]])
        if any(s > 1 for s in strides):
            return Subsampling(loads[0].tensor, tuple(loads[0].indices), tuple(strides), tuple(shape))
    return None


def subsample_knobs(stage: Stage) -> list[Knob]:
    """The ``subsample`` flag, for a stage that reads an input at a stride."""
    if find(stage) is None:
        return []
    return [flag("subsample", "read the strided input through a compact copy made each run (stride-1 reads)")]


def requested(stage: Stage, config: Mapping[str, Any]) -> Subsampling | None:
    """The subsampling a config asks for (``subsample``), or None."""
    return find(stage) if config.get("subsample") else None


def _extents(stage: Stage) -> dict[sympy.Symbol, int]:
    assert stage.reduce is not None
    return {ax.var: ax.extent for ax in stage.axes + stage.reduce_axes}


def compact_tensor(s: Subsampling) -> Tensor:
    """The compact copy: element ``j`` of a strided dimension is the input's element ``stride * j``."""
    return compute(
        s.shape,
        lambda *j: s.tensor[tuple(k * stride for k, stride in zip(j, s.strides, strict=True))],
        name=f"{s.tensor.name}_sub",
    )


def read_subsampled(stage: Stage, s: Subsampling, compact: Tensor) -> Stage:
    """``stage`` with its reads of ``s.tensor`` turned into stride-1 reads of ``compact``."""
    extents = _extents(stage)
    indices = tuple(
        index if stride == 1 else _strided(index, extents)[1]  # type: ignore[index]
        for index, stride in zip(s.indices, s.strides, strict=True)
    )

    def rewrite(e: Expr) -> Expr:
        if isinstance(e, Load) and e.tensor is s.tensor:
            return dataclasses.replace(e, tensor=compact, indices=indices)
        return map_children(e, rewrite)

    assert stage.reduce is not None
    return dataclasses.replace(stage, reduce=rewrite(stage.reduce))
