"""The tile lowering every template shares: a thread (GPU), a fragment (WebGL) or a loop iteration (wasm, JS)
computes a small tile of a stage's outputs.

The knobs it reads (each template declares those it offers; the GPU template's docstring says what each means):
``tile_b`` and ``tile_axis`` / ``tile_a`` (the tile), ``merge_hw``, ``unroll`` and ``k_unroll`` (the reduction),
``vec4`` or ``vector`` (4-wide reads and writes), ``group_b`` and ``smem`` (GPU workgroup tiles in shared memory).

Inside an unrolled block every distinct read happens once, before the arithmetic (common subexpressions and
register reuse fall out of this), and out-of-range tiles are clamped for reads and guarded for writes, so every
config is valid for every shape.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy

from kgen.scheduling import ir
from kgen.scheduling.lower import Buffers, LoadCache, VectorViews
from kgen.scheduling.partition import Stage, substitute
from kgen.scheduling.simd import LANES, SimdCache, hoist, interleave
from kgen.scheduling.space import choice
from kgen.scheduling.versioning import read_guards, version
from kgen.te import index as ix
from kgen.te.expr import Binary, Const, Expr, Load, map_children, walk

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


def reduction_knobs(stage: Stage) -> list:
    """``unroll`` and ``k_unroll`` (see the module docstring), for a stage with a reduction longer than 1."""
    n_reduce = len(real_reduce_axes(stage))
    if not n_reduce:
        return []
    return [
        choice("unroll", tuple(range(min(2, n_reduce) + 1)), "innermost reduction axes fully unrolled"),
        choice("k_unroll", (1, 2, 4, 8), "unroll factor of the next reduction axis (must divide it)"),
    ]


def streamable(stage: Stage) -> bool:
    """Whether ``unroll`` can unroll the whole reduction in a block of allowed size for a tall tile (8 vectors:
    up to 32 steps, a depthwise conv's or a pool's window up to 5x5), which ``stream`` needs."""
    axes = real_reduce_axes(stage)
    return 0 < len(axes) <= 2 and 8 * math.prod(ax.extent for ax in axes) <= MAX_BLOCK


def unrolled_whole(stage: Stage, config: Mapping[str, Any]) -> bool:
    looped, _, _ = _reduce_plan(stage, config)
    return not looped


def _replace_loads(expr: Expr, fn) -> Expr:
    """``expr`` with each load for which ``fn`` returns a value replaced by that value."""
    if isinstance(expr, Load):
        replacement = fn(expr)
        return expr if replacement is None else replacement
    return map_children(expr, lambda e: _replace_loads(e, fn))


def tile_size(config: Mapping[str, Any]) -> int:
    return config["tile_b"] * config.get("tile_a", 1)


def real_reduce_axes(stage: Stage):
    """Reduction axes longer than 1 (an axis of extent 1, such as a 1x1 kernel's, is just 0)."""
    return tuple(ax for ax in stage.reduce_axes if ax.extent > 1)


def _reduce_plan(stage: Stage, config: Mapping[str, Any]):
    """(looped axes, split axis or None, unrolled axes) of the reduction under ``config``; with ``outer_inner``
    the outermost reduction axis (a convolution's input channels) becomes the innermost, so ``k_unroll`` splits
    it while the window is looped."""
    axes = real_reduce_axes(stage)
    if config.get("outer_inner"):
        axes = (*axes[1:], *axes[:1])
    n_unrolled = config.get("unroll", 0)
    looped, unrolled = axes[: len(axes) - n_unrolled], axes[len(axes) - n_unrolled :]
    split = looped[-1] if looped and config.get("k_unroll", 1) > 1 else None
    return looped, split, unrolled


def unrolled_steps(stage: Stage, config: Mapping[str, Any]) -> int:
    """Reduction steps in one unrolled block: the unrolled axes' extents times the split factor."""
    _, split, unrolled = _reduce_plan(stage, config)
    return math.prod(ax.extent for ax in unrolled) * (config.get("k_unroll", 1) if split is not None else 1)


def block_size(stage: Stage, config: Mapping[str, Any]) -> int:
    return tile_size(config) * unrolled_steps(stage, config)


def split_ok(stage: Stage, config: Mapping[str, Any]) -> bool:
    _, split, _ = _reduce_plan(stage, config)
    if config.get("k_unroll", 1) == 1:
        return True
    return split is not None and split.extent % config["k_unroll"] == 0


def smem_ok(stage: Stage, config: Mapping[str, Any]) -> bool:
    if not config.get("smem"):
        return True
    looped, _, _ = _reduce_plan(stage, config)
    return config["group_b"] > 0 and bool(looped)


def smem_bytes(stage: Stage, config: Mapping[str, Any]) -> int:
    if not config.get("smem") or not smem_ok(stage, config):
        return 0
    steps = unrolled_steps(stage, config)
    group_a = config["wg"] // config["group_b"]
    sizes = {"a": group_a * config["tile_a"] * steps, "b": config["group_b"] * config["tile_b"] * steps}
    a_var, b_vars = tiled_vars(stage, config)
    return 4 * sum(sizes[role] for role in _staged_roles(stage, a_var, b_vars).values())


def tiled_vars(stage: Stage, config: Mapping[str, Any]) -> tuple[sympy.Symbol, set[sympy.Symbol]]:
    """The tile axis's variable, and the variables the last (possibly merged) axis stands for."""
    a_var = next(ax.var for ax in stage.axes if ax.name == config["tile_axis"])
    last = stage.axes[-2:] if config.get("merge_hw") else stage.axes[-1:]
    return a_var, {ax.var for ax in last}


def _staged_roles(stage: Stage, a_var: sympy.Symbol, b_vars: set[sympy.Symbol]) -> dict[int, str]:
    """Loads of the reduction that depend on the tile axis but not the last axis ("a"), or the reverse ("b")."""
    assert stage.reduce is not None
    roles = {}
    for node in walk(stage.reduce.body):
        if isinstance(node, Load):
            free = set().union(*(e.free_symbols for e in (*node.indices, node.guard)))
            on_a, on_b = a_var in free, bool(free & b_vars)
            if on_a != on_b:
                roles[id(node)] = "a" if on_a else "b"
    return roles


def merge_ok(stage: Stage, config: Mapping[str, Any]) -> bool:
    if not config.get("merge_hw") or "tile_axis" not in config:
        return True
    return config["tile_axis"] not in (stage.axes[-2].name, stage.axes[-1].name)


@dataclass(frozen=True)
class Epilogue:
    """A tile's epilogue: the declarations it reads, then per accumulator (by name) the statements that store it."""

    decls: list[ir.Stmt]
    stores: list[tuple[str, list[ir.Stmt]]]

    def statements(self) -> list[ir.Stmt]:
        return [*self.decls, *(s for _, stmts in self.stores for s in stmts)]


class TileLowering:
    """Lowers one stage under a complete tile config; ``views`` (None: no vector reads) says which buffers may be
    read 4 lanes at a time. With ``simd`` (CPU backends; ``tile_b`` a multiple of 4) each group of 4 tile elements
    along the last axis is one 4-lane vector (``kgen.scheduling.simd``): its accumulator, reads and store, and
    declarations that do not depend on the reduction loops are hoisted out of them. Without ``clamp`` (CPU
    backends, whose renderers keep every read's reach inside memory) a tile past the tensor's end reads past it
    too and its values are never stored, instead of reading clamped indices: no min() in any index."""

    def __init__(
        self,
        stage: Stage,
        config: Mapping[str, Any],
        buffers: Buffers,
        name: str,
        views: VectorViews | None,
        simd: bool = False,
        clamp: bool = True,
    ) -> None:
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
        threads = [math.ceil(e / t) for (_, e), t in zip(self.logical, self.tiles, strict=True)]
        # the workgroup tile: how many of a workgroup's threads lie along each logical axis
        self.group = [1] * len(self.logical)
        self.a_pos: int | None = None
        if config.get("group_b"):
            self.a_pos = [v.name for v, _ in self.logical].index(config["tile_axis"])
            self.group[-1] = config["group_b"]
            self.group[self.a_pos] = config["wg"] // config["group_b"]
        self.blocks = [math.ceil(t / g) for t, g in zip(threads, self.group, strict=True)]
        self.threads = [b * g for b, g in zip(self.blocks, self.group, strict=True)]  # padded to whole blocks
        self.fastest = len(self.logical) - 1
        if config.get("tile_order") == "a":
            self.fastest = [v.name for v, _ in self.logical].index(config["tile_axis"])
        # CPU threads take contiguous ranges of tiles; with split_fast each takes a band of the fastest axis
        self.bands = config.get("threads", 1) if config.get("split_fast") else 1
        self.threads[self.fastest] = math.ceil(self.threads[self.fastest] / self.bands) * self.bands
        self.total = math.prod(self.threads)
        self.ranges: dict[sympy.Symbol, tuple[int, int]] = {}
        self.shared: list[ir.Buffer] = []
        self.views = views
        self.simd = simd
        self.clamp = clamp
        assert not simd or self.tiles[-1] % LANES == 0, "simd needs tile_b a multiple of 4"

    # -- thread coordinates ------------------------------------------------------------------------------
    def _let(self, name: str, value: sympy.Expr, extent: int, lets: list[ir.Stmt]) -> sympy.Expr:
        """Bind ``value`` (in ``[0, extent)``) to a new index variable; constants need no binding."""
        if extent == 1:
            return sympy.Integer(0)
        var = ix.index_var(name)
        self.ranges[var] = (0, extent - 1)
        lets.append(ir.Let(var, ix.simplify(value, self.ranges)))
        return var

    def _unravel(
        self, flat: sympy.Expr, counts: list[int], prefix: str, lets: list[ir.Stmt], fastest: int | None = None
    ) -> list[sympy.Expr]:
        """Coordinates of ``flat`` in a grid of ``counts``: row-major (the last axis fastest), or with the axis at
        position ``fastest`` varying fastest and the others row-major."""
        n = len(counts)
        order = list(range(n)) if fastest is None else [p for p in range(n) if p != fastest] + [fastest]
        coords: list[sympy.Expr] = [sympy.Integer(0)] * n
        for k, pos in enumerate(order):
            value = ix.floordiv(flat, math.prod(counts[p] for p in order[k + 1 :]))
            if math.prod(counts[p] for p in order[:k]) > 1:
                value = ix.floormod(value, counts[pos])
            coords[pos] = self._let(f"{prefix}{self.logical[pos][0].name}", value, counts[pos], lets)
        return coords

    def _coordinates(self) -> tuple[list[ir.Stmt], list[sympy.Expr]]:
        """Each thread's coordinate along every logical axis (its tile is ``tile * q + offset``)."""
        self.t0 = ix.index_var("t0")
        self.ranges[self.t0] = (0, self.total - 1)
        lets: list[ir.Stmt] = []
        if self.a_pos is None:
            if self.bands == 1:
                return lets, self._unravel(self.t0, self.threads, "q_", lets, self.fastest)
            # band-major: the range of tiles each thread takes is one band of the fastest axis, whole
            per_band = self.total // self.bands
            band = self._let("band", ix.floordiv(self.t0, per_band), self.bands, lets)
            counts = list(self.threads)
            counts[self.fastest] //= self.bands
            coords = self._unravel(ix.floormod(self.t0, per_band), counts, "b_", lets, self.fastest)
            f = self.fastest
            q = band * counts[f] + coords[f]
            coords[f] = self._let(f"q_{self.logical[f][0].name}", q, self.threads[f], lets)
            return lets, coords
        wg = self.config["wg"]
        self.lid = self._let("lid", ix.floormod(self.t0, wg), wg, lets)
        blocks = self._unravel(ix.floordiv(self.t0, wg), self.blocks, "blk_", lets)
        self.block_coords = blocks
        self.local = [sympy.Integer(0)] * len(self.logical)
        self.local[-1] = self._let("lb", ix.floormod(self.lid, self.group[-1]), self.group[-1], lets)
        self.local[self.a_pos] = self._let("la", ix.floordiv(self.lid, self.group[-1]), self.group[self.a_pos], lets)
        coords = [
            self._let(f"q_{var.name}", b * g + loc, t, lets)
            for (var, _), b, g, loc, t in zip(self.logical, blocks, self.group, self.local, self.threads, strict=True)
        ]
        return lets, coords

    def _values(self, coords: list[sympy.Expr], offsets: tuple[int, ...], clamp: bool) -> list[sympy.Expr]:
        values = []
        for (_, extent), tile, q, o, threads in zip(
            self.logical, self.tiles, coords, offsets, self.threads, strict=True
        ):
            v = tile * q + o
            if clamp and self.clamp and threads * tile != extent:
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

    def _groups(self, offsets: list[tuple[int, ...]]) -> list[list[tuple[int, ...]]]:
        """The tile elements each accumulator holds: one each, or (SIMD) 4 consecutive along the last axis."""
        if not self.simd:
            return [[o] for o in offsets]
        return [[(*o[:-1], o[-1] + k) for k in range(LANES)] for o in offsets if o[-1] % LANES == 0]

    def _cache(self, prefix: str) -> LoadCache:
        return (
            SimdCache(self.buffers, self.ranges, prefix)
            if self.simd
            else LoadCache(self.buffers, self.ranges, prefix, self.views)
        )

    def _zip(self, cache: LoadCache, lanes: list[Expr]) -> Expr:
        return cache.vectorize(lanes) if isinstance(cache, SimdCache) else lanes[0]

    # -- the kernel ----------------------------------------------------------------------------------------
    def kernel(self) -> ir.Kernel:
        lets, coords = self._coordinates()
        body = ir.seq(*lets, self._by_position(coords))
        params = (*(self.buffers[t] for t in self.stage.reads), self.buffers[self.stage.out])
        return ir.Kernel(
            self.name,
            params,
            body,
            (self.total,),
            (self.config["wg"],),
            (self.t0,),
            shared=tuple(self.shared),
            ranges=dict(self.ranges),
        )

    def _tile(self, coords: list[sympy.Expr]) -> ir.Stmt:
        """One tile's code: its accumulators, the reduction and the epilogue."""
        offsets = self._offsets()
        lanes = LANES if self.simd else 1
        dtype = self.stage.out.dtype
        accs: dict[tuple[int, ...], ir.Local] = {}  # each tile element's accumulator (a lane of it, with SIMD)
        for k, group in enumerate(self._groups(offsets)):
            for lane, o in enumerate(group):
                accs[o] = ir.Local(f"acc{k}", dtype, lanes, lane if self.simd else None)
        body: list[ir.Stmt | None] = []
        epilogue = self._epilogue(coords, offsets, accs)
        if self.stage.reduce is not None:
            identity = Const(self.stage.reduce.identity, dtype)
            body += [ir.Decl(g[0].name, dtype, identity, lanes) for g in self._accumulators(offsets, accs)]
            reduction, streamed = self._reduction(coords, offsets, accs, epilogue)
            body.append(reduction)
            if streamed:
                epilogue = Epilogue([], [])
        body += epilogue.statements()
        return ir.seq(*body)

    def _by_position(self, coords: list[sympy.Expr]) -> ir.Stmt:
        """The tile's code, on the CPU made once per position class along tile_axis where reads are guarded along
        it (a padded conv's rows): the first tile, the last, and those between, each with the tile coordinate
        (or its range) known, so that its rows' guards are settled when the kernel is made: no lane masks, and no
        multiply-adds of a padding row. Without it, a depthwise conv on 14x14 in tiles of 7 rows has no interior
        tile, and every tile masks the reads of its first and last rows at run time (a depthwise 512ch 14x14 conv
        in streamed 7x16 tiles took 17% less time with the classes)."""
        tile = self._tile(coords)
        if self.clamp or self.config.get("tile_a", 1) == 1:
            return tile
        pos = [v.name for v, _ in self.logical].index(self.config["tile_axis"])
        q = coords[pos]
        if not isinstance(q, sympy.Symbol) or not any(q in cond.free_symbols for cond in read_guards(tile)):
            return tile
        lo, hi = self.ranges[q]

        def at(value: int) -> ir.Stmt:
            return self._tile([sympy.Integer(value) if p == pos else c for p, c in enumerate(coords)])

        rest = at(hi)
        if hi - lo >= 2:
            self.ranges[q] = (lo + 1, hi - 1)
            rest = ir.If(sympy.Lt(q, hi), self._tile(coords), rest)
            self.ranges[q] = (lo, hi)
        return ir.If(sympy.Le(q, lo), at(lo), rest)

    def _accumulators(self, offsets, accs) -> list[tuple[ir.Local, list[tuple[int, ...]]]]:
        """Each accumulator (whole, all its lanes) with the tile elements it holds."""
        out = []
        for group in self._groups(offsets):
            a = accs[group[0]]
            out.append((ir.Local(a.name, a.dtype, a.lanes), group))
        return out

    def _reduction(self, coords, offsets, accs, epilogue: Epilogue) -> tuple[ir.Stmt, bool]:
        """The reduction, and whether ``epilogue`` is streamed into it (``stream``, SIMD, the reduction unrolled
        whole): the updates then go column by column of the tile (a column: one vector's 4 pixels wide) and down
        each in the order in which they read along the tile axis (a depthwise conv's input rows), and each
        accumulator is stored right after its last update, so that a tall tile keeps about three accumulators
        live, not all of them (in a 7x16 tile of a depthwise 3x3 conv, row by row, TurboFan spilled 464 times
        for 504 multiply-adds). Within an input row the updates go by the window's innermost step (a 3x3 window's
        column), so that the three updates of one read come together and the read is dead after them."""
        reduce = self.stage.reduce
        assert reduce is not None
        looped, split, unrolled = _reduce_plan(self.stage, self.config)
        factor = self.config.get("k_unroll", 1)
        loop_vars = []
        for ax in looped:
            var, extent = (ix.index_var(f"{ax.name}_o"), ax.extent // factor) if ax is split else (ax.var, ax.extent)
            self.ranges[var] = (0, extent - 1)
            loop_vars.append((var, extent))
        # a loop of one iteration is no loop: its variable is 0
        single = {var: sympy.Integer(0) for var, extent in loop_vars if extent == 1}
        single.update({ax.var: sympy.Integer(0) for ax in reduce.axes if ax.extent == 1})
        sizes = ([factor] if split is not None else []) + [ax.extent for ax in unrolled]

        def step_mapping(step: list[sympy.Expr]) -> dict[sympy.Symbol, sympy.Expr]:
            """Reduction variables at one unrolled step (``step`` indexes ``sizes``)."""
            mapping: dict[sympy.Symbol, sympy.Expr] = dict(single)
            rest = list(step)
            if split is not None:
                mapping[split.var] = (factor * loop_vars[-1][0] + rest.pop(0)).xreplace(single)
            mapping.update({ax.var: v for ax, v in zip(unrolled, rest, strict=True)})
            return mapping

        staged, fills = self._stage_operands(coords, sizes, step_mapping) if self.config.get("smem") else ({}, [])
        cache = self._cache("v")
        combine = {"sum": "add", "max": "max", "min": "min"}[reduce.kind]
        streamed = bool(self.config.get("stream")) and not loop_vars and not staged and isinstance(cache, SimdCache)
        row_read = self._row_reader() if streamed else None
        updates = []
        # with streamed: each update's column, and how far along the tile axis it reads
        rows: list[tuple[int, int]] = []
        for n, step in enumerate(itertools.product(*(range(s) for s in sizes))):
            mapping = step_mapping([sympy.Integer(v) for v in step])
            terms = {}
            for o in offsets:
                body = _replace_loads(reduce.body, lambda load, o=o, n=n: self._shared_read(staged, load, o, n))
                full = {**self._data_mapping(self._values(coords, o, clamp=True)), **mapping}
                terms[o] = cache.lower(substitute(body, full))
            for acc, group in self._accumulators(offsets, accs):
                term = self._zip(cache, [terms[o] for o in group])
                if _adds_nothing(term, reduce.kind, reduce.identity):  # a read known to be padding
                    continue
                updates.append((acc, term))
                if row_read is not None:  # column by column, down each column, and per read across its updates
                    rows.append((group[0][-1], row_read(group[0], mapping), step[-1] if step else 0))
        hoisted: list[ir.Stmt] = []
        if isinstance(cache, SimdCache):
            looped_vars = {var for var, extent in loop_vars if extent > 1}
            decls = cache.flush([t for _, t in updates])
            if looped_vars:  # with no loop left (a window unrolled whole) nothing is hoisted: all would be, at once
                hoisted, decls = hoist(decls, looped_vars)
        else:
            decls = cache.flush()
        assigns = [ir.Assign(a.name, Binary(combine, a, cache.resolve(t))) for a, t in updates]
        if row_read is not None:
            order = sorted(range(len(updates)), key=lambda n: rows[n])
            last = {updates[n][0].name: n for n in order}
            stores = dict(epilogue.stores)
            uses: list[ir.Stmt] = []
            for n in order:
                uses.append(assigns[n])
                if last[updates[n][0].name] == n:
                    uses += stores.pop(updates[n][0].name)
            uses += [store for left in stores.values() for store in left]  # accumulators that read only padding
            block: ir.Stmt = ir.seq(*interleave([*decls, *epilogue.decls], uses))
        elif staged:  # fill, wait for every thread's part, compute, and wait again before the next fill
            block = ir.seq(*fills, ir.Barrier(), *decls, *assigns, ir.Barrier())
        elif isinstance(cache, SimdCache):
            block = ir.seq(*interleave(decls, assigns))
        else:
            block = ir.seq(*decls, *assigns)
        for var, extent in reversed(loop_vars):
            if extent > 1:
                block = ir.For(var, extent, block)
        reduction = ir.seq(*hoisted, block)
        streamed = row_read is not None
        if self.clamp:
            return reduction, streamed
        loops = {var: (0, extent - 1) for var, extent in loop_vars if extent > 1}
        return version(reduction, loops, self.ranges), streamed

    def _row_reader(self) -> Callable[[tuple[int, ...], dict[sympy.Symbol, sympy.Expr]], int] | None:
        """A function of a tile element and a reduction step giving the furthest coordinate along the tile axis,
        from the tile's origin, that the element reads at that step (a depthwise conv's input row); None without a
        tile axis (or a tile of 1 along it), where there is no order to stream in."""
        if self.config.get("tile_a", 1) == 1:
            return None
        assert self.stage.reduce is not None
        pos = [v.name for v, _ in self.logical].index(self.config["tile_axis"])
        var = self.logical[pos][0]
        body = self.stage.reduce.body
        along = [e for load in walk(body) if isinstance(load, Load) for e in load.indices if var in e.free_symbols]

        def furthest(o: tuple[int, ...], mapping: dict[sympy.Symbol, sympy.Expr]) -> int:
            at = [e.xreplace({var: sympy.Integer(o[pos]), **mapping}) for e in along]
            return max((int(a.xreplace({s: 0 for s in a.free_symbols})) for a in at), default=0)

        return furthest

    def _stage_operands(self, coords, sizes, step_mapping) -> tuple[dict[int, tuple], list[ir.Stmt]]:
        """Shared tiles of the single-axis operands, and the statements with which all threads fill them."""
        assert self.stage.reduce is not None
        a_var, b_vars = tiled_vars(self.stage, self.config)
        roles = _staged_roles(self.stage, a_var, b_vars)
        loads = [n for n in walk(self.stage.reduce.body) if isinstance(n, Load) and id(n) in roles]
        n_steps = math.prod(sizes)
        wg = self.config["wg"]
        staged: dict[int, tuple] = {}
        fills: list[ir.Stmt] = []
        for k, load in enumerate(loads):
            pos = self.a_pos if roles[id(load)] == "a" else len(self.logical) - 1
            assert pos is not None
            span = self.group[pos] * self.tiles[pos]  # values along that axis the workgroup covers
            buf = ir.Buffer(f"s{k}", load.dtype, span * n_steps, scope="shared")
            self.shared.append(buf)
            staged[id(load)] = (buf, pos, n_steps)
            cache = LoadCache(self.buffers, self.ranges, f"f{k}_")
            extent = self.logical[pos][1]
            for j in range(math.ceil(buf.size / wg)):
                e = self.lid + wg * j
                values = self._values(coords, (0,) * len(self.logical), clamp=False)
                local = self.tiles[pos] * self.group[pos] * self.block_coords[pos] + ix.floordiv(e, n_steps)
                needs_clamp = self.threads[pos] * self.tiles[pos] != extent
                values[pos] = sympy.Min(local, extent - 1) if needs_clamp else local
                rest = ix.floormod(e, n_steps)
                step = [ix.floormod(ix.floordiv(rest, math.prod(sizes[i + 1 :])), s) for i, s in enumerate(sizes)]
                mapping = {**self._data_mapping(values), **step_mapping(step)}
                value = cache.lower(substitute(load, mapping))
                fill = ir.seq(*cache.flush(), ir.Store(buf, ix.simplify(e, self.ranges), cache.resolve(value)))
                fills.append(fill if (j + 1) * wg <= buf.size else ir.If(sympy.Lt(e, buf.size), fill))
        return staged, fills

    def _shared_read(self, staged: dict[int, tuple], load: Load, offset: tuple[int, ...], step: int) -> Expr | None:
        if id(load) not in staged:
            return None
        buf, pos, n_steps = staged[id(load)]
        local = self.tiles[pos] * self.local[pos] + offset[pos]
        return ir.BufLoad(buf, ix.simplify(local * n_steps + step, self.ranges))

    def _epilogue(self, coords, offsets, accs) -> Epilogue:
        out = self.stage.out
        out_buf = self.buffers[out]
        cache = self._cache("e")
        values: dict[tuple[int, ...], Expr] = {}
        for o in offsets:
            mapping = self._data_mapping(self._values(coords, o, clamp=True))
            values[o] = cache.lower(substitute(self.stage.epilogue, mapping), accs.get(o))
        if isinstance(cache, SimdCache):
            groups = self._groups(offsets)
            zipped = [cache.vectorize([values[o] for o in group]) for group in groups]
            stores = [
                (accs[group[0]].name if group[0] in accs else f"r{k}", self._simd_store(coords, group, value, f"r{k}"))
                for k, (group, value) in enumerate(zip(groups, zipped, strict=True))
            ]
            return Epilogue(cache.flush(zipped), stores)
        stmts = list(cache.flush())
        values = {o: cache.resolve(v) for o, v in values.items()}
        last_extent = self.logical[-1][1]
        vector_store = (
            self.views is not None and self.tiles[-1] % 4 == 0 and last_extent % 4 == 0 and self._adjacent(coords)
        )
        for o in offsets:
            if vector_store and o[-1] % 4:
                continue
            index, guard = self._target(coords, o)
            if vector_store:
                lanes = [values[(*o[:-1], o[-1] + k)] for k in range(4)]
                store: ir.Stmt = ir.Store(out_buf, index, ir.Vector(tuple(lanes)), lanes=4)
            else:
                store = ir.Store(out_buf, index, values[o])
            stmts.append(_guarded(guard, store))
        return Epilogue(stmts, [])

    def _adjacent(self, coords) -> bool:
        """Whether 4 neighbouring tile elements along the last axis are stored at 4 neighbouring indices, and in a
        texture, as the 4 channels of one texel. Not so in a WebGL output split into planes along that axis (one
        texel of each of 4 textures), even where a plane is one value long and the storage indices are adjacent."""
        out = self.buffers[self.stage.out]
        if out.texture is not None and out.channels != 4:
            return False
        origin = (0,) * len(self.tiles)
        first, _ = self._target(coords, origin)
        lanes = [self._target(coords, (*origin[:-1], k))[0] for k in range(1, 4)]
        return all(ix.simplify(index - first, self.ranges) == k for k, index in enumerate(lanes, 1))

    def _target(self, coords, o: tuple[int, ...], axes: range | None = None) -> tuple[sympy.Expr, sympy.Basic]:
        """Where tile element ``o`` is stored, and the condition (over ``axes``, default all) that it exists."""
        true_values = self._values(coords, o, clamp=False)
        out = self.stage.out
        index = ix.simplify(self.buffers.index(out, tuple(self._data_mapping(true_values).values())), self.ranges)
        positions = range(len(self.logical)) if axes is None else axes
        guard = sympy.And(
            *(
                sympy.Lt(true_values[p], self.logical[p][1])
                for p in positions
                if self.threads[p] * self.tiles[p] != self.logical[p][1]
            )
        )
        return index, ix.simplify(guard, self.ranges)

    def _simd_store(self, coords, group, value: Expr, name: str) -> list[ir.Stmt]:
        """One 4-wide store of a group, or (where lanes may lie past the last axis) a guarded store per lane; where
        the lanes that exist are known when the kernel is made (a 14-pixel row in 16-wide tiles: its last vector's
        first 2 lanes), the first two are one 2-lane store and the third one store, with no guards."""
        out_buf = self.buffers[self.stage.out]
        last = len(self.logical) - 1
        index, outer = self._target(coords, group[0], range(last))
        _, tail = self._target(coords, group[-1], range(last, last + 1))
        if tail is sympy.true:
            return [_guarded(outer, ir.Store(out_buf, index, value, lanes=LANES))]
        targets = [self._target(coords, o, range(last, last + 1)) for o in group]
        stores: list[ir.Stmt] = [ir.Decl(name, out_buf.dtype, value, LANES, const=True)]
        guards = [guard for _, guard in targets]
        known = all(guard in (sympy.true, sympy.false) for guard in guards)
        if known and guards == sorted(guards, key=lambda g: g is sympy.false):
            present = guards.count(sympy.true)  # a prefix of the lanes
            if present == 0:
                return []
            vector = ir.Local(name, out_buf.dtype, LANES)
            if present >= 2:
                stores.append(ir.Store(out_buf, index, vector, lanes=2))
            for k in range(2 if present >= 2 else 0, present):
                stores.append(ir.Store(out_buf, targets[k][0], ir.Local(name, out_buf.dtype, LANES, k)))
            return [_guarded(outer, ir.seq(*stores))]
        for k, (lane_index, lane_guard) in enumerate(targets):
            store = ir.Store(out_buf, lane_index, ir.Local(name, out_buf.dtype, LANES, k))
            stores.append(_guarded(lane_guard, store))
        return [_guarded(outer, ir.seq(*stores))]


def _guarded(guard: sympy.Basic, stmt: ir.Stmt) -> ir.Stmt:
    return stmt if guard is sympy.true else ir.If(guard, stmt)


def _adds_nothing(term: Expr, kind: str, identity: float) -> bool:
    """Whether an update by ``term`` leaves the accumulator as it is, known when the kernel is made: the
    reduction's identity (a max pool's padding), or a product with a zero (a padded conv's padding row)."""
    if isinstance(term, Const):
        return term.value == identity
    if kind != "sum" or not (isinstance(term, Binary) and term.op == "mul"):
        return False
    return any(isinstance(x, Const) and x.value == 0 for x in (term.a, term.b))
