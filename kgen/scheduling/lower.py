"""Lowering: a workload + template + config becomes a ``Program`` of loop-nest IR kernels.

The template decides the loop structure of each stage (see ``templates/``). This module holds what every
template shares: naming buffers, flattening a tensor index, turning TE loads into IR loads with common
subexpressions shared and neighbouring reads merged into vector reads, and assembling the program.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import sympy

from kgen.ops.workload import Workload
from kgen.scheduling import ir
from kgen.scheduling.layout import Layout
from kgen.scheduling.packing import Packing, packed_tensor, read_packed
from kgen.scheduling.padding import Padding, padded_copy, padded_tensors, read_padded
from kgen.scheduling.partition import Acc, Stage, partition
from kgen.scheduling.space import DEFAULT_LIMITS, Limits, Space
from kgen.scheduling.subsampling import Subsampling, compact_tensor, read_subsampled
from kgen.scheduling.wrapping import Wrapping, widen
from kgen.te import index as ix
from kgen.te.expr import Const, Expr, IndexCond, Load, map_children
from kgen.te.tensor import ComputeOp, Tensor

#: the name prefixes of a program's prepared copies (packed weights, padded images' borders): written once by its
#: prepare kernels, read on every run, so their storage lives as long as the model
PREPARED_PREFIXES = ("pack", "pad")
Ranges = dict[sympy.Symbol, tuple[int, int]]


class Template:
    """How a stage is scheduled: a space of knobs, and a lowering for any valid config of it. The hooks below
    return nothing unless a template overrides them.

    ``patterns`` maps the type of a TE output's ``pattern`` (``kgen.ops.attention.AttentionPattern``) to a
    template that lowers that whole graph as one kernel, with a ``space(pattern)`` of its own. A template with
    ``textures`` keeps its buffers in textures, laid out as ``layouts`` says.
    """

    name: ClassVar[str] = ""
    patterns: Mapping[type, Any] = MappingProxyType({})
    textures: ClassVar[bool] = False

    def space(self, stage: Stage) -> Space:
        raise NotImplementedError

    def lower(self, stage: Stage, config: Mapping[str, Any], buffers: Buffers, name: str) -> ir.Kernel:
        raise NotImplementedError

    def layouts(
        self, config: Mapping[str, Any], inputs: Sequence[Tensor], output: Tensor, limits: Limits
    ) -> list[tuple[Tensor, Layout]]:
        """Each program input's and the output's layout under the main stage's config (temporaries are R)."""
        return []

    def main_layout(self, stage: Stage, config: Mapping[str, Any]) -> Layout | None:
        """The layout of the main stage's output where it is a temporary that a later stage reads (else R)."""
        return None

    def packing(self, stage: Stage, config: Mapping[str, Any]) -> Packing | None:
        """The weights packing the config asks for."""
        return None

    def padding(self, stage: Stage, config: Mapping[str, Any]) -> Padding | None:
        """The padded copy of an input the config asks for."""
        return None

    def subsampling(self, stage: Stage, config: Mapping[str, Any]) -> Subsampling | None:
        """The compact copy of a strided input the config reads instead."""
        return None

    def wrapping(self, stage: Stage, config: Mapping[str, Any]) -> Wrapping | None:
        """The copy of an image into rows that share their padding, for a conv computed wide."""
        return None

    def helper_config(self, stage: Stage) -> dict[str, Any]:
        """The config of a stage other than the tuned one (copies, a softmax's max)."""
        return self.space(stage).default()


@dataclass
class Buffers:
    """The buffer each tensor lives in, and its texture layout where it has one. A tensor in ``windows`` lives
    inside another's buffer: ``windows[id(t)] = (base, offsets)`` puts ``t[i]`` at ``base[i + offsets]``."""

    of: dict[int, ir.Buffer]
    layouts: dict[int, Layout] = field(default_factory=dict)
    windows: dict[int, tuple[Tensor, tuple[int, ...]]] = field(default_factory=dict)

    def __getitem__(self, t: Tensor) -> ir.Buffer:
        return self.of[id(t)]

    def index(self, t: Tensor, indices: tuple[sympy.Expr, ...]) -> sympy.Expr:
        """Where ``t[indices]`` lives in its buffer: the row-major offset, or the layout's storage index."""
        if id(t) in self.windows:
            base, offsets = self.windows[id(t)]
            return self.index(base, tuple(i + o for i, o in zip(indices, offsets, strict=True)))
        layout = self.layouts.get(id(t))
        return flat_index(t, indices) if layout is None else layout.storage_index(indices)

    def layout(self, t: Tensor) -> Layout | None:
        return self.layouts.get(id(t))


