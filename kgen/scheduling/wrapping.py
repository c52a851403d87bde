"""Rows that wrap (the ``wrap`` knob): a padded stride-1 convolution over its pixels as one axis, with no lane
lost at the end of a row.

A SIMD tile of a convolution holds 4 neighbouring pixels of a row per accumulator, and the usual tile 8: a row
of 14 pixels takes 16 lanes, and 1 lane in 8 computes nothing (28 pixels: 1 in 8). Pixels merged into one axis
(``merge_hw``) fill every lane, but the 4 lanes of a read then lie in two rows of the image with the padding
between them, so the read is a gather under lane guards. With ``wrap`` the image is first copied into rows of
``S`` floats, the input's row and then ``max(pad_left, pad_right)`` zeros, between zero rows: a row's right
padding is the next row's left padding. The convolution computes an output ``S`` pixels wide with its pixels
merged, so that pixel ``p`` reads tap ``(ky, kx)`` of the copy at ``p + const``: 4-wide reads that run on across
the end of a row, no guard, and ``W`` of every ``S`` lanes used (3x3, pads 1: 14 of 15). A last copy drops the
columns past ``W`` of each row and applies the convolution's epilogue (bias, activation, residual add).

The copy is a ``padding.Padding`` (its border filled once, its interior copied on every run); a tap's read
of column ``x + kx - pad_left`` may fall before column 0 or past the row's end, where the flat index lands in
the neighbouring row's zero columns, which is the point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import sympy

from kgen.scheduling import padding
from kgen.scheduling.padding import VECTOR_FLOATS, Padding, read_padded
from kgen.scheduling.partition import Acc, Stage
from kgen.scheduling.space import Knob, flag
from kgen.te.expr import Const, Expr, Load, map_children, walk
from kgen.te.tensor import IterVar, Tensor, compute

TILE_ROW = 2 * VECTOR_FLOATS  # the usual tile_b: rows of a multiple of this many pixels lose no lane unwrapped


@dataclass(frozen=True)
class Wrapping:
    """The copy of the padded input, in rows of ``width`` floats between zero rows, and that width."""

    copy: Padding
    width: int


def find(stage: Stage) -> Wrapping | None:
    """The wrapped copy for a stage that computes ``out[..., y, x]`` from an input it pads along its last two
    dimensions alone, read at ``[..., y + a, x + b]`` (stride 1; ``a``, ``b`` free of ``y`` and ``x``), where
    nothing else the reduction reads depends on ``y`` or ``x``, and whose wrapped rows are shorter than its rows
    rounded up to 8-wide tiles (14 -> 15 against 16; not 7 -> 8, nor 56, whose row tiles lose no lane). The rows
    are as long as the input's plus the wider of its two paddings, and no shorter than the output's."""
    if stage.reduce is None or len(stage.axes) < 3:
        return None
    pad = padding.find(stage)
    if pad is None or any(pad.before[:-2]) or any(pad.after[:-2]) or not (pad.before[-1] or pad.after[-1]):
        return None
    y, x = stage.axes[-2].var, stage.axes[-1].var
    for load in (n for n in walk(stage.reduce.body) if isinstance(n, Load)):
        indices = [sympy.sympify(i) for i in load.indices]
        if load.tensor is not pad.tensor:
            if any(i.free_symbols & {y, x} for i in indices):
                return None
            continue
        *outer, row, column = indices
        if any(i.free_symbols & {y, x} for i in (*outer, row - y, column - x)):
            return None
    # a read reaches pad_left columns before a row and pad_right past it: both land in zero columns
    columns = stage.axes[-1].extent
    width = max(pad.tensor.shape[-1] + max(pad.before[-1], pad.after[-1]), columns)
    if width >= -(-columns // TILE_ROW) * TILE_ROW:  # no fewer lanes than in 8-wide row tiles (7x7: 8 either way)
        return None
    rank = len(pad.tensor.shape)
    before = (0,) * (rank - 2) + (1 + pad.before[-2], 0)
    after = (0,) * (rank - 2) + (1 + pad.after[-2], width - pad.tensor.shape[-1])
    return Wrapping(Padding(pad.tensor, before, after, pad.default), width)


def wrap_knobs(stage: Stage) -> list[Knob]:
    """The ``wrap`` flag, for a stage ``find`` applies to."""
    if find(stage) is None:
        return []
    return [flag("wrap", "merged pixels over rows that share their zero padding: no lane lost at a row's end")]


def requested(stage: Stage, config: Mapping[str, Any]) -> Wrapping | None:
    """The wrapped copy a config asks for (``wrap``), or None."""
    return find(stage) if config.get("wrap") else None


def widen(stage: Stage, wrapping: Wrapping, copy: Tensor) -> tuple[Stage, Stage]:
    """``stage`` as two: the reduction over an output ``wrapping.width`` pixels wide, reading ``copy`` unguarded,
    and the stage that stores the first ``W`` columns of each of its rows through ``stage``'s epilogue."""
    assert stage.reduce is not None
    *outer, last = stage.axes
    axes = (*outer, IterVar(last.var, wrapping.width, last.kind))
    wide_shape = tuple(ax.extent for ax in axes)
    # a tensor that only names the wide output's buffer: the wide stage below computes it
    wide_out = compute(wide_shape, lambda *_: Const(0.0, stage.out.dtype), name=f"{stage.out.name}_wide")
    reduce = read_padded(stage, wrapping.copy, copy).reduce
    wide = Stage(wide_out, axes, reduce, Acc(stage.out.dtype))
    value = Load(wide_out, tuple(ax.var for ax in stage.axes))

    def narrowed(e: Expr) -> Expr:
        return value if isinstance(e, Acc) else map_children(e, narrowed)

    return wide, replace(stage, reduce=None, epilogue=narrowed(stage.epilogue))
