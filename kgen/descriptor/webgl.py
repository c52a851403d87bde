"""A whole model as one WebGL2 program: every tensor in a texture of a planned layout.

Each node's config chooses the layouts its kernel reads and writes (``layout_<input>``, ``layout_out``). A tensor
lives in the layout its producer writes; a consumer that reads another layout gets a conversion kernel
(``kgen.backends.webgl.conversion``) before it, shared by every later consumer of that layout; a copy (a
reshape, a transpose) reads its input as produced and writes the layout its consumers read instead. A weight is
written by the page into each layout a consumer reads it in; a graph input into its first consumer's. An output
split into planes (render targets, as its record chose: a fragment computes that many texels) is a 2D array
texture: a kernel that reads each value of it at most 9 times in that layout (a fused residual, a depthwise
conv) samples the array's layers itself, and a conversion kernel reads it into any other consumer's layout.
Textures of one layout and size are pooled by liveness. A matmul's weight larger than one texture is split into
blocks of rows (``split_wide_weights``), each a range of the weight's values that the page uploads into a texture
of its own. The reshapes around a transpose are folded into it (``fold_views_into_transposes``): one copy where
each was one.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

from kgen import backends
from kgen.backends.webgl import conversion
from kgen.codegen.glsl.renderer import render
from kgen.codegen.program import CompiledKernel, CompiledProgram
from kgen.descriptor.entries import io_entry, kernel_json, memory_report, node_json
from kgen.descriptor.nodes import Choice, NodeCache, choose, node_te, program_for
from kgen.errors import KgenError
from kgen.graph import memory
from kgen.graph.ir import Graph, Node
from kgen.graph.passes.fold_views import fold_views_into_transposes
from kgen.graph.passes.split_weights import split_wide_weights
from kgen.records.store import RecordStore
from kgen.scheduling.layout import NAMES, PLANES, Layout
from kgen.scheduling.lower import main_stage_of
from kgen.scheduling.partition import Stage
from kgen.scheduling.space import DEFAULT_LIMITS, Limits
from kgen.te.expr import Load, walk
from kgen.te.tensor import Tensor


def _layout_name(layout: dict[str, Any]) -> str:
    shape = layout["shape"]
    for name in NAMES:
        try:
            candidate = Layout.named(name, shape).to_json()
        except ValueError:
            continue
        if candidate["packing"] == layout["packing"]:
            return name
    raise AssertionError(f"no layout name packs like {layout}")


def _plane_count(layout: dict[str, Any]) -> int:
    return layout.get("planes", [0, 1])[1]


def _key(layout: dict[str, Any], texture: tuple[int, int]) -> str:
    return json.dumps([layout, list(texture)], sort_keys=True)


class _Storage:
    """The model's textures: each a (layout, texture) and its size in storage elements."""

    def __init__(self) -> None:
        self.info: dict[str, dict[str, Any]] = {}
        self.where: dict[str, dict[str, str]] = {}  # tensor -> layout key -> storage name

    def add(self, name: str, tensor: str, layout: dict[str, Any], texture: tuple[int, int], size: int) -> str:
        self.info[name] = {"layout": layout, "texture": list(texture), "size": size}
        self.where.setdefault(tensor, {})[_key(layout, texture)] = name
        return name


def _kernel(kernel: CompiledKernel, names: dict[str, str], prefix: str) -> dict[str, Any]:
    """The kernel's entry with its bindings on the model's textures; a read keeps its own sampler's name."""
    entry = kernel_json(replace(kernel, name=f"{prefix}_{kernel.name}"))
    for b in entry["bindings"]:
        if b["access"] == "read":
            b["uniform"] = f"u_{b['buffer']}"
        b["buffer"] = names[b["buffer"]]
    return entry


#: a node's program inputs (placeholders), its main stage and the graph tensor of each input
_NodeTe = tuple[list[Tensor], Stage, tuple[str, ...]]


def _as_produced(
    graph: Graph, te: _NodeTe, choice: Choice, storage: _Storage, limits: Limits, copy: bool = False
) -> Choice:
    """``choice`` with each computed input whose layout its config leaves to the default (a fused residual, which
    the bare op's records do not name), or every computed input of a ``copy``, read in the layout its producer
    wrote: no conversion kernel before it, and one fetch for the 4 values of a texel. Unchanged where that config
    would not be valid."""
    inputs, stage, names = te
    produced = {}
    for t, tensor in zip(inputs, names, strict=True):
        knob, have = f"layout_{t.name}", storage.where.get(tensor)
        if (copy or knob not in choice.config) and have and tensor not in graph.constants:
            produced[knob] = _layout_name(storage.info[next(iter(have.values()))]["layout"])
    if not produced:
        return choice
    config = {**choice.config, **produced}
    try:
        backends.get("webgl").template.space(stage).complete(config, limits)
    except KgenError:
        return choice
    return replace(choice, config=config)


#: ops whose kernel on WebGL only moves values, as fast from and into one layout as another
COPIES = ("transpose", "permute")


def _is_copy(node: Node) -> bool:
    """Whether ``node``'s kernel only moves values: a view (a reshape, a copy here) or a transpose."""
    return node.is_view or (node.op in COPIES and not node.epilogue)