def flat_index(t: Tensor, indices: tuple[sympy.Expr, ...]) -> sympy.Expr:
    """Row-major offset of ``t[indices]``."""
    offset = sympy.Integer(0)
    stride = 1
    for i, d in zip(reversed(indices), reversed(t.shape), strict=True):
        offset += i * stride
        stride *= d
    return offset


@dataclass
class VectorViews:
    """Which buffers a kernel reads 4 lanes at a time. On WebGPU each costs one more binding, so there is a
    budget; with ``texels`` (WebGL) only RGBA textures qualify, and a 4-lane read is one texel fetch."""

    budget: int
    names: set[str] = field(default_factory=set)
    texels: bool = False

    def allows(self, buf: ir.Buffer) -> bool:
        if buf.size % 4 or buf.scope != "global" or (self.texels and buf.channels != 4):
            return False
        return buf.name in self.names or len(self.names) < self.budget


@dataclass
class LoadCache:
    """Collects the distinct reads of a block of code as constants declared before it.

    Equal reads (same buffer, index and guard) are read once. With ``views``, reads of two or more lanes of one
    aligned group of 4 (same guard) become one 4-wide read: one bounds check instead of several.
    """

    buffers: Buffers
    ranges: Ranges
    prefix: str
    views: VectorViews | None = None
    _pending: dict[tuple, ir.Local] = field(default_factory=dict)
    _renames: dict[str, ir.Local] = field(default_factory=dict)
    _count: int = 0

    def lower(self, expr: Expr, acc: ir.Local | None = None) -> Expr:
        """``expr`` with TE loads replaced by locals (declared by the next ``flush``) and ``Acc`` by ``acc``."""
        match expr:
            case Load(tensor=t, indices=indices, guard=guard, default=default):
                guard = ix.simplify(guard, self.ranges)
                if guard is sympy.false:
                    return Const(default, t.dtype)
                key = (self.buffers[t], ix.simplify(self.buffers.index(t, indices), self.ranges), guard, default)
                if key not in self._pending:
                    self._pending[key] = ir.Local(f"{self.prefix}{self._count}", t.dtype)
                    self._count += 1
                return self._pending[key]
            case IndexCond(cond=cond):
                return IndexCond(ix.simplify(cond, self.ranges))
            case Acc():
                assert acc is not None, "Acc outside an epilogue"
                return acc
        return map_children(expr, lambda e: self.lower(e, acc))

    def flush(self) -> list[ir.Stmt]:
        """Declarations of the reads collected since the last flush: vector reads first, in first-use order."""
        groups: dict[tuple, list[tuple[int, sympy.Expr, ir.Local]]] = {}
        for (buf, index, guard, default), local in self._pending.items():
            lane = ix.simplify(ix.floormod(index, 4), self.ranges) if self.views and self.views.allows(buf) else None
            if lane is not None and lane.is_Integer:
                groups.setdefault((buf, sympy.expand(index - lane), guard, default), []).append(
                    (int(lane), index, local)
                )
            else:
                groups.setdefault((buf, index, guard, default), []).append((-1, index, local))
        vectors: list[ir.Stmt] = []
        scalars: list[ir.Stmt] = []
        for (buf, base, guard, default), members in groups.items():
            if members[0][0] >= 0 and len({lane for lane, _, _ in members}) >= 2:
                assert self.views is not None
                self.views.names.add(buf.name)
                vname = f"{members[0][2].name}v"
                vectors.append(ir.Decl(vname, buf.dtype, ir.BufLoad(buf, base, 4, guard, default), 4, const=True))
                for lane, _, local in members:
                    self._renames[local.name] = ir.Local(vname, buf.dtype, 4, lane)
            else:
                for _, index, local in members:
                    load = ir.BufLoad(buf, index, 1, guard, default)
                    scalars.append(ir.Decl(local.name, buf.dtype, load, const=True))
        self._pending.clear()
        return vectors + scalars

    def resolve(self, expr: Expr) -> Expr:
        """``expr`` with uses of reads that were merged into vector reads pointed at their lanes."""
        if isinstance(expr, ir.Local) and expr.name in self._renames:
            return self._renames[expr.name]
        return map_children(expr, self.resolve)


