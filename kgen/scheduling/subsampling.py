"""Reading a strided input through a compact copy (the ``subsample`` knob).

A convolution with stride 2 reads its image at ``x[2h + rh]`` (rows; columns alike): a SIMD tile's four
neighbouring outputs read every other pixel, so each 4-wide read is two reads and a shuffle, and half of every
cache line fetched is unused, once per block of output channels. Subsampled, a kernel first copies the image
into phases, ``x_sub[p, j] = x[2j + p]`` (p = 0, 1: the even and the odd pixels), padding included where the
conv pads (the copy reads through the bounds guard, the conv reads no guard), and the reduction reads
``x_sub[(rh + c) % 2, h + (rh + c) // 2]``: stride 1, whole 4-wide reads. A 1x1 window reads one phase only,
so its copy is just the pixels read, a quarter of the image. The copy moves about one image per run; the
reduction reads it once per block of output channels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy

from kgen.scheduling.padding import aligned_length, aligns, bounds_guard, input_reads
from kgen.scheduling.partition import Stage
from kgen.scheduling.space import Knob, flag
from kgen.te import index as ix
from kgen.te.expr import Expr, Load, map_children
from kgen.te.tensor import Tensor, compute


@dataclass(frozen=True)
class Stride:
    """One strided dimension, read at ``stride * var + window + offset`` (``window`` a reduction variable of
    extent ``taps``, or None): its phase ``(window + shift) % stride`` and position ``var + (window + shift) //
    stride`` in the copy, which starts at input element ``stride * start`` (``shift = offset - stride * start``
    is in [0, stride)."""

    stride: int
    var: sympy.Symbol
    window: sympy.Symbol | None
    start: int
    shift: int
    phases: int  # 1 where every read is at one phase (no window), else ``stride``
    positions: int


@dataclass(frozen=True)
class Subsampling:
    """``tensor`` read at ``indices`` (the same in every read), its strided dimensions described by ``dims``
    (None: read as it is), through guards that are its bounds only (``default`` outside)."""

    tensor: Tensor
    indices: tuple[sympy.Expr, ...]
    dims: tuple[Stride | None, ...]
    default: float

    @property
    def shape(self) -> tuple[int, ...]:
        """The compact copy's: a strided dimension becomes (phases, positions), or positions alone."""
        out: list[int] = []
        for extent, d in zip(self.tensor.shape, self.dims, strict=True):
            out += [extent] if d is None else ([d.positions] if d.phases == 1 else [d.phases, d.positions])
        return tuple(out)


def _stride(index: Any, extents: Mapping[sympy.Symbol, int], data: set[sympy.Symbol]) -> Stride | None:
    """``index`` as ``s * v + r + c`` (s > 1, v a data variable, r a reduction variable or none, c a constant;
    variables of extent 1 count as 0), else None."""
    index = sympy.expand(sympy.sympify(index).subs({v: 0 for v, e in extents.items() if e == 1}))
    terms = sympy.Add.make_args(index)
    offset = sum((t for t in terms if t.is_Integer), sympy.Integer(0))
    rest = [t for t in terms if not t.is_Integer]
    strided = [t for t in rest if t.is_Mul and len(t.args) == 2 and any(a.is_Integer and a > 1 for a in t.args)]
    plain = [t for t in rest if isinstance(t, sympy.Symbol)]
    if len(strided) != 1 or len(strided) + len(plain) != len(rest) or len(plain) > 1:
        return None
    s, v = sorted(strided[0].args, key=lambda a: not a.is_Integer)
    window = plain[0] if plain else None
    if not isinstance(v, sympy.Symbol) or v not in data or (window is not None and window in data):
        return None
    stride, offset, taps = int(s), int(offset), extents.get(window, 1) if window is not None else 1
    start = offset // stride
    shift = offset - stride * start
    phases = 1 if window is None else stride
    positions = extents[v] + (shift + taps - 1) // stride
    return Stride(stride, v, window, start, shift, phases, positions)


def _extents(stage: Stage) -> dict[sympy.Symbol, int]:
    return {ax.var: ax.extent for ax in stage.axes + stage.reduce_axes}


def find(stage: Stage) -> Subsampling | None:
    """The input to subsample: a (non-constant) input the reduction reads at one set of indices, at least one
    of them strided, unguarded or through its bounds guard only."""
    if stage.reduce is None:
        return None
    extents = _extents(stage)
    data = {ax.var for ax in stage.axes}
    ranges = stage.ranges
    for loads in input_reads(stage):
        first = loads[0]
        if any(n.indices != first.indices or n.default != first.default for n in loads):
            continue
        if first.guard is not sympy.true and not bounds_guard(first, ranges):
            continue
        dims = tuple(_stride(i, extents, data) for i in first.indices)
        inside = all(
            d is not None or _within(i, extent, ranges)
            for i, d, extent in zip(first.indices, dims, first.tensor.shape, strict=True)
        )  # a dimension read as it is must need no guard: the copy's guard covers the strided ones only
        if inside and any(d is not None for d in dims):
            return Subsampling(first.tensor, tuple(first.indices), dims, first.default)
    return None


def _within(index: Any, extent: int, ranges) -> bool:
    lo, hi = ix.bounds(index, ranges)
    return lo is not None and hi is not None and lo >= 0 and hi <= extent - 1


def subsample_knobs(stage: Stage) -> list[Knob]:
    """The ``subsample`` flag, for a stage that reads an input at a stride."""
    if find(stage) is None:
        return []
    return [flag("subsample", "read the strided input through a compact copy made each run (stride-1 reads)")]


def unaligned(stage: Stage) -> bool:
    """Whether the compact copy's rows (its last dimension, when strided) are not a whole number of 4-wide
    vectors long: a 1x1 conv of stride 2 from 14x14 to 7x7 (``align`` pads them to 8), or a 3x3 one from 28x28
    to 14x14 (rows of 15 per phase, read at taps 0 and 1 from their start)."""
    s = find(stage)
    return s is not None and s.dims[-1] is not None and aligned_length(s.shape[-1]) != s.shape[-1]


def requested(stage: Stage, config: Mapping[str, Any]) -> Subsampling | None:
    """The subsampling a config asks for (``subsample``), or None; with ``align``, the copy's rows padded to a
    multiple of 4 (the positions past the input hold the default, and no output reads them)."""
    s = find(stage) if config.get("subsample") else None
    last = s.dims[-1] if s is not None else None
    if s is None or last is None or not aligns(config):
        return s
    row = dataclasses.replace(last, positions=aligned_length(last.positions))
    return dataclasses.replace(s, dims=(*s.dims[:-1], row))


def compact_tensor(s: Subsampling) -> Tensor:
    """The compact copy: at (phase p, position j) of a strided dimension, the input's element
    ``stride * (start + j) + p`` (the default outside the input)."""

    def element(*j):
        indices, k = [], 0
        for d in s.dims:
            if d is None:
                indices.append(j[k])
                k += 1
            elif d.phases == 1:
                indices.append(d.stride * (d.start + j[k]) + d.shift)
                k += 1
            else:
                indices.append(d.stride * (d.start + j[k + 1]) + j[k])
                k += 2
        return s.tensor.guarded(tuple(indices), s.default)

    return compute(s.shape, element, name=f"{s.tensor.name}_sub")


def read_subsampled(stage: Stage, s: Subsampling, compact: Tensor) -> Stage:
    """``stage`` with its reads of ``s.tensor`` turned into unguarded, stride-1 reads of ``compact``."""
    indices: list[Any] = []
    for index, d in zip(s.indices, s.dims, strict=True):
        if d is None:
            indices.append(index)
        elif d.phases == 1:
            indices.append(d.var)
        else:
            tap = d.window + d.shift  # type: ignore[operator]
            indices += [ix.floormod(tap, d.stride), d.var + ix.floordiv(tap, d.stride)]

    def rewrite(e: Expr) -> Expr:
        if isinstance(e, Load) and e.tensor is s.tensor:
            return dataclasses.replace(e, tensor=compact, indices=tuple(indices), guard=sympy.true)
        return map_children(e, rewrite)

    assert stage.reduce is not None
    return dataclasses.replace(stage, reduce=rewrite(stage.reduce))