def _for_consumers(
    graph: Graph,
    node: Node,
    stage: Stage,
    choice: Choice,
    consumers: list[Node],
    chosen: dict[str, Choice],
    limits: Limits,
    cache: NodeCache,
) -> Choice:
    """A copy's (``_is_copy``; its main stage is ``stage``) choice with its output in the layout that all its
    ``consumers``' programs, under their records' choices (``chosen``, by output), read it in: the copy then does
    the conversion a kernel after it would do. Unchanged where they disagree or that config is not valid."""
    if not _is_copy(node):
        return choice
    wanted = set()
    for consumer in consumers:
        program = program_for(graph, consumer, "webgl", chosen[consumer.output], limits, cache, {})
        compiled = render(program.program)
        wanted |= {
            _layout_name(b.layout)
            for b, tensor in zip(compiled.inputs, program.tensors, strict=True)
            if tensor == node.output and b.layout is not None
        }
    if len(wanted) != 1:
        return choice
    config = {**choice.config, "layout_out": wanted.pop(), "planes": 1}
    try:
        backends.get("webgl").template.space(stage).complete(config, limits)
    except KgenError:
        return choice
    return replace(choice, config=config)


#: reads of each value of an input above which a kernel reads it converted out of its producer's planes, not from
#: the planes themselves: a 1x1 conv (a value read once per output channel) reading its image from the layers ran up
#: to 1.5x slower on SwiftShader, more than the conversion costs; a 3x3 depthwise conv (9 reads a value) gains
#: (MobileNet-v2's WebGL program: 11 of 52 conversions go, 168 -> 159 ms)
FEW_READS = 9


def _read_few(te: _NodeTe) -> set[int]:
    """The positions of the inputs whose every value the node's main stage reads at most ``FEW_READS`` times: those
    it reads outside its reduction (an epilogue's residual, an elementwise op's operands) once per output value,
    those of its reduction as many times as the stage's iterations over the input's size."""
    inputs, stage, _ = te
    reduced = {id(n.tensor) for n in walk(stage.reduce.body) if isinstance(n, Load)} if stage.reduce else set()
    steps = math.prod(ax.extent for ax in (*stage.axes, *stage.reduce_axes))
    return {k for k, t in enumerate(inputs) if id(t) not in reduced or steps <= FEW_READS * math.prod(t.shape)}


def _read_in_planes(
    compiled: CompiledProgram, tensors: list[str], storage: _Storage, few: set[int]
) -> dict[int, tuple[int, int]]:
    """The inputs (by position, among those read ``few`` times a value) that their producer wrote in planes, in the
    layout this kernel reads them in, and those planes: the kernel reads the producer's 2D array texture, with no
    conversion kernel before it."""
    planes: dict[int, tuple[int, int]] = {}
    for k, (b, tensor) in enumerate(zip(compiled.inputs, tensors, strict=True)):
        if k not in few:
            continue
        for name in storage.where.get(tensor, {}).values():
            layout = dict(storage.info[name]["layout"])
            split = layout.pop("planes", None)
            if split is not None and layout == b.layout:
                planes[k] = (split[0], split[1])
    return planes


def _within(choice: Choice, draw_buffers: int) -> Choice:
    """The record's config with at most ``draw_buffers`` planes (render targets): a variant for devices with
    fewer than the tuning device had."""
    planes = choice.config.get("planes", 1)
    if planes <= draw_buffers:
        return choice
    fewer = max(p for p in PLANES if p <= draw_buffers)
    return replace(choice, config={**choice.config, "planes": fewer}, note=f"planes {planes} -> {fewer} (this variant)")