def _main_index(stages: list[Stage]) -> int:
    """The stage a config schedules: the one with the most arithmetic (the last of equals)."""
    return max(range(len(stages)), key=lambda k: (stages[k].flops, k))


def lower_workload(
    workload: Workload, template: Template, config: Mapping[str, Any] | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[ir.Program, dict[str, Any]]:
    """The program for ``workload`` and the complete config it was lowered with."""
    inputs, output = workload.build()
    return lower(inputs, output, template, config, workload.op, limits)


def lower(
    inputs: list[Tensor],
    output: Tensor,
    template: Template,
    config: Mapping[str, Any] | None,
    name: str,
    limits: Limits = DEFAULT_LIMITS,
    input_planes: Mapping[int, tuple[int, int]] | None = None,
) -> tuple[ir.Program, dict[str, Any]]:
    """The program computing ``output`` from ``inputs`` (any TE graph: an op, or ops fused by a graph pass).

    The config schedules the stage with the most arithmetic; other stages (a softmax's max, an average pool's
    divisor) use their template's default, which is valid for any shape. ``input_planes`` (textures) gives the
    planes of inputs (by position) that another kernel wrote in planes: they are read from the layers of one 2D
    array texture, in the layout the config gives them.
    """
    whole = pattern_template(template, output)
    if whole is not None:
        return _lower_whole(whole, template, inputs, output, config, name, limits)
    stages = partition(output)
    main = _main_index(stages)
    full = template.space(stages[main]).complete(config, limits)
    prepare: list[tuple[str, Stage]] = []  # (buffer name prefix, stage) of the kernels run once per inputs
    packing = template.packing(stages[main], full)
    if packing is not None:
        packed = packed_tensor(packing)
        stages[main] = read_packed(stages[main], packing, packed)
        prepare += [(PREPARED_PREFIXES[0], s) for s in partition(packed)]
    strided = template.subsampling(stages[main], full)
    if strided is not None:  # the strided pixels copied compact (and padded) on every run, then read at stride 1
        compact = compact_tensor(strided)
        copies = partition(compact)
        stages[main] = read_subsampled(stages[main], strided, compact)
        stages[main:main] = copies
        main += len(copies)
    windows: dict[int, tuple[Tensor, tuple[int, ...]]] = {}

    def in_memory(p: Padding) -> tuple[Tensor, list[Stage]]:
        """The padded tensor, its border filled once (a prepare kernel), and the stages that copy the interior
        into it, a window of its buffer, on every run."""
        padded, interior = padded_tensors(p)
        prepare.extend((PREPARED_PREFIXES[1], s) for s in partition(padded))
        windows[id(interior)] = (padded, p.before)
        return padded, partition(interior)

    padding = template.padding(stages[main], full)
    if padding is not None:
        if template.textures:  # textures: the whole padded copy on every run
            padded = padded_copy(padding)
            copies = partition(padded)
        else:
            padded, copies = in_memory(padding)
        stages[main] = read_padded(stages[main], padding, padded)
        stages[main:main] = copies
        main += len(copies)
    wrapping = template.wrapping(stages[main], full)
    if wrapping is not None:  # the image copied into rows that share their padding, the conv computed wide
        copy, copies = in_memory(wrapping.copy)
        wide, narrow = widen(stages[main], wrapping, copy)
        stages[main : main + 1] = [*copies, wide, narrow]
        main += len(copies)

    layouts: dict[int, Layout] = {}
    if template.textures:
        layouts = {id(t): lay for t, lay in template.layouts(full, inputs, output, limits)}
        for k, (axis, count) in (input_planes or {}).items():
            layouts[id(inputs[k])] = layouts[id(inputs[k])].with_planes(count, axis)
        layouts.update({id(s.out): Layout(s.out.shape) for s in stages[:-1]})
        if main != len(stages) - 1 and (chosen := template.main_layout(stages[main], full)) is not None:
            # and every other intermediate stage of its shape (a layer norm's mean beside its variance): 4 rows a
            # fragment, where one value a fragment took 128 fragments of 384 one-lane reads in MiniLM's
            same = [s for s in stages[:-1] if s.out.shape == stages[main].out.shape]
            layouts.update({id(s.out): chosen for s in same})
        if padding is not None:  # the padded copy packs as its input does
            layouts[id(padded)] = Layout(padded.shape, layouts[id(padding.tensor)].packing)
    max_width = limits.get("max_texture_size", DEFAULT_LIMITS["max_texture_size"])

    def buffer(name: str, t: Tensor) -> ir.Buffer:
        return _buffer(name, t, layouts.get(id(t)), max_width)

    buffers: dict[int, ir.Buffer] = {}
    for k, t in enumerate(inputs):
        buffers[id(t)] = buffer(f"in{k}", t)
    temps = []
    for k, stage in enumerate(stages[:-1]):
        if id(stage.out) not in windows:
            buffers[id(stage.out)] = buffer(f"tmp{k}", stage.out)
            temps.append(buffers[id(stage.out)])
    for k, (prefix, stage) in enumerate(prepare):
        buffers[id(stage.out)] = buffer(f"{prefix}{k}", stage.out)
        temps.append(buffers[id(stage.out)])
    buffers.update({key: buffers[id(base)] for key, (base, _) in windows.items()})
    out = buffer("out", output)
    buffers[id(output)] = out

    def lowered(stage: Stage, stage_config: Mapping[str, Any], kernel_name: str) -> ir.Kernel:
        return template.lower(stage, stage_config, Buffers(buffers, layouts, windows), kernel_name)

    kernels = []
    for k, stage in enumerate(stages):
        stage_config = full if k == main else template.helper_config(stage)
        kernels.append(lowered(stage, stage_config, f"{name}_{k}" if len(stages) > 1 else name))
    packs = [lowered(s, template.helper_config(s), f"{name}_{prefix}{k}") for k, (prefix, s) in enumerate(prepare)]
    program = ir.Program(
        tuple(buffers[id(t)] for t in inputs),
        out,
        tuple(temps),
        tuple(kernels),
        prepare=tuple(packs),
        layouts={buffers[key].name: layout for key, layout in layouts.items()},
    )
    return program, full


def pattern_template(template: Template, output: Tensor) -> Any:
    """The template that lowers ``output``'s whole graph as one kernel, or None (stage by stage)."""
    pattern = output.op.pattern if isinstance(output.op, ComputeOp) else None
    whole = None if pattern is None else template.patterns.get(type(pattern))
    return whole if whole is not None and whole.handles(pattern) else None


def _buffer(name: str, t: Tensor, layout: Layout | None, max_width: int) -> ir.Buffer:
    """The buffer of ``t``: flat, or a texture (of at most ``max_width`` texels a side) in ``layout``."""
    if layout is None:
        return ir.Buffer(name, t.dtype, math.prod(t.shape))
    texture = layout.texture(max_width)
    return ir.Buffer(name, t.dtype, layout.size, channels=layout.channels, texture=texture, planes=layout.plane_count)


def _lower_whole(
    whole: Any,
    template: Template,
    inputs: list[Tensor],
    output: Tensor,
    config: Mapping[str, Any] | None,
    name: str,
    limits: Limits,
) -> tuple[ir.Program, dict[str, Any]]:
    pattern = output.op.pattern
    full = whole.space(pattern).complete(config, limits)
    layouts = whole.layouts(pattern, full, output) if template.textures else {}
    max_width = limits.get("max_texture_size", DEFAULT_LIMITS["max_texture_size"])
    buffers = {id(t): _buffer(f"in{k}", t, layouts.get(id(t)), max_width) for k, t in enumerate(inputs)}
    buffers[id(output)] = out = _buffer("out", output, layouts.get(id(output)), max_width)
    temps = whole.temps(pattern, full)
    kernel = whole.program(inputs, output, full, buffers, name, temps, layouts)
    named = {buffers[key].name: layout for key, layout in layouts.items()}
    return ir.Program(tuple(buffers[id(t)] for t in inputs), out, temps, (kernel,), layouts=named), full


def main_stage(workload: Workload) -> Stage:
    """The stage a config schedules (the one with the most arithmetic)."""
    return main_stage_of(workload.build()[1])


def main_stage_of(output: Tensor) -> Stage:
    """The stage of ``output``'s graph that a config schedules."""
    stages = partition(output)
    return stages[_main_index(stages)]
