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

Inside an unrolled block every distinct read happens once, before the arithmetic (common subexpressions and
register reuse fall out of this), and out-of-range tiles are clamped for reads and guarded for writes, so every
config is valid for every shape.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import sympy

from kgen.scheduling import ir
from kgen.scheduling.lower import Buffers, LoadCache, VectorViews, flat_index
from kgen.scheduling.partition import Stage, substitute
from kgen.scheduling.space import Constraint, Space, choice, flag
from kgen.te import index as ix
from kgen.te.expr import Binary, Const, Expr, Load, walk

MAX_BLOCK = 256  # unrolled (tile element × reduction step) instances in one block
MAX_TILE = 32  # accumulators per thread


def tile_axis_candidates(stage: Stage) -> tuple[str, ...]:
    """Axes (not the last) that some input of the reduction does not depend on, best reuse first."""
    if stage.reduce is None or len(stage.axes) < 2:
        return ()
    loads = [n for n in walk(stage.reduce.body) if isinstance(n, Load)]
    scored = []
    for pos, ax in enumerate(stage.axes[:-1]):
        if ax.extent == 1:
            continue
        free = sum(all(ax.var not in e.free_symbols for e in (*n.indices, n.guard)) for n in loads)
        if free:
            scored.append((-free, -ax.extent, pos, ax.name))
    return tuple(name for *_, name in sorted(scored))


class GpuTile:
    name = "gpu_tile"

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
            ]
        if len(stage.axes) >= 3:
            knobs.append(flag("merge_hw", "treat the last two axes as one (implicit GEMM over pixels)"))
        n_reduce = len(stage.reduce_axes)
        if n_reduce:
            knobs += [
                choice("unroll", tuple(range(min(2, n_reduce) + 1)), "innermost reduction axes fully unrolled"),
                choice("k_unroll", (1, 2, 4, 8), "unroll factor of the next reduction axis (must divide it)"),
            ]
        knobs.append(flag("vec4", "4-wide reads and writes where aligned"))
        constraints = (
            Constraint("wg exceeds the device's invocations per workgroup", _fits_device),
            Constraint(f"more than {MAX_TILE} outputs per thread", lambda c, _: _tile_size(c) <= MAX_TILE),
            Constraint(f"unrolled block over {MAX_BLOCK} instances", lambda c, _: _block_size(stage, c) <= MAX_BLOCK),
            Constraint("k_unroll does not divide its reduction axis", lambda c, _: _split_ok(stage, c)),
            Constraint("merge_hw with tile_axis among the merged axes", lambda c, _: _merge_ok(stage, c)),
        )
        return Space(tuple(knobs), constraints)

    def lower(self, stage: Stage, config: Mapping[str, Any], buffers: Buffers, name: str) -> ir.Kernel:
        return _TileLowering(stage, config, buffers, name).kernel()


def _fits_device(config: Mapping[str, Any], limits: Mapping[str, int]) -> bool:
    return config["wg"] <= min(limits["max_workgroup_invocations"], limits["max_workgroup_size_x"])


def _tile_size(config: Mapping[str, Any]) -> int:
    return config["tile_b"] * config.get("tile_a", 1)


def _reduce_plan(stage: Stage, config: Mapping[str, Any]):
    """(looped axes, split axis or None, unrolled axes) of the reduction under ``config``."""
    axes = stage.reduce_axes
    n_unrolled = config.get("unroll", 0)
    looped, unrolled = axes[: len(axes) - n_unrolled], axes[len(axes) - n_unrolled :]
    split = looped[-1] if looped and config.get("k_unroll", 1) > 1 else None
    return looped, split, unrolled


def _block_size(stage: Stage, config: Mapping[str, Any]) -> int:
    _, split, unrolled = _reduce_plan(stage, config)
    steps = math.prod(ax.extent for ax in unrolled) * (config["k_unroll"] if split is not None else 1)
    return _tile_size(config) * steps