def assemble_webgl(
    graph: Graph,
    records: RecordStore | None,
    device: str | None,
    cache: NodeCache,
    draw_buffers: int,
    max_texture_size: int = DEFAULT_LIMITS["max_texture_size"],
):
    """(program, inputs, outputs, weights, nodes, memory report) of ``graph`` on WebGL2, its kernels writing at
    most ``draw_buffers`` render targets, in textures of at most ``max_texture_size`` texels a side."""
    limits = {**DEFAULT_LIMITS, "max_draw_buffers": draw_buffers, "max_texture_size": max_texture_size}
    graph, views = split_wide_weights(fold_views_into_transposes(graph), 4 * max_texture_size**2)  # RGBA: 4 a texel
    storage = _Storage()
    weights: dict[str, str] = {}  # storage -> tensor
    persistent: set[str] = set()
    steps: list[tuple[list[str], list[str]]] = []
    kernels: list[dict[str, Any]] = []
    nodes: list[dict[str, Any]] = []
    conversions: dict[tuple, CompiledProgram] = {}

    def convert(tensor: str, source: str, layout: dict[str, Any], texture: tuple[int, int]) -> str:
        src = storage.info[source]
        shape = tuple(graph.shape(tensor))
        planes = src["layout"].get("planes")
        source_planes = None if planes is None else (planes[0], planes[1])
        key = (shape, _layout_name(src["layout"]), _layout_name(layout), source_planes)
        if key not in conversions:
            conversions[key] = conversion(shape, key[1], key[2], limits=limits, source_planes=source_planes)
        program = conversions[key]
        target = storage.add(f"{tensor}@{key[2]}", tensor, layout, texture, program.output.size)
        names = {program.inputs[0].name: source, program.output.name: target}
        kernels.extend(_kernel(k, names, f"c{len(kernels)}") for k in program.kernels)
        steps.append(([source], [target]))
        return target

    consumers = graph.consumers()
    chosen = {node.output: choose(graph, node, "webgl", records, device, {}, limits) for node in graph.nodes}
    for index, node in enumerate(graph.nodes):
        inputs, out, names = node_te(graph, node)
        te = (inputs, main_stage_of(out), names)
        readers = consumers.get(node.output, [])
        choice = _for_consumers(graph, node, te[1], chosen[node.output], readers, chosen, limits, cache)
        choice = _within(choice, draw_buffers)
        choice = _as_produced(graph, te, choice, storage, limits, _is_copy(node))
        np_ = program_for(graph, node, "webgl", choice, limits, cache, {})
        compiled = render(np_.program)
        planes = _read_in_planes(compiled, np_.tensors, storage, _read_few(te))
        if planes:  # read the producers' 2D array textures themselves, where this kernel can
            in_planes = program_for(graph, node, "webgl", choice, limits, cache, {}, planes)
            rendered = render(in_planes.program)
            if all(
                _key(rendered.inputs[k].layout, rendered.inputs[k].texture) in storage.where[np_.tensors[k]]
                for k in planes
            ):
                np_, compiled = in_planes, rendered
        names: dict[str, str] = {}
        for b, tensor in zip(compiled.inputs, np_.tensors, strict=True):
            assert b.layout is not None and b.texture is not None
            key = _key(b.layout, b.texture)
            have = storage.where.get(tensor, {})
            if key in have:
                names[b.name] = have[key]
            elif tensor in graph.constants or not have:
                name = storage.add(f"{tensor}@{_layout_name(b.layout)}", tensor, b.layout, b.texture, b.size)
                if tensor in graph.constants:
                    weights[name] = tensor
                    persistent.add(name)
                names[b.name] = name
            else:
                names[b.name] = convert(tensor, next(iter(have.values())), b.layout, b.texture)
        out = compiled.output
        assert out.layout is not None and out.texture is not None
        names[out.name] = storage.add(node.output, node.output, out.layout, out.texture, out.size)
        for b in compiled.buffers:
            if b.role == "temp":
                assert b.layout is not None and b.texture is not None
                names[b.name] = storage.add(f"n{index}.{b.name}", f"n{index}.{b.name}", b.layout, b.texture, b.size)
        kernels.extend(_kernel(k, names, f"n{index}") for k in compiled.kernels)
        written = compiled.buffers[len(compiled.inputs) :]
        steps.append(([names[b.name] for b in compiled.inputs], [names[b.name] for b in written]))
        nodes.append(node_json(np_))

    outputs = {next(iter(storage.where[o].values())) for o in graph.outputs}
    sizes = {n: 4 * i["size"] for n, i in storage.info.items()}
    tenants = memory.lifetimes(steps, sizes, keep=outputs, always=persistent)
    groups: dict[str, list[memory.Tenant]] = {}
    for t in tenants:
        info = storage.info[t.name]
        groups.setdefault(_key(info["layout"], tuple(info["texture"])), []).append(t)
    texture_of: dict[str, str] = {}
    buffers: list[dict[str, Any]] = []
    for g, members in enumerate(groups.values()):
        slot_of, slot_bytes = memory.plan_pool(members)
        info = storage.info[members[0].name]
        for s in range(len(slot_bytes)):  # one layout and texture size: every slot is the same size
            buffers.append({"name": f"t{g}_{s}", "dtype": "float32", "role": "temp", **info})
        texture_of.update({t.name: f"t{g}_{slot_of[t.name]}" for t in members})
    for k in kernels:
        for b in k["bindings"]:
            b["buffer"] = texture_of[b["buffer"]]
    planes = max((_plane_count(b["layout"]) for b in buffers), default=1)
    program = {"backend": "webgl", "buffers": buffers, "kernels": kernels, "prepare": 0, "draw_buffers": planes}
    planned = sum(4 * b["size"] for b in buffers)
    weights_bytes = sum(sizes[n] for n in persistent)

    def io(name: str) -> dict[str, Any]:
        return io_entry(graph, name, texture_of[next(iter(storage.where[name].values()))])

    report = memory_report(planned, weights_bytes, planned - weights_bytes, tenants, persistent)
    weight_entries = []
    for n, t in sorted(weights.items()):
        entry = {"tensor": t, "buffer": texture_of[n], "shape": list(graph.shape(t))}
        if t in views:  # a block of a weight's rows: its values from the offset on
            entry.update(tensor=views[t].tensor, offset=views[t].offset)
        weight_entries.append(entry)
    return (
        program,
        [io(v.name) for v in graph.kernel_inputs],
        [io(o) for o in graph.outputs],
        weight_entries,
        nodes,
        report,
    )
