"""How a tensor lives in a texture (WebGL): one value per texel (R), or 4 per texel (RGBA).

A layout packs a tensor along some of its axes: ``packing`` lists (axis, factor) pairs whose factors multiply to
the texel's channel count. ``()`` is R (one value per texel); ``((a, 4),)`` is RGBA packed along axis ``a`` (4
consecutive channels, or 4 consecutive columns); ``((h, 2), (w, 2))`` is 2x2 blocks of the last two axes. A
packed axis is padded up to a multiple of its factor. Texels are numbered row-major over the packed shape (each
packed axis divided by its factor); the value's channel in its texel is the mixed-radix number of its offsets
within the packed axes. Texel ``t`` lives at ``(t % width, t // width)`` of a texture ``width`` texels wide: a
tensor too large for one row continues on the next (a row holds whole trailing axes where they fit).

The storage index ``texel * channels + channel`` is what loads and stores in the IR use, so the same index
simplifier folds the packing math, and 4-lane reads of one texel become one ``texelFetch``.

An output may also be split into ``planes``: (axis, count) puts texel ``a`` along that axis (element ``a`` where
the axis is not packed) in plane ``a % count`` at ``a // count``, each plane a texture of its own, so one fragment
writes ``count`` texels (multiple render targets: a fragment's tile is ``count`` times larger). Storage indices run
plane by plane: ``plane * texels * channels + texel * channels + channel``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from kgen.errors import KgenError
from kgen.te import index as ix

#: layout names a knob can take, for a tensor of a given rank
NAMES = ("r", "rgba_last", "rgba_c", "rgba_2x2")


#: render targets a fragment may write: WebGL2 guarantees 4 (MAX_DRAW_BUFFERS, MAX_COLOR_ATTACHMENTS); 8 where
#: the device has them (the ``max_draw_buffers`` limit)
PLANES = (1, 2, 4, 8)


@dataclass(frozen=True)
class Layout:
    shape: tuple[int, ...]
    packing: tuple[tuple[int, int], ...] = ()
    planes: tuple[int, int] | None = None  # (axis, count)

    @classmethod
    def named(cls, name: str, shape: Sequence[int]) -> Layout:
        """``r``, ``rgba_last`` (along the last axis), ``rgba_c`` (along axis 1, NCHW channels) or ``rgba_2x2``."""
        shape = tuple(shape)
        rank = len(shape)
        packings = {
            "r": (),
            "rgba_last": ((rank - 1, 4),) if rank >= 1 else None,
            "rgba_c": ((1, 4),) if rank >= 3 else None,
            "rgba_2x2": ((rank - 2, 2), (rank - 1, 2)) if rank >= 2 else None,
        }
        if name not in packings:
            raise KgenError(f"unknown layout '{name}' (layouts: {', '.join(NAMES)})")
        if packings[name] is None:
            raise KgenError(f"layout '{name}' needs a tensor of higher rank than {rank}")
        return cls(shape, packings[name])

    def with_planes(self, count: int, axis: int | None = None) -> Layout:
        """This layout split into ``count`` planes along ``axis``, by default the last axis it does not pack (rows
        where it packs the last axis); ``count`` 1 is the layout itself."""
        if count == 1:
            return self
        axis = self.plane_axis if axis is None else axis
        if axis is None:
            raise KgenError(f"layout of shape {self.shape} packs every axis: no axis left for {count} planes")
        return Layout(self.shape, self.packing, (axis, count))

    @property
    def plane_axis(self) -> int | None:
        """The axis ``with_planes`` splits: the last one not packed, where that is one of the last two."""
        packed = {a for a, _ in self.packing}
        rank = len(self.shape)
        return next((a for a in (rank - 1, rank - 2) if a >= 0 and a not in packed), None)

    @property
    def splits(self) -> tuple[tuple[int, int], ...]:
        """Every (axis, factor) that divides an axis into texels: the packing, then the planes."""
        return (*self.packing, *([self.planes] if self.planes else []))

    @property
    def plane_count(self) -> int:
        return 1 if self.planes is None else self.planes[1]

    @staticmethod
    def valid_names(rank: int) -> tuple[str, ...]:
        return tuple(n for n in NAMES if (n != "rgba_c" or rank >= 3) and (n != "rgba_2x2" or rank >= 2))

    @property
    def channels(self) -> int:
        return math.prod(f for _, f in self.packing)

    @property
    def packed_shape(self) -> tuple[int, ...]:
        """The shape of one plane's texels."""
        shape = list(self.shape)
        for axis, factor in self.splits:
            shape[axis] = -(-shape[axis] // factor)
        return tuple(shape)

    @property
    def texels(self) -> int:
        """Texels of one plane."""
        return max(1, math.prod(self.packed_shape))

    @property
    def size(self) -> int:
        """Storage elements: every channel of every texel of every plane."""
        return self.plane_count * self.texels * self.channels

    def storage_index(self, indices: Sequence[Any]) -> sympy.Expr:
        """The storage index ((plane * texels + texel) * channels + channel) of the element at ``indices``."""
        outer = [ix.as_index(i) for i in indices]
        channel = sympy.Integer(0)
        for axis, factor in self.packing:
            channel = channel * factor + ix.floormod(outer[axis], factor)
            outer[axis] = ix.floordiv(outer[axis], factor)
        plane = sympy.Integer(0)
        if self.planes is not None:
            axis, count = self.planes
            plane, outer[axis] = ix.floormod(outer[axis], count), ix.floordiv(outer[axis], count)
        texel = sympy.Integer(0)
        for i, extent in zip(outer, self.packed_shape, strict=True):
            texel = texel * extent + i
        return (plane * self.texels + texel) * self.channels + channel

    def _storage_indices(self) -> np.ndarray:
        """The storage index of every element, in row-major element order."""
        grids = np.indices(self.shape).reshape(len(self.shape), -1) if self.shape else np.zeros((0, 1), int)
        outer = [g.copy() for g in grids]
        channel = np.zeros(grids.shape[1], dtype=np.int64)
        for axis, factor in self.packing:
            channel = channel * factor + outer[axis] % factor
            outer[axis] = outer[axis] // factor
        plane = np.zeros(grids.shape[1], dtype=np.int64)
        if self.planes is not None:
            axis, count = self.planes
            plane, outer[axis] = outer[axis] % count, outer[axis] // count
        texel = np.zeros(grids.shape[1], dtype=np.int64)
        for i, extent in zip(outer, self.packed_shape, strict=True):
            texel = texel * extent + i
        return (plane * self.texels + texel) * self.channels + channel

    def pack(self, array: np.ndarray) -> np.ndarray:
        """The storage array of ``array`` (padding is 0)."""
        out = np.zeros(self.size, dtype=np.float32)
        out[self._storage_indices()] = np.asarray(array, dtype=np.float32).ravel()
        return out

    def unpack(self, storage: np.ndarray) -> np.ndarray:
        return np.asarray(storage)[self._storage_indices()].reshape(self.shape)

    def texture(self, max_width: int) -> tuple[int, int]:
        """(width, height) in texels of the texture that holds this layout (of each plane): a row is as many
        trailing axes of the packed shape (so texel coordinates need no division) as make the texture closest to
        square, within ``max_width``, else ``max_width`` texels. Any tensor of at most ``max_width`` squared
        texels fits. Not a row as long as fits: a fragment shader runs in 2x2 quads over bands of rows, so a
        texture one texel tall wastes half of every quad and runs on one band."""
        widths = [1]
        for extent in reversed(self.packed_shape):
            if widths[-1] * extent > max_width:
                break
            widths.append(widths[-1] * extent)
        width = min(widths, key=lambda w: (abs(math.log(w * w / self.texels)), -w))
        if -(-self.texels // width) > max_width:  # too tall with whole axes per row (or no axis fits a row)
            width = min(self.texels, max_width)
        height = -(-self.texels // width)
        if height > max_width:
            raise KgenError(f"tensor of shape {self.shape} needs {self.texels} texels: more than fit in a texture")
        return width, height

    def to_json(self) -> dict[str, Any]:
        out = {"shape": list(self.shape), "packing": [list(p) for p in self.packing], "channels": self.channels}
        return out if self.planes is None else {**out, "planes": list(self.planes)}
