"""The texel template (WebGL): one fragment computes one output texel, all of its 1 or 4 values.

Tensors live in textures (``kgen.scheduling.layout``); which layout each program input and the output use is a
knob (``layout_<input name>``, ``layout_out``). The output's layout fixes the fragment's tile: R is one value;
RGBA along an axis is 4 consecutive values along it (4 output channels of a convolution, or 4 columns); 2x2 is
a 2x2 block of the last two axes. Fragments are numbered like the output's texels, so fragment ``t`` writes
texel ``t``. The loop structure is the GPU tile template's (``gpu_tile.TileLowering``) with that tile, no
workgroups and no shared memory; reads of several channels of one RGBA texel become one ``texelFetch``.

Knobs besides the layouts: ``unroll`` (innermost reduction axes fully unrolled) and ``k_unroll`` (the next
reduction axis split and its inner part unrolled), as in the GPU tile template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kgen.scheduling import ir
from kgen.scheduling.layout import Layout
from kgen.scheduling.lower import Buffers, VectorViews
from kgen.scheduling.partition import Stage
from kgen.scheduling.space import DEFAULT_LIMITS, Constraint, Limits, Space, choice
from kgen.scheduling.templates.gpu_tile import MAX_BLOCK, TileLowering, reduction_knobs, split_ok, unrolled_steps
from kgen.te.tensor import PlaceholderOp, Tensor


def _inputs_read(stage: Stage) -> tuple[Tensor, ...]:
    """Program inputs (placeholders) the stage reads, in first-read order."""
    return tuple(t for t in stage.reads if isinstance(t.op, PlaceholderOp))


def _fits(layout: Layout, limits: Limits) -> bool:
    side = limits.get("max_texture_size", DEFAULT_LIMITS["max_texture_size"])
    return layout.texels <= side * side


class TexelTile:
    name = "texel"

    def space(self, stage: Stage) -> Space:
        inputs = _inputs_read(stage)
        knobs = [choice("layout_out", Layout.valid_names(len(stage.out.shape)), "the output's texture layout")]
        knobs += [choice(f"layout_{t.name}", Layout.valid_names(len(t.shape)), f"{t.name}'s layout") for t in inputs]
        knobs += reduction_knobs(stage)

        def block_ok(c: Mapping[str, Any], _: Limits) -> bool:
            channels = Layout.named(c["layout_out"], stage.out.shape).channels
            return channels * unrolled_steps(stage, c) <= MAX_BLOCK

        def textures_fit(c: Mapping[str, Any], limits: Limits) -> bool:
            tensors = [("out", stage.out), *((t.name, t) for t in inputs)]
            return all(_fits(Layout.named(c[f"layout_{n}"], t.shape), limits) for n, t in tensors)

        constraints = (
            Constraint(f"unrolled block over {MAX_BLOCK} instances", block_ok),
            Constraint("k_unroll does not divide its reduction axis", lambda c, _: split_ok(stage, c)),
            Constraint("a tensor does not fit in one texture of the device's maximum size", textures_fit),
        )
        return Space(tuple(knobs), constraints)

    def layouts(
        self, config: Mapping[str, Any], inputs: Sequence[Tensor], output: Tensor, limits: Limits
    ) -> list[tuple[Tensor, Layout]]:
        """Each program input's and the output's layout (an input the main stage does not read is R)."""
        chosen = [(t, Layout.named(config.get(f"layout_{t.name}", "r"), t.shape)) for t in inputs]
        out_name = config.get("layout_out", "r")
        if out_name not in Layout.valid_names(len(output.shape)):
            out_name = "r"  # the main stage's output has another rank than the program's
        return [*chosen, (output, Layout.named(out_name, output.shape))]

    def lower(self, stage: Stage, config: Mapping[str, Any], buffers: Buffers, name: str) -> ir.Kernel:
        layout = buffers.layout(stage.out) or Layout(stage.out.shape)
        tile = {"wg": 1, "tile_b": 1, "vec4": 1, **{k: config[k] for k in ("unroll", "k_unroll") if k in config}}
        names = [ax.name for ax in stage.axes]
        last = len(names) - 1
        for axis, factor in layout.packing:
            if axis == last:
                tile["tile_b"] = factor
            else:
                tile["tile_axis"], tile["tile_a"] = names[axis], factor
        views = VectorViews(budget=len(stage.reads) + 1, texels=True)
        return TileLowering(stage, tile, buffers, name, views).kernel()
