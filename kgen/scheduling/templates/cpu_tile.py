"""The CPU tile template (WebAssembly, plain JavaScript): a loop over tiles, each a register tile of outputs.

A kernel is a function over a range of tiles (``launch`` tiles in all; threads split the range). Each tile is a
``tile_a`` x ``tile_b`` block of outputs over ``tile_axis`` x the last axis, computed in registers from reads
that are reused across the block, as in the GPU tile template (``gpu_tile.TileLowering``), whose knobs
``tile_*``, ``merge_hw``, ``unroll`` and ``k_unroll`` mean the same here; ``tile_order`` is the loop order over
tiles; ``stream`` (SIMD, a reduction unrolled whole) stores each accumulator right after its last update.

On WebAssembly ``vector`` picks the arithmetic: ``f32x4`` (every 4 outputs along the last axis are one f32x4,
so a matmul's tile is the classic micro-kernel: per reduction step, ``tile_a`` splatted values of A times
``tile_b / 4`` vectors of B into ``tile_a * tile_b / 4`` vector accumulators), ``f32x4_fma`` (the same, with each
multiply and add fused into one relaxed-SIMD multiply-add: one rounding or two, whichever the CPU does) or
``scalar``. The tile choices are multiples of 4 there, so no combination of knobs is invalid for SIMD.
``threads`` split the tiles of every launch between the page and workers on a shared memory, each a contiguous
range: a band of the slowest tile coordinate, or with ``split_fast`` of the fastest (a GEMM's threads then share
out the operand read along it, e.g. half of a matmul's B each, which stays in each core's L2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from kgen.ops.attention import AttentionPattern
from kgen.scheduling import ir, subsampling, wrapping
from kgen.scheduling.lower import Buffers, Template
from kgen.scheduling.packing import Packing, find, reads_weight
from kgen.scheduling.padding import ALIGN, Padding, find_unaligned, pad_knobs, requested, requested_alignment
from kgen.scheduling.partition import Stage
from kgen.scheduling.simd import LANES
from kgen.scheduling.space import WASM_LIMITS, Constraint, Space, choice, distinct, flag
from kgen.scheduling.templates.attention import AttentionTile
from kgen.scheduling.tiling import (
    MAX_BLOCK,
    MAX_TILE,
    TileLowering,
    block_size,
    merge_ok,
    real_reduce_axes,
    reduction_knobs,
    split_ok,
    streamable,
    tile_axis_candidates,
    tile_size,
    tiled_vars,
    unrolled_whole,
)

VECTOR = ("f32x4", "f32x4_fma", "scalar")
TILE_A = (4, 1, 2, 3, 6, 8)
SHORT_AXIS = 16  # a tile axis this short may be tiled whole or in two halves


def _whole_axis_tiles(stage: Stage, candidates: tuple[str, ...]) -> tuple[int, ...]:
    """More ``tile_a`` values for a short tile axis: the axis whole, or half of it, where TILE_A lacks them, so
    that its tiles need not overhang: a 14x14 image's rows in tiles of 7 or 14, not in 8 and an overhanging 6
    (a streamed depthwise conv on 14x14 took 11% less time in 7x16 tiles than in the best 2x16 ones)."""
    extents = {ax.extent for ax in stage.axes if ax.name in candidates and ax.extent <= 2 * SHORT_AXIS}
    sizes = {size for e in extents for size in (e, e // 2 if e % 2 == 0 else e) if size <= SHORT_AXIS}
    return tuple(sorted(sizes - set(TILE_A)))


def _lanes(config: Mapping[str, Any]) -> int:
    """Outputs per accumulator: a SIMD accumulator holds 4."""
    return LANES if config.get("vector", "scalar") != "scalar" else 1


class CpuTile(Template):
    name = "cpu_tile"

    def __init__(self, simd: bool) -> None:
        self.simd = simd
        self.patterns = {AttentionPattern: AttentionTile("simd" if simd else "scalar")}

    def space(self, stage: Stage) -> Space:
        # defaults: a 4x8 register tile in f32x4 (valid for any shape: tiles overhang, lanes past the end are
        # never stored), without relaxed-SIMD (not every browser validates it) and on one thread
        widths = (8, 4, 12, 16) if self.simd else (8, 4, 12, 16, 1, 2)
        knobs = [choice("tile_b", widths, "outputs per tile along the last axis")]
        candidates = tile_axis_candidates(stage)
        if candidates:
            knobs += [
                choice("tile_axis", candidates, "the second axis of the register tile"),
                choice("tile_a", TILE_A + _whole_axis_tiles(stage, candidates), "outputs per tile along tile_axis"),
                choice(
                    "tile_order",
                    ("b", "a"),
                    "which tile coordinate varies fastest from one tile to the next: the last axis's (b) or "
                    "tile_axis's (a: neighbouring tiles share their last-axis operand, e.g. a conv's input panel)",
                ),
            ]
        if len(stage.axes) >= 3:
            knobs.append(flag("merge_hw", "treat the last two axes as one (implicit GEMM over pixels)"))
        knobs += reduction_knobs(stage)
        if self.simd and streamable(stage) and candidates:
            knobs.append(
                flag(
                    "stream",
                    "with the reduction unrolled whole (a depthwise conv's window), update column by column and "
                    "down each in the order of the reads along tile_axis, and store each accumulator right after "
                    "its last update: a tall tile keeps about three accumulators in registers, not all of them",
                )
            )
        if reads_weight(stage):
            knobs.append(flag("pack", "read the weight through a copy packed once in the tile's read order"))
        knobs += pad_knobs(stage)
        knobs += subsampling.subsample_knobs(stage)
        if self.simd and set(candidates) - {ax.name for ax in stage.axes[-2:]}:  # merge_hw can have a tile axis
            knobs += wrapping.wrap_knobs(stage)
        constraints = [
            Constraint(
                f"more than {MAX_TILE} accumulators per tile (a SIMD accumulator holds 4 outputs)",
                lambda c, _: tile_size(c) <= MAX_TILE * _lanes(c),
            ),
            Constraint(
                f"unrolled block over {MAX_BLOCK} instances (a SIMD instance computes 4 outputs)",
                lambda c, _: block_size(stage, c) <= MAX_BLOCK * _lanes(c),
            ),
            Constraint("k_unroll does not divide its reduction axis", lambda c, _: split_ok(stage, c)),
            Constraint("merge_hw with tile_axis among the merged axes", lambda c, _: merge_ok(stage, c)),
            Constraint(
                "stream needs the reduction unrolled whole (unroll over every reduction axis)",
                lambda c, _: not c.get("stream") or unrolled_whole(stage, c),
            ),
            Constraint(
                "pad with subsample (the compact copy is padded already)",
                lambda c, _: not (c.get("pad") and c.get("subsample")),
            ),
            Constraint(
                "wrap needs merge_hw and not pad (its copy is padded already)",
                lambda c, _: not c.get("wrap") or (c.get("merge_hw") and not c.get("pad")),
            ),
            Constraint(
                "pack needs a weight read along one tiled axis of more than 1 (tile_a or tile_b)",
                lambda c, _: not c.get("pack") or self.packing(stage, c) is not None,
            ),
        ]
        if self.simd:
            if find_unaligned(stage) or subsampling.unaligned(stage):
                knobs.append(ALIGN)
            knobs += [
                choice("vector", VECTOR, "f32x4 SIMD, f32x4 with relaxed-SIMD fused multiply-adds, or scalar"),
                choice("threads", (1, 2, 4), "threads that split the tiles (workers on shared memory)"),
                flag(
                    "split_fast",
                    "each thread takes a band of the fastest tile coordinate (its share of the operand read along "
                    "it stays in its own cache), not of the slowest; the same kernel on 1 thread",
                ),
            ]
            constraints += WASM_LIMITS
        return Space(tuple(knobs), tuple(constraints), self._seeds(stage, {k.name for k in knobs}))

    def _seeds(self, stage: Stage, names: set[str]) -> tuple[dict[str, Any], ...]:
        """Micro-kernel shapes that are usually good (the tuner tries them first; invalid ones are skipped): 6x8
        and 4x8 tiles (12 and 8 of the 16 vector registers hold accumulators), and first, on rows of 9 to 16
        outputs, 2x16 and 3x16 (a whole row per tile, not a row and an overhanging part), along either of the two
        best tile axes (a conv's output channels or rows), either tile order, pixels merged or not, with the
        reduction's
        innermost window axes unrolled (two, or one where two make too large a block, as a 7x7 window does) or
        split by 4. Unmerged tiles read a padded input padded (``pad``: no guards); merged ones read it as it is,
        since a padded image's rows are longer than the output's and a merged tile's reads would no longer be
        contiguous. Whole-row tiles also read it as it is: the lanes past a row's ends are known when the kernel is
        made, so those reads are masked vectors, and no copy is made. A strided input is read through its compact
        copy (``subsample``),
        which is padded instead. Where ``stream`` applies, streamed tall tiles come first: of one vector (8x4), and
        on a short image (14x14) of half the image in whole rows (7x16); where ``wrap`` does, wrapped 6x8 tiles
        (a 128->128 conv on 28x28 ran 8% faster)."""
        candidates = tile_axis_candidates(stage)
        if not candidates:
            return ()
        window = min(2, len(real_reduce_axes(stage)))
        unrolls = dict.fromkeys([(window, 1), (min(window, 1), 1), (0, 4)])
        tiles = [(6, 8), (4, 8)]
        whole_rows = 8 < stage.axes[-1].extent <= 16
        if whole_rows:  # a short row (14 pixels) in one tile, not in 8 and an overhanging 6
            tiles = [(2, 16), (3, 16), *tiles]
        seeds = [
            {"tile_axis": axis, "tile_a": a, "tile_b": b, "tile_order": order, "merge_hw": merge, "pad": pad}
            | {"unroll": unroll, "k_unroll": k, "vector": "f32x4_fma"}
            for axis in candidates[:2]
            for a, b in tiles
            for unroll, k in unrolls
            for order in ("a", "b")
            for merge, pad in ((0, 1), (1, 0), *([(0, 0)] if whole_rows and b == 16 else []))
        ]
        if "wrap" in names:  # rows of a short image that do not fill whole tiles: first, wrapped 6x8 tiles
            wrapped = {"tile_axis": candidates[0], "tile_a": 6, "tile_b": 8, "merge_hw": 1, "pad": 0, "wrap": 1}
            wrapped |= {"unroll": window, "k_unroll": 1, "vector": "f32x4_fma"}
            seeds = [{**wrapped, "tile_order": order} for order in ("b", "a")] + seeds
        if "stream" in names:  # a window unrolled whole: first, tall tiles streamed
            streamed = {"tile_axis": candidates[0], "tile_a": 8, "tile_b": 4, "tile_order": "b", "merge_hw": 0}
            streamed |= {"unroll": window, "k_unroll": 1, "vector": "f32x4_fma", "stream": 1}
            tall = [streamed]
            halves = _whole_axis_tiles(stage, candidates[:1])
            if whole_rows and halves:  # a short image: half of it per tile, whole rows
                tall.insert(0, {**streamed, "tile_a": min(halves), "tile_b": 16})
            seeds = [{**seed, "pad": pad} for seed in tall for pad in (0, 1)] + seeds
        if "subsample" in names:  # the compact copy, padded: no pad of its own
            seeds = [{**seed, "subsample": 1, "pad": 0} for seed in seeds]
        return distinct(seeds, names)

    def helper_config(self, stage: Stage) -> dict[str, Any]:
        """The config of a stage that is not tuned (the copy into a padded, aligned or compact buffer made on every
        run, a packed weight, a softmax's max): the default, with SIMD tiles as long as a row up to 16 floats. A
        copy does little per tile, so the tile loop's own work sets its speed: the interior copy of a depthwise
        conv's 14x14 image took as long as the conv in 8-float tiles, and half that in tiles of a whole row."""
        space = self.space(stage)
        config = space.default()
        if self.simd:
            widths = next(k.values for k in space.knobs if k.name == "tile_b")
            config["tile_b"] = min((b for b in widths if b >= stage.axes[-1].extent), default=max(widths))
        return config

    def packing(self, stage: Stage, config: Mapping[str, Any]) -> Packing | None:
        """With ``pack``: the weight read along the tile axis (tile_a) or the last axis (tile_b), packed in
        blocks of that tile."""
        if not config.get("pack"):
            return None
        tiled = {} if config.get("merge_hw") else {stage.axes[-1].var: config["tile_b"]}
        if "tile_axis" in config:  # a stage with one axis of more than 1 (a gemv) has tile_b alone
            a_var, _ = tiled_vars(stage, config)
            tiled = {a_var: config.get("tile_a", 1)} | tiled
        return find(stage, tiled)

    def padding(self, stage: Stage, config: Mapping[str, Any]) -> Padding | None:
        """With ``pad``: the input padded so that the reduction reads it without guards; with ``align``, an
        input with unaligned rows copied into aligned ones."""
        return requested(stage, config) or requested_alignment(stage, config)

    def subsampling(self, stage: Stage, config: Mapping[str, Any]) -> subsampling.Subsampling | None:
        """With ``subsample``: the strided input read through a compact copy (its rows aligned with ``align``)."""
        return subsampling.requested(stage, config)

    def wrapping(self, stage: Stage, config: Mapping[str, Any]) -> wrapping.Wrapping | None:
        """With ``wrap``: the padded input copied into rows that share their padding, the conv computed wide."""
        return wrapping.requested(stage, config)

    def lower(self, stage: Stage, config: Mapping[str, Any], buffers: Buffers, name: str) -> ir.Kernel:
        tile = {**config, "wg": 1}
        simd = config.get("vector", "scalar") != "scalar"
        kernel = TileLowering(stage, tile, buffers, name, views=None, simd=simd, clamp=False).kernel()
        if config.get("vector") == "f32x4_fma":
            return dataclasses.replace(kernel, fused_multiply_add=True)
        return kernel
