"""The GPU tile template: one thread computes a small tile of outputs, for any stage of any op.

Knobs:
- ``wg``: threads per workgroup.
- ``tile_b``: outputs per thread along the last axis (consecutive in memory: vector stores).
- ``tile_axis`` / ``tile_a``: a second axis and its per-thread tile. Candidates are axes some input does not
  depend on (a matmul's rows for B, a conv's output channels for the image, output rows for a depthwise
  filter), so each value read is reused across the tile from registers.
- ``merge_hw``: treat the last two axes as one (H·W pixels): a convolution becomes an implicit GEMM whose
  pixel axis is contiguous, so 1x1 convolutions read 4 pixels at a time.
- ``unroll``: how many innermost reduction axes are unrolled completely (a 3x3 window: 1 or 2).
- ``k_unroll``: the next reduction axis is split by this factor and the inner part unrolled (a matmul's K).
- ``vec4``: merge reads of neighbouring elements into 4-wide reads, and write tiles 4 lanes at a time.
- ``group_b``: the workgroup tile. 0: a workgroup is ``wg`` consecutive threads; otherwise a block of
  (wg / group_b) x group_b threads over tile_axis x the last axis, so its threads share rows and columns.
- ``smem``: shared-memory staging (with a workgroup tile). Per reduction chunk, operands that depend on only one
  of the two tiled axes (a matmul's A and B, a conv's image and filter) are copied once into workgroup memory by
  all threads together, then read from there by every thread that needs them.

The lowering itself is ``kgen.scheduling.tiling``, which the other templates share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kgen.ops.attention import AttentionPattern
from kgen.scheduling import ir
from kgen.scheduling.lower import Buffers, Template, VectorViews
from kgen.scheduling.partition import Stage
from kgen.scheduling.space import DEFAULT_LIMITS, Constraint, Space, choice, flag
from kgen.scheduling.templates.attention import AttentionTile
from kgen.scheduling.tiling import (
    MAX_BLOCK,
    MAX_TILE,
    TileLowering,
    block_size,
    merge_ok,
    reduction_knobs,
    smem_bytes,
    smem_ok,
    split_ok,
    tile_axis_candidates,
    tile_size,
)


class GpuTile(Template):
    name = "gpu_tile"
    patterns: ClassVar[dict[type, Any]] = {AttentionPattern: AttentionTile("gpu")}

    def space(self, stage: Stage) -> Space:
        knobs = [
            choice("wg", (64, 32, 128, 256), "threads per workgroup"),
            choice("tile_b", (1, 2, 4, 8), "outputs per thread along the last axis"),
        ]
        candidates = tile_axis_candidates(stage)
        if candidates:
            knobs += [
                choice("tile_axis", candidates, "the second axis tiled per thread"),
                choice("tile_a", (1, 2, 4, 8), "outputs per thread along tile_axis"),
                choice("group_b", (0, 8, 16, 32), "workgroup tile: threads along the last axis (0: flat)"),
                flag("smem", "stage single-axis operands in workgroup memory (needs group_b)"),
            ]
        if len(stage.axes) >= 3:
            knobs.append(flag("merge_hw", "treat the last two axes as one (implicit GEMM over pixels)"))
        knobs += reduction_knobs(stage)
        knobs.append(flag("vec4", "4-wide reads and writes where aligned"))
        constraints = (
            Constraint("wg exceeds the device's invocations per workgroup", _fits_device),
            Constraint(f"more than {MAX_TILE} outputs per thread", lambda c, _: tile_size(c) <= MAX_TILE),
            Constraint(f"unrolled block over {MAX_BLOCK} instances", lambda c, _: block_size(stage, c) <= MAX_BLOCK),
            Constraint("k_unroll does not divide its reduction axis", lambda c, _: split_ok(stage, c)),
            Constraint("merge_hw with tile_axis among the merged axes", lambda c, _: merge_ok(stage, c)),
            Constraint("smem needs group_b and a reduction loop", lambda c, _: smem_ok(stage, c)),
            Constraint(
                "smem tiles exceed the device's workgroup storage",
                lambda c, limits: smem_bytes(stage, c) <= limits["max_workgroup_storage_bytes"],
            ),
        )
        return Space(tuple(knobs), constraints)

    def lower(self, stage: Stage, config: Mapping[str, Any], buffers: Buffers, name: str) -> ir.Kernel:
        views = None
        if config["vec4"]:
            n_params = len(stage.reads) + 1
            bindings = DEFAULT_LIMITS["max_storage_buffers_per_stage"]  # what every WebGPU device offers
            views = VectorViews(budget=max(0, bindings - n_params - 1))
        return TileLowering(stage, config, buffers, name, views).kernel()


def _fits_device(config: Mapping[str, Any], limits: Mapping[str, int]) -> bool:
    return config["wg"] <= min(limits["max_workgroup_invocations"], limits["max_workgroup_size_x"])