def _split_ok(stage: Stage, config: Mapping[str, Any]) -> bool:
    _, split, _ = _reduce_plan(stage, config)
    if config.get("k_unroll", 1) == 1:
        return True
    return split is not None and split.extent % config["k_unroll"] == 0


def _merge_ok(stage: Stage, config: Mapping[str, Any]) -> bool:
    if not config.get("merge_hw") or "tile_axis" not in config:
        return True
    return config["tile_axis"] not in (stage.axes[-2].name, stage.axes[-1].name)


class _TileLowering:
    def __init__(self, stage: Stage, config: Mapping[str, Any], buffers: Buffers, name: str) -> None:
        self.stage, self.config, self.buffers, self.name = stage, config, buffers, name
        axes = stage.axes
        if config.get("merge_hw"):
            p = ix.index_var("p")
            width = axes[-1].extent
            self.logical = [(ax.var, ax.extent) for ax in axes[:-2]] + [(p, axes[-2].extent * width)]
            self.unmerge = {axes[-2].var: ix.floordiv(p, width), axes[-1].var: ix.floormod(p, width)}
        else:
            self.logical = [(ax.var, ax.extent) for ax in axes]
            self.unmerge = {}
        self.tiles = [1] * len(self.logical)
        self.tiles[-1] = config["tile_b"]
        if config.get("tile_a", 1) > 1:
            names = [v.name for v, _ in self.logical]
            self.tiles[names.index(config["tile_axis"])] = config["tile_a"]
        self.threads = [math.ceil(e / t) for (_, e), t in zip(self.logical, self.tiles, strict=True)]
        self.total = math.prod(self.threads)
        self.ranges: dict[sympy.Symbol, tuple[int, int]] = {}
        self.reads_vector = bool(config["vec4"])
        n_params = len(stage.reads) + 1
        self.views = VectorViews(budget=max(0, 8 - n_params - 1)) if self.reads_vector else None

    # -- thread coordinates ------------------------------------------------------------------------------
    def _coordinates(self) -> tuple[list[ir.Stmt], list[sympy.Expr]]:
        t0 = ix.index_var("t0")
        self.t0 = t0
        self.ranges[t0] = (0, self.total - 1)
        lets, coords = [], []
        for pos, ((var, _), count) in enumerate(zip(self.logical, self.threads, strict=True)):
            if count == 1:
                coords.append(sympy.Integer(0))
                continue
            inner = math.prod(self.threads[pos + 1 :])
            value = ix.floordiv(t0, inner)
            if pos > 0 and math.prod(self.threads[:pos]) > 1:
                value = ix.floormod(value, count)
            q = ix.index_var(f"q_{var.name}")
            self.ranges[q] = (0, count - 1)
            lets.append(ir.Let(q, ix.simplify(value, self.ranges)))
            coords.append(q)
        return lets, coords

    def _values(self, coords: list[sympy.Expr], offsets: tuple[int, ...], clamp: bool) -> list[sympy.Expr]:
        values = []
        for (_, extent), tile, q, o in zip(self.logical, self.tiles, coords, offsets, strict=True):
            v = tile * q + o
            if clamp and extent % tile:
                v = sympy.Min(v, extent - 1)
            values.append(v)
        return values

    def _data_mapping(self, values: list[sympy.Expr]) -> dict[sympy.Symbol, sympy.Expr]:
        logical = {var: v for (var, _), v in zip(self.logical, values, strict=True)}
        mapping = {}
        for ax in self.stage.axes:
            if ax.var in self.unmerge:
                mapping[ax.var] = self.unmerge[ax.var].xreplace(logical)
            else:
                mapping[ax.var] = logical[ax.var]
        return mapping

    def _offsets(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*(range(t) for t in self.tiles)))

    # -- the kernel ----------------------------------------------------------------------------------------
    def kernel(self) -> ir.Kernel:
        lets, coords = self._coordinates()
        offsets = self._offsets()
        accs = {o: ir.Local(f"acc{k}", self.stage.out.dtype) for k, o in enumerate(offsets)}
        body: list[ir.Stmt | None] = list(lets)
        if self.stage.reduce is not None:
            identity = Const(self.stage.reduce.identity, self.stage.out.dtype)
            body += [ir.Decl(a.name, a.dtype, identity) for a in accs.values()]
            body.append(self._reduction(coords, offsets, accs))
        body += self._epilogue(coords, offsets, accs)
        params = (*(self.buffers[t] for t in self.stage.reads), self.buffers[self.stage.out])
        return ir.Kernel(
            self.name, params, ir.seq(*body), (self.total,), (self.config["wg"],), (self.t0,), ranges=dict(self.ranges)
        )

    def _reduction(self, coords, offsets, accs) -> ir.Stmt:
        reduce = self.stage.reduce
        assert reduce is not None
        looped, split, unrolled = _reduce_plan(self.stage, self.config)
        factor = self.config.get("k_unroll", 1)
        loop_vars = []
        for ax in looped:
            var, extent = (ix.index_var(f"{ax.name}_o"), ax.extent // factor) if ax is split else (ax.var, ax.extent)
            self.ranges[var] = (0, extent - 1)
            loop_vars.append((var, extent))
        steps = [range(factor)] if split is not None else []
        steps += [range(ax.extent) for ax in unrolled]
        cache = LoadCache(self.buffers, self.ranges, "v", self.views)
        combine = {"sum": "add", "max": "max", "min": "min"}[reduce.kind]
        updates = []
        # a loop of one iteration is no loop: its variable is 0
        single = {var: sympy.Integer(0) for var, extent in loop_vars if extent == 1}
        for step in itertools.product(*steps):
            mapping: dict[sympy.Symbol, sympy.Expr] = dict(single)
            values = list(step)
            if split is not None:
                mapping[split.var] = (factor * loop_vars[-1][0] + values.pop(0)).xreplace(single)
            for ax, v in zip(unrolled, values, strict=True):
                mapping[ax.var] = sympy.Integer(v)
            for o in offsets:
                full = {**self._data_mapping(self._values(coords, o, clamp=True)), **mapping}
                term = cache.lower(substitute(reduce.body, full))
                updates.append((accs[o], term))
        decls = cache.flush()
        assigns = [ir.Assign(a.name, Binary(combine, a, cache.resolve(t))) for a, t in updates]
        block: ir.Stmt = ir.seq(*decls, *assigns)
        for var, extent in reversed(loop_vars):
            if extent > 1:
                block = ir.For(var, extent, block)
        return block

    def _epilogue(self, coords, offsets, accs) -> list[ir.Stmt]:
        out = self.stage.out
        out_buf = self.buffers[out]
        cache = LoadCache(self.buffers, self.ranges, "e", self.views)
        values: dict[tuple[int, ...], Expr] = {}
        for o in offsets:
            mapping = self._data_mapping(self._values(coords, o, clamp=True))
            values[o] = cache.lower(substitute(self.stage.epilogue, mapping), accs.get(o))
        stmts: list[ir.Stmt] = list(cache.flush())
        values = {o: cache.resolve(v) for o, v in values.items()}
        last_extent = self.logical[-1][1]
        vector_store = self.reads_vector and self.tiles[-1] % 4 == 0 and last_extent % 4 == 0
        for o in offsets:
            if vector_store and o[-1] % 4:
                continue
            true_values = self._values(coords, o, clamp=False)
            index = ix.simplify(flat_index(out, tuple(self._data_mapping(true_values).values())), self.ranges)
            if vector_store:
                lanes = [values[(*o[:-1], o[-1] + k)] for k in range(4)]
                store: ir.Stmt = ir.Store(out_buf, index, ir.Vector(tuple(lanes)), lanes=4)
            else:
                store = ir.Store(out_buf, index, values[o])
            guard = sympy.And(
                *(sympy.Lt(v, e) for v, (_, e), t in zip(true_values, self.logical, self.tiles, strict=True) if e % t)
            )
            guard = ix.simplify(guard, self.ranges)
            stmts.append(store if guard is sympy.true else ir.If(guard, store))
        return stmts
