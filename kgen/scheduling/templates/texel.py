"""The texel template (WebGL): one fragment computes one output texel, all of its 1 or 4 values.

Tensors live in textures (``kgen.scheduling.layout``); which layout each program input and the output use is a
knob (``layout_<input name>``, ``layout_out``). The output's layout fixes the fragment's tile: R is one value;
RGBA along an axis is 4 consecutive values along it (4 output channels of a convolution, or 4 columns); 2x2 is
a 2x2 block of the last two axes. With ``planes`` (multiple render targets) the output is that many textures
and a fragment writes one texel of each: its tile is ``planes`` times longer along the last axis the layout does
not pack (4 pixels of 4 channels each, say). Fragments are numbered like the output's texels, so fragment ``t``
writes texel ``t`` (of every plane). The loop structure is the GPU tile template's (``gpu_tile.TileLowering``)
with that tile, no workgroups and no shared memory; reads of several channels of one RGBA texel become one
``texelFetch``.

Knobs besides the layouts and ``planes``: ``unroll`` (innermost reduction axes fully unrolled) and ``k_unroll``
(the next reduction axis split and its inner part unrolled), as in the GPU tile template; ``outer_inner`` (the
outermost reduction axis looped innermost: a conv's channels, split by texel with ``k_unroll`` 4 while the window
is looped); ``pad`` (a padded image read from a copy padded on every run, ``kgen.scheduling.padding``);
``layout_main`` where the tuned stage writes a temporary that a later stage reads (a transposed conv's phases,
which a copy interleaves): that temporary's layout, and so the fragment's tile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from kgen.ops.attention import AttentionPattern
from kgen.scheduling import ir
from kgen.scheduling.layout import PLANES, Layout
from kgen.scheduling.lower import Buffers, Template, VectorViews
from kgen.scheduling.padding import Padding, pad_knobs, requested
from kgen.scheduling.partition import Stage
from kgen.scheduling.space import DEFAULT_LIMITS, Constraint, Limits, Space, choice, distinct, flag
from kgen.scheduling.templates.attention import AttentionTile
from kgen.scheduling.tiling import (
    MAX_BLOCK,
    TileLowering,
    real_reduce_axes,
    reduction_knobs,
    split_ok,
    unrolled_steps,
)
from kgen.te.tensor import PlaceholderOp, Tensor


def _inputs_read(stage: Stage) -> tuple[Tensor, ...]:
    """Program inputs (placeholders) the stage reads, in first-read order."""
    return tuple(t for t in stage.reads if isinstance(t.op, PlaceholderOp))


def _fits(layout: Layout, limits: Limits) -> bool:
    side = limits.get("max_texture_size", DEFAULT_LIMITS["max_texture_size"])
    return layout.texels <= side * side


def _output_layout(name: str, planes: int, shape: Sequence[int]) -> Layout:
    """The output's layout ``name`` split into ``planes`` (unsplit where it packs every axis that could be: the
    ``planes`` constraint says so)."""
    layout = Layout.named(name, shape)
    return layout.with_planes(planes) if layout.plane_axis is not None else layout


def _seeds(stage: Stage, inputs: Sequence[Tensor], names: set[str]) -> tuple[dict[str, Any], ...]:
    """Configs that are usually good (the tuner tries them first; invalid ones are skipped): every tensor 4 values
    a texel (channels, else the last axis; the main stage's output too, where a later stage reads it), so one
    fetch serves 4 steps of a reduction split by 4 (``k_unroll``: constant channels) looped innermost
    (``outer_inner``), or with the window unrolled (and not split, where no axis is left to split: a depthwise
    conv); or the output and the image 4 columns a texel (a depthwise conv, whose output channels each read their
    own input channel); 8, 4, 2 or 1 output texels per fragment (``planes``: 8 where the device has 8 render
    targets); or the output and the image in 2x2 pixel blocks with the window unrolled (a conv with few input
    channels, which packing channels would waste: 1.8x as fast on conv 3->64 k7 s2 in SwiftShader); a padded
    input read from a padded copy (``pad``)."""

    def four(t: Tensor) -> str:
        return "rgba_c" if len(t.shape) >= 3 else "rgba_last"

    channels = {"layout_out": four(stage.out), "layout_main": four(stage.out), "pad": 1}
    channels.update({f"layout_{t.name}": four(t) for t in inputs})
    columns = {**channels, "layout_out": "rgba_last", f"layout_{inputs[0].name}": "rgba_last"} if inputs else {}
    blocks = {
        "pad": 1,
        **{f"layout_{t.name}": "rgba_last" for t in inputs},
        **({f"layout_{inputs[0].name}": "rgba_2x2"} if inputs else {}),
        "layout_out": "rgba_2x2",
    }
    reductions = ((1, 0, 4), (0, 2, 4), (0, 0, 4), (0, 2, 1))
    most_planes_first = PLANES[::-1]
    families = [
        (channels, most_planes_first, reductions),
        (columns, most_planes_first, reductions),
        (blocks, (1,), reductions[1::2]),
    ]
    seeds = [
        {**layouts, "planes": planes, "outer_inner": inner, "unroll": unroll, "k_unroll": k}
        for layouts, planes_options, reduction_options in families
        for planes in planes_options
        for inner, unroll, k in reduction_options
    ]
    return distinct(seeds, names)


class TexelTile(Template):
    name = "texel"
    textures = True
    patterns: ClassVar[dict[type, Any]] = {AttentionPattern: AttentionTile("texel")}

    def space(self, stage: Stage) -> Space:
        inputs = _inputs_read(stage)
        knobs = [
            choice("layout_out", Layout.valid_names(len(stage.out.shape)), "the output's texture layout"),
            choice("planes", PLANES, "render targets: output texels per fragment (along an axis not packed)"),
        ]
        knobs += [choice(f"layout_{t.name}", Layout.valid_names(len(t.shape)), f"{t.name}'s layout") for t in inputs]
        if not stage.final:
            names = Layout.valid_names(len(stage.out.shape))
            knobs.append(choice("layout_main", names, "this stage's output layout, read by the stage after it"))
        knobs += reduction_knobs(stage)
        if len(real_reduce_axes(stage)) > 1:
            knobs.append(flag("outer_inner", "loop the outermost reduction axis innermost (conv: channels, by texel)"))
        knobs += pad_knobs(stage)

        def out_layout(c: Mapping[str, Any]) -> Layout:
            return _output_layout(c["layout_out"], c["planes"], stage.out.shape)

        def tile_layout(c: Mapping[str, Any]) -> Layout:
            return self.main_layout(stage, c) or out_layout(c)

        def block_ok(c: Mapping[str, Any], _: Limits) -> bool:
            layout = tile_layout(c)
            return layout.channels * layout.plane_count * unrolled_steps(stage, c) <= MAX_BLOCK

        def planes_ok(c: Mapping[str, Any], _: Limits) -> bool:
            return c["planes"] == 1 or Layout.named(c["layout_out"], stage.out.shape).plane_axis is not None

        def draw_buffers_ok(c: Mapping[str, Any], limits: Limits) -> bool:
            return c["planes"] <= limits.get("max_draw_buffers", DEFAULT_LIMITS["max_draw_buffers"])

        def textures_fit(c: Mapping[str, Any], limits: Limits) -> bool:
            layouts = [tile_layout(c), *(Layout.named(c[f"layout_{t.name}"], t.shape) for t in inputs)]
            return all(_fits(layout, limits) for layout in layouts)

        constraints = (
            Constraint(f"unrolled block over {MAX_BLOCK} instances", block_ok),
            Constraint("planes need an axis the output's layout does not pack (one of the last two)", planes_ok),
            Constraint("more planes than the device's render targets (max_draw_buffers)", draw_buffers_ok),
            Constraint("k_unroll does not divide its reduction axis", lambda c, _: split_ok(stage, c)),
            Constraint("a tensor does not fit in one texture of the device's maximum size", textures_fit),
        )
        return Space(tuple(knobs), constraints, _seeds(stage, inputs, {k.name for k in knobs}))

    def layouts(
        self, config: Mapping[str, Any], inputs: Sequence[Tensor], output: Tensor, limits: Limits
    ) -> list[tuple[Tensor, Layout]]:
        """Each program input's and the output's layout (an input the main stage does not read is R)."""
        chosen = [(t, Layout.named(config.get(f"layout_{t.name}", "r"), t.shape)) for t in inputs]
        out_name, planes = config.get("layout_out", "r"), config.get("planes", 1)
        if out_name not in Layout.valid_names(len(output.shape)):
            out_name, planes = "r", 1  # the main stage's output has another rank than the program's
        return [*chosen, (output, _output_layout(out_name, planes, output.shape))]

    def main_layout(self, stage: Stage, config: Mapping[str, Any]) -> Layout | None:
        """``layout_main``: a transposed conv's phases 4 output channels a texel, so that a fragment computes 4
        of them from vec4s of the weight."""
        return Layout.named(config["layout_main"], stage.out.shape) if "layout_main" in config else None

    def padding(self, stage: Stage, config: Mapping[str, Any]) -> Padding | None:
        """With ``pad``: the input padded so that the reduction reads it without guards."""
        return requested(stage, config)

    def lower(self, stage: Stage, config: Mapping[str, Any], buffers: Buffers, name: str) -> ir.Kernel:
        layout = buffers.layout(stage.out) or Layout(stage.out.shape)
        knobs = ("unroll", "k_unroll", "outer_inner")
        tile = {"wg": 1, "tile_b": 1, "vec4": 1, **{k: config[k] for k in knobs if k in config}}
        names = [ax.name for ax in stage.axes]
        last = len(names) - 1
        for axis, factor in layout.splits:
            if axis == last:
                tile["tile_b"] = factor
            else:
                tile["tile_axis"], tile["tile_a"] = names[axis], factor
        views = VectorViews(budget=len(stage.reads) + 1, texels=True)
        return TileLowering(stage, tile, buffers, name, views).kernel()
