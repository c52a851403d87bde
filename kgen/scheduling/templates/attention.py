"""Attention as one kernel: softmax(Q · Kᵀ · scale + mask) · V with an online softmax over blocks of keys.

A tile is ``rows`` queries × a ``1 / split`` share of V's columns of one batch entry (one head). For each block of
``keys`` keys it computes the block's scores in registers, then the running maximum, rescales what it has summed
so far by exp(old max - new max), and adds exp(score - max) · V's rows into its accumulators: the scores never
reach memory, and each key's K column and V row are read once per tile. Keys past the last whole block go one at
a time. On WebAssembly (SIMD) a block's scores are f32x4 vectors of 4 neighbouring keys (K's rows run along the
keys) and the accumulators are f32x4 vectors along V's columns; on WebGPU a thread is a tile (vec4 accumulators
where V's rows are whole vec4s) and ``wg`` tiles a workgroup; on WebGL a fragment is one query row whose output
texels go to ``planes`` render targets (``_TexelLowering``).

On the CPU, ``softmax="tile"`` keeps the tile's scores for every key in a scratch instead (a temporary of the
program, a slot per tile): the scores in register blocks of ``rows`` x ``keys``, then one softmax per row over them,
then the product with V in passes of ``cols`` vectors of its columns. The online form holds ``rows`` x Dv/4
accumulators across every block, which spill at Dv = 32; here a pass holds ``rows`` x ``cols``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import sympy

from kgen.ops.attention import AttentionPattern
from kgen.ops.softmax import LOWEST, TINIEST
from kgen.scheduling import ir
from kgen.scheduling.layout import PLANES, Layout
from kgen.scheduling.lower import Buffers, flat_index
from kgen.scheduling.space import DEFAULT_LIMITS, WASM_LIMITS, Constraint, Space, choice, distinct
from kgen.te import index as ix
from kgen.te.expr import Binary, Const, Expr, Unary
from kgen.te.tensor import Tensor

LANES = 4
MAX_BLOCK = 2048


def _max(a: Expr, b: Expr) -> Expr:
    return Binary("max", a, b)


def _inverse(total: Expr) -> Expr:
    """1 / a row's sum of exponentials; 0 where they are all 0 (every key masked with -inf): the op's rule."""
    return Const(1.0) / _max(total, Const(TINIEST))


class AttentionTile:
    """``kind``: "simd" (WebAssembly), "scalar" (plain JavaScript: ``softmax="tile"`` always; online, its per-key
    bookkeeping in scalars cost more than the chain's passes), "gpu" (WebGPU) or "texel" (WebGL)."""

    name = "attention"

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def handles(self, pattern: AttentionPattern) -> bool:
        """Whether this kernel computes ``pattern`` (else its chain of kernels does): on WebGL, where Q's and V's
        rows are whole texels."""
        _, _, d, dv = pattern.sizes
        return self.kind != "texel" or (d % LANES == 0 and dv % LANES == 0)

    def layouts(self, pattern: AttentionPattern, config: Mapping[str, Any], output: Tensor) -> dict[int, Layout]:
        """WebGL: every operand 4 neighbouring columns a texel (K's rows run along the keys), the output's rows
        split into ``planes`` render targets, so that a fragment writes ``planes`` texels of one query's row."""
        operands = [t for t in (pattern.q, pattern.k, pattern.v, pattern.mask) if t is not None]
        out = {id(t): Layout.named("rgba_last", t.shape) for t in operands}
        out[id(output)] = Layout.named("rgba_last", output.shape).with_planes(config["planes"], output.ndim - 1)
        return out

    def space(self, pattern: AttentionPattern) -> Space:
        dv = pattern.sizes[3]
        if self.kind == "texel":
            return _texel_space(dv)
        knobs = [
            choice("rows", (2, 1, 3, 4, 6, 8), "queries per tile (their scores share each K column read)"),
            choice(
                "keys",
                (8, 4, 16, 32) if self.kind == "simd" else (4, 1, 2, 8, 16),
                "keys per block: one maximum and one rescale of the accumulators per block (softmax=tile: the "
                "scores' register block is rows x keys)",
            ),
            choice("split", (1, 2, 4), "tiles that share out V's columns (each computes the scores again)"),
        ]
        constraints = [
            Constraint(
                "split does not divide V's columns into whole vectors",
                lambda c, _: (dv // self.value_lanes(dv)) % c["split"] == 0,
            ),
            Constraint(
                "more than 64 accumulators per tile (the online softmax)",
                lambda c, _: self.materialized(c) or c["rows"] * dv // c["split"] // self.value_lanes(dv) <= 64,
            ),
            Constraint(
                f"a block's unrolled update over {MAX_BLOCK} multiply-adds (rows x keys x accumulators)",
                lambda c, _: (
                    self.materialized(c)
                    or c["rows"] * c["keys"] * dv // c["split"] // self.value_lanes(dv) <= MAX_BLOCK
                ),
            ),
        ]
        if self.kind == "gpu":
            knobs.append(choice("wg", (64, 32, 128, 256), "tiles (threads) per workgroup"))
            constraints.append(
                Constraint("wg over the device's workgroup size", lambda c, lim: c["wg"] <= lim["max_workgroup_size_x"])
            )
        unroll = choice("unroll", (4, 1, 2, 8), "with softmax=tile: steps of the dot products' loops unrolled")
        if self.kind == "scalar":
            knobs += [choice("cols", (1, 2, 4, 8), "V's columns per pass over the keys"), unroll]
        if self.kind == "simd":
            knobs += [
                choice(
                    "softmax",
                    ("online", "tile"),
                    "online: a running maximum over blocks of keys, the accumulators rescaled per block; tile: the "
                    "tile's scores for every key kept in a scratch, one softmax, then the product with V in passes",
                ),
                choice("cols", (2, 1, 3, 4), "with softmax=tile: vectors of V's columns per pass over the keys"),
                unroll,
                choice("vector", ("f32x4", "f32x4_fma"), "f32x4 SIMD, or with relaxed-SIMD fused multiply-adds"),
                choice("threads", (1, 2, 4), "threads that split the tiles (workers on shared memory)"),
            ]
            constraints += [
                Constraint(
                    "cols or unroll without softmax=tile",
                    lambda c, _: c["softmax"] == "tile" or (c["cols"], c["unroll"]) == (2, 4),
                ),
                *WASM_LIMITS,
            ]
        if self.kind != "gpu":
            constraints += [
                Constraint(
                    "cols does not divide a tile's accumulators of V's columns",
                    lambda c, _: (
                        not self.materialized(c) or (dv // self.value_lanes(dv) // c["split"]) % c["cols"] == 0
                    ),
                ),
                Constraint(
                    "more than 16 accumulators in a pass (rows x cols)",
                    lambda c, _: not self.materialized(c) or c["rows"] * c["cols"] <= 16,
                ),
            ]
        return Space(tuple(knobs), tuple(constraints), self.seeds({k.name for k in knobs}))

    def seeds(self, names: set[str]) -> tuple[dict[str, Any], ...]:
        """Tile forms that are usually good on the CPU (the tuner tries them first; invalid ones are skipped): a
        register block of 4 or 6 rows x 8 keys (two f32x4 vectors) and passes of 2 vectors, or tall tiles of
        8 rows in passes of 1; in scalars, 2 or 4 rows in passes of 4 columns."""
        if self.kind == "gpu":
            return ()
        if self.kind == "scalar":
            shapes = [(2, 8, 4, 1), (4, 2, 4, 2), (2, 4, 4, 4)]
        else:
            shapes = [(4, 8, 2, 8), (6, 8, 2, 4), (8, 4, 1, 4), (4, 8, 2, 4)]
        tiles = [{"rows": r, "keys": k, "cols": c, "unroll": u} for r, k, c, u in shapes]
        return distinct([{**t, "softmax": "tile", "vector": "f32x4_fma"} for t in tiles], names)

    def value_lanes(self, dv: int) -> int:
        """Lanes of an accumulator: 4 of V's columns where its rows are whole vectors (not in scalars), else 1."""
        return LANES if dv % LANES == 0 and self.kind != "scalar" else 1

    def key_lanes(self) -> int:
        """Keys per score value: 4 in SIMD and on WebGL (neighbouring keys: one texel of K), else 1."""
        return LANES if self.kind in ("simd", "texel") else 1

    def materialized(self, config: Mapping[str, Any]) -> bool:
        """Whether the config keeps the tile's scores in a scratch (``softmax="tile"``)."""
        return self.kind == "scalar" or config.get("softmax") == "tile"

    def temps(self, pattern: AttentionPattern, config: Mapping[str, Any]) -> tuple[ir.Buffer, ...]:
        """With ``softmax="tile"``, the scratch: each tile's rows of scores, whole score values long."""
        if not self.materialized(config):
            return ()
        s, t, _, _ = pattern.sizes
        tiles = math.prod(pattern.batch) * -(-s // config["rows"]) * config["split"]
        return (ir.Buffer("tmp0", "float32", tiles * config["rows"] * _whole(t, self.key_lanes())),)

    def program(
        self,
        inputs: list[Tensor],
        output: Tensor,
        config: Mapping[str, Any],
        buffers: Mapping[int, ir.Buffer],
        name: str,
        temps: tuple[ir.Buffer, ...] = (),
        layouts: Mapping[int, Layout] | None = None,
    ) -> ir.Kernel:
        pattern: AttentionPattern = output.op.pattern  # type: ignore[union-attr]
        if self.kind == "texel":
            assert layouts is not None
            return _TexelLowering(self, pattern, config, buffers, output, name, layouts).kernel()
        if temps:
            return _Materialized(self, pattern, config, buffers, output, name, temps[0]).kernel()
        return _Lowering(self, pattern, config, buffers, output, name).kernel()


def _whole(n: int, lanes: int) -> int:
    """``n`` rounded up to whole values of ``lanes``."""
    return -(-n // lanes) * lanes


class _Lowering:
    def __init__(self, tile: AttentionTile, p: AttentionPattern, config, buffers, output: Tensor, name: str) -> None:
        self.p, self.config, self.name = p, config, name
        self.s, self.t, self.d, self.dv = p.sizes
        self.nb = math.prod(p.batch)
        self.rows, self.split = config["rows"], config["split"]
        self.vl = tile.value_lanes(self.dv)
        self.cols = self.dv // self.vl // self.split  # accumulators per row
        self.kl = tile.key_lanes()
        self.keys = config["keys"]
        self.gpu = tile.kind == "gpu"
        self.q, self.k, self.v = (buffers[id(x)] for x in (p.q, p.k, p.v))
        self.mask = buffers[id(p.mask)] if p.mask is not None else None
        self.out = buffers[id(output)]
        self.output = output
        self.row_blocks = -(-self.s // self.rows)
        self.tiles = self.nb * self.row_blocks * self.split
        self.tid, self.b, self.i0, self.e0 = (ix.index_var(n) for n in ("t", "b", "i0", "e0"))
        self.ranges: dict[sympy.Symbol, tuple[int, int]] = {
            self.tid: (0, self.tiles - 1),
            self.b: (0, self.nb - 1),
            self.i0: (0, (self.row_blocks - 1) * self.rows),
            self.e0: (0, self.dv - self.dv // self.split),
        }
        # rows of the last tile that fall past Q's end, each clamped once per tile (a Let), not at every read
        last = (self.row_blocks - 1) * self.rows
        self.clamped = {r: ix.index_var(f"qr{r}") for r in range(self.rows) if last + r >= self.s}
        self.ranges.update({v: (0, self.s - 1) for v in self.clamped.values()})

    # -- indices -------------------------------------------------------------------------------------------
    def at(self, t: Tensor, row: sympy.Expr, col: sympy.Expr) -> sympy.Expr:
        """Where element (row, col) of operand ``t``'s matrix of the tile's batch entry lives in its buffer."""
        rows, cols = t.shape[-2:]
        return (self.b * rows + row) * cols + col

    def row(self, r: int) -> sympy.Expr:
        """Query row r of the tile, clamped into Q (rows past the end compute what the last does, unstored)."""
        return self.clamped.get(r, self.i0 + r)

    def batch_indices(self) -> list[sympy.Expr]:
        """The tile's batch entry as one index per batch axis."""
        out, rest = [], self.b
        for n in reversed(self.p.batch):
            out.insert(0, ix.floormod(rest, n))
            rest = ix.floordiv(rest, n)
        return out

    def element(self, t: Tensor, indices: tuple[sympy.Expr, ...]) -> sympy.Expr:
        """Where ``t[indices]`` lives in its buffer."""
        return flat_index(t, indices)

    def mask_read(self, r: int, j: sympy.Expr, lanes: int) -> Expr:
        assert self.mask is not None and self.p.mask is not None
        full = (*self.batch_indices(), self.row(r), j)
        shape = self.p.mask.shape
        aligned = zip(full[len(full) - len(shape) :], shape, strict=True)  # the mask's axes are the last ones
        indices = tuple(i if n > 1 else sympy.Integer(0) for i, n in aligned)
        index = self.element(self.p.mask, indices)
        if shape[-1] == 1:
            return ir.BufLoad(self.mask, index)  # one value for every key of the block: splat
        return ir.BufLoad(self.mask, index, lanes)

    # -- code ----------------------------------------------------------------------------------------------
    def tile_lets(self) -> list[ir.Stmt]:
        """The tile's batch entry (head), first query row and first column of V."""
        rest = ix.floordiv(self.tid, self.split)
        return [
            ir.Let(self.b, ix.floordiv(rest, self.row_blocks)),
            ir.Let(self.i0, ix.floormod(rest, self.row_blocks) * self.rows),
            ir.Let(self.e0, ix.floormod(self.tid, self.split) * (self.dv // self.split)),
            *(ir.Let(v, sympy.Min(self.i0 + r, self.s - 1)) for r, v in self.clamped.items()),
        ]

    def kernel(self) -> ir.Kernel:
        lets = self.tile_lets()
        state: list[ir.Stmt] = []
        for r in range(self.rows):
            state += [ir.Decl(f"m{r}", "float32", Const(LOWEST)), ir.Decl(f"l{r}", "float32", Const(0.0))]
            state += [ir.Decl(self.acc(r, c), "float32", Const(0.0), self.vl) for c in range(self.cols)]
        body = ir.seq(*lets, *state, *self.blocks(), *self.stores())
        return ir.Kernel(
            self.name,
            tuple(dict.fromkeys(b for b in (self.q, self.k, self.v, self.mask, self.out) if b is not None)),
            body,
            (self.tiles,),
            (self.config["wg"] if self.gpu else 1,),
            (self.tid,),
            ranges=dict(self.ranges),
            fused_multiply_add=self.config.get("vector") == "f32x4_fma",
        )

    def blocks(self) -> list[ir.Stmt]:
        """Every key in blocks of ``keys``, then the keys past the last whole block (``tail``)."""
        whole, rest = divmod(self.t, self.keys)
        blocks: list[ir.Stmt] = []
        if whole:
            jb = ix.index_var("jb")
            self.ranges[jb] = (0, whole - 1)
            blocks.append(ir.For(jb, whole, self.block(jb * self.keys, self.keys, self.kl, "b")))
        return blocks + self.tail(whole * self.keys, rest) if rest else blocks

    def tail(self, j0: int, keys: int) -> list[ir.Stmt]:
        """The ``keys`` keys from ``j0`` past the last whole block: one at a time."""
        jt = ix.index_var("jt")
        self.ranges[jt] = (0, keys - 1)
        return [ir.For(jt, keys, self.block(jt + j0, 1, 1, "t"))]

    def acc(self, r: int, c: int) -> str:
        return f"acc{r}_{c}"

    def local(self, name: str, lanes: int, lane: int | None = None) -> ir.Local:
        return ir.Local(name, "float32", lanes, lane)

    def lanes_of(self, name: str, lanes: int) -> list[Expr]:
        return [self.local(name, lanes, k) for k in range(lanes)] if lanes > 1 else [self.local(name, 1)]

    def dots(self, j0: sympy.Expr, width: int, tag: str, score: dict[tuple[int, int], str]) -> ir.Stmt:
        """The loop over D that sums the block's scores (``score[row, group]``, ``width`` keys a value)."""
        d = ix.index_var(f"d{tag}")
        self.ranges[d] = (0, self.d - 1)
        groups = sorted({g for _, g in score})
        dots: list[ir.Stmt] = []
        for g in groups:
            read = ir.BufLoad(self.k, self.at(self.p.k, d, j0 + g * width), width)
            dots.append(ir.Decl(f"k{tag}{g}", "float32", read, width, const=True))
        for r in range(self.rows):
            read = ir.BufLoad(self.q, self.at(self.p.q, self.row(r), d))
            dots.append(ir.Decl(f"q{tag}{r}", "float32", read, const=True))
            for g in groups:
                s = score[r, g]
                dots.append(
                    ir.Assign(s, self.local(s, width) + self.local(f"q{tag}{r}", 1) * self.local(f"k{tag}{g}", width))
                )
        return ir.For(d, self.d, ir.seq(*dots))

    def block(self, j0: sympy.Expr, keys: int, width: int, tag: str) -> ir.Stmt:
        """One block of ``keys`` keys from ``j0``, scored ``width`` keys per value; its locals' names end in ``tag``."""
        groups = range(keys // width)
        score = {(r, g): f"s{tag}{r}_{g}" for r in range(self.rows) for g in groups}
        code: list[ir.Stmt] = [ir.Decl(n, "float32", Const(0.0), width) for n in score.values()]
        code.append(self.dots(j0, width, tag, score))
        for r in range(self.rows):
            for g in groups:
                s = score[r, g]
                value: Expr = self.local(s, width) * Const(self.p.scale)
                if self.mask is not None:
                    value = value + self.mask_read(r, j0 + g * width, width)
                code.append(ir.Assign(s, value))
            top = _fold(_max, [self.local(score[r, g], width) for g in groups])
            if width > 1:
                code.append(ir.Decl(f"top{tag}{r}", "float32", top, width, const=True))
                top = _fold(_max, self.lanes_of(f"top{tag}{r}", width))
            code += [
                ir.Decl(f"mx{tag}{r}", "float32", _max(self.local(f"m{r}", 1), top), const=True),
                ir.Decl(
                    f"alpha{tag}{r}",
                    "float32",
                    Unary("exp", self.local(f"m{r}", 1) - self.local(f"mx{tag}{r}", 1)),
                    const=True,
                ),
                ir.Assign(f"m{r}", self.local(f"mx{tag}{r}", 1)),
            ]
            for g in groups:
                s = score[r, g]
                code.append(ir.Assign(s, Unary("exp", self.local(s, width) - self.local(f"mx{tag}{r}", 1))))
            total = _fold(_add, [self.local(score[r, g], width) for g in groups])
            if width > 1:
                code.append(ir.Decl(f"sum{tag}{r}", "float32", total, width, const=True))
                total = _fold(_add, self.lanes_of(f"sum{tag}{r}", width))
            code.append(ir.Assign(f"l{r}", self.local(f"l{r}", 1) * self.local(f"alpha{tag}{r}", 1) + total))
        for c in range(self.cols):  # a column of accumulators at a time: rescaled, then updated in registers
            for r in range(self.rows):
                acc = self.acc(r, c)
                code.append(ir.Assign(acc, self.local(acc, self.vl) * self.local(f"alpha{tag}{r}", 1)))
            for g in groups:
                for lane in range(width):
                    j = j0 + g * width + lane
                    index = self.at(self.p.v, j, self.e0 + c * self.vl)
                    code.append(
                        ir.Decl(
                            f"v{tag}{g}_{lane}_{c}", "float32", ir.BufLoad(self.v, index, self.vl), self.vl, const=True
                        )
                    )
                    for r in range(self.rows):
                        acc = self.acc(r, c)
                        p = self.local(score[r, g], width, lane if width > 1 else None)
                        code.append(
                            ir.Assign(acc, self.local(acc, self.vl) + p * self.local(f"v{tag}{g}_{lane}_{c}", self.vl))
                        )
        return ir.seq(*code)

    def stores(self) -> list[ir.Stmt]:
        code: list[ir.Stmt] = []
        for r in range(self.rows):
            i = self.i0 + r
            inverse = f"inv{r}"
            stores: list[ir.Stmt] = [ir.Decl(inverse, "float32", _inverse(self.local(f"l{r}", 1)), const=True)]
            for c in range(self.cols):
                index = self.at(self.output, i, self.e0 + c * self.vl)
                value = self.local(self.acc(r, c), self.vl) * self.local(inverse, 1)
                stores.append(ir.Store(self.out, index, value, self.vl))
            guard = ix.simplify(i < self.s, self.ranges)
            code.append(ir.seq(*stores) if guard is sympy.true else ir.If(guard, ir.seq(*stores)))
        return code


class _Materialized(_Lowering):
    """``softmax="tile"`` (SIMD): the tile's scores in its slot of the scratch, then a softmax per row, then the
    product with V, ``cols`` vectors of its columns per pass over the keys."""

    def __init__(self, tile, p, config, buffers, output, name, scratch: ir.Buffer) -> None:
        super().__init__(tile, p, config, buffers, output, name)
        self.scratch = scratch
        self.row_length = _whole(self.t, self.kl)

    def slot(self, r: int, j: sympy.Expr) -> sympy.Expr:
        return (self.tid * self.rows + r) * self.row_length + j

    def kernel(self) -> ir.Kernel:
        body = ir.seq(*self.tile_lets(), *self.scores(), *self.softmax(), *self.products())
        return ir.Kernel(
            self.name,
            tuple(b for b in (self.q, self.k, self.v, self.mask, self.scratch, self.out) if b is not None),
            body,
            (self.tiles,),
            (1,),
            (self.tid,),
            ranges=dict(self.ranges),
            fused_multiply_add=self.config.get("vector") == "f32x4_fma",
        )

    def loop(self, name: str, extent: int, body) -> list[ir.Stmt]:
        """``body(var)`` in a loop of ``extent`` (none where 0, the body alone where 1)."""
        if extent == 0:
            return []
        if extent == 1:
            return [body(sympy.Integer(0))]
        var = ix.index_var(name)
        self.ranges[var] = (0, extent - 1)
        return [ir.For(var, extent, body(var))]

    def unrolled(self, name: str, extent: int, body) -> list[ir.Stmt]:
        """``body(index, k)`` for each index below ``extent``: ``unroll`` of them (k = 0, 1, ...) per step of a
        loop, then the rest (k = unroll, ...)."""
        step = self.config["unroll"]
        whole, rest = divmod(extent, step)
        code = self.loop(name, whole, lambda var: ir.seq(*(body(var * step + k, k) for k in range(step))))
        return code + [body(sympy.Integer(whole * step + k), step + k) for k in range(rest)]  # names of their own

    def scores(self) -> list[ir.Stmt]:
        """Every key's score for the tile's rows, scaled and masked, into the scratch; lanes past the last key
        hold the lowest float."""
        kl = self.kl
        blocks, rest = divmod(self.t // kl, self.keys // kl)
        whole = blocks * self.keys
        code = self.loop("jb", blocks, lambda jb: self.score_block(jb * self.keys, self.keys // kl, kl, "b"))
        code += self.loop("jv", rest, lambda jv: self.score_block(whole + jv * kl, 1, kl, "v"))
        tail = self.t % kl
        code += self.loop("jt", tail, lambda jt: self.score_block(self.t - tail + jt, 1, 1, "t"))
        for r in range(self.rows):
            code += [ir.Store(self.scratch, self.slot(r, j), Const(LOWEST)) for j in range(self.t, self.row_length)]
        return code

    def score_block(self, j0: sympy.Expr, groups: int, width: int, tag: str) -> ir.Stmt:
        score = {(r, g): f"s{tag}{r}_{g}" for r in range(self.rows) for g in range(groups)}
        code: list[ir.Stmt] = [ir.Decl(n, "float32", Const(0.0), width) for n in score.values()]

        def dots(d: sympy.Expr, u: int) -> ir.Stmt:
            stmts: list[ir.Stmt] = []
            for g in range(groups):
                read = ir.BufLoad(self.k, self.at(self.p.k, d, j0 + g * width), width)
                stmts.append(ir.Decl(f"k{tag}{g}_{u}", "float32", read, width, const=True))
            for r in range(self.rows):
                read = _splat(ir.BufLoad(self.q, self.at(self.p.q, self.row(r), d)), width)
                stmts.append(ir.Decl(f"q{tag}{r}_{u}", "float32", read, width, const=True))
                for g in range(groups):
                    product = self.local(f"q{tag}{r}_{u}", width) * self.local(f"k{tag}{g}_{u}", width)
                    stmts.append(ir.Assign(score[r, g], self.local(score[r, g], width) + product))
            return ir.seq(*stmts)

        code += self.unrolled(f"d{tag}", self.d, dots)
        for (r, g), name in score.items():
            value: Expr = self.local(name, width) * Const(self.p.scale)
            if self.mask is not None:
                value = value + self.mask_read(r, j0 + g * width, width)
            code.append(ir.Store(self.scratch, self.slot(r, j0 + g * width), value, width))
        return ir.seq(*code)

    def softmax(self) -> list[ir.Stmt]:
        """Per row: the maximum, then exp(score - maximum) in place and its sum's inverse (``inv{r}``)."""
        vectors = self.row_length // self.kl
        code: list[ir.Stmt] = []
        for r in range(self.rows):
            code.append(ir.Decl(f"mv{r}", "float32", Const(LOWEST), self.kl))
            code.append(ir.Decl(f"lv{r}", "float32", Const(0.0), self.kl))

        def top(jv: sympy.Expr) -> ir.Stmt:
            return ir.seq(
                *(
                    ir.Assign(f"mv{r}", _max(self.local(f"mv{r}", self.kl), self.read(r, jv * self.kl)))
                    for r in range(self.rows)
                )
            )

        def exps(jv: sympy.Expr) -> ir.Stmt:
            stmts: list[ir.Stmt] = []
            for r in range(self.rows):
                e = Unary("exp", self.read(r, jv * self.kl) - self.local(f"mx{r}", 1))
                stmts += [ir.Decl(f"e{r}", "float32", e, self.kl, const=True)]
                stmts += [ir.Store(self.scratch, self.slot(r, jv * self.kl), self.local(f"e{r}", self.kl), self.kl)]
                stmts += [ir.Assign(f"lv{r}", self.local(f"lv{r}", self.kl) + self.local(f"e{r}", self.kl))]
            return ir.seq(*stmts)

        code += self.loop("jm", vectors, top)
        for r in range(self.rows):
            code.append(ir.Decl(f"mx{r}", "float32", _fold(_max, self.lanes_of(f"mv{r}", self.kl)), const=True))
        code += self.loop("je", vectors, exps)
        for r in range(self.rows):
            total = _fold(_add, self.lanes_of(f"lv{r}", self.kl))
            for j in range(self.t, self.row_length):  # 0, or 1 in a row whose every key is masked
                total = total - ir.BufLoad(self.scratch, self.slot(r, sympy.Integer(j)))
            code.append(ir.Decl(f"inv{r}", "float32", _inverse(total), const=True))
        return code

    def read(self, r: int, j: sympy.Expr) -> Expr:
        return ir.BufLoad(self.scratch, self.slot(r, j), self.kl)

    def products(self) -> list[ir.Stmt]:
        """The probabilities times V, ``cols`` accumulator columns per pass over the keys, stored scaled."""
        cols = self.config["cols"]

        def column(cp: sympy.Expr, c: int) -> sympy.Expr:
            return self.e0 + (cp * cols + c) * self.vl

        def one_pass(cp: sympy.Expr) -> ir.Stmt:
            acc = {(r, c): f"acc{r}_{c}" for r in range(self.rows) for c in range(cols)}
            code: list[ir.Stmt] = [ir.Decl(n, "float32", Const(0.0), self.vl) for n in acc.values()]

            def update(j: sympy.Expr, u: int) -> ir.Stmt:
                stmts: list[ir.Stmt] = []
                for c in range(cols):
                    read = ir.BufLoad(self.v, self.at(self.p.v, j, column(cp, c)), self.vl)
                    stmts.append(ir.Decl(f"v{c}_{u}", "float32", read, self.vl, const=True))
                for r in range(self.rows):
                    read = _splat(ir.BufLoad(self.scratch, self.slot(r, j)), self.vl)
                    stmts.append(ir.Decl(f"p{r}_{u}", "float32", read, self.vl, const=True))
                    for c in range(cols):
                        product = self.local(f"p{r}_{u}", self.vl) * self.local(f"v{c}_{u}", self.vl)
                        stmts.append(ir.Assign(acc[r, c], self.local(acc[r, c], self.vl) + product))
                return ir.seq(*stmts)

            code += self.unrolled("j", self.t, update)
            for r in range(self.rows):
                i = self.i0 + r
                stores = [
                    ir.Store(
                        self.out,
                        self.at(self.output, i, column(cp, c)),
                        self.local(acc[r, c], self.vl) * self.local(f"inv{r}", 1),
                        self.vl,
                    )
                    for c in range(cols)
                ]
                guard = ix.simplify(i < self.s, self.ranges)
                code.append(ir.seq(*stores) if guard is sympy.true else ir.If(guard, ir.seq(*stores)))
            return ir.seq(*code)

        return self.loop("cp", self.cols // cols, one_pass)


def _splat(read: ir.BufLoad, lanes: int) -> Expr:
    """One value read into every lane of a vector (on wasm, a load32_splat: no shuffle after the load)."""
    return read if lanes == 1 else ir.Vector((read,) * lanes)


def _add(a: Expr, b: Expr) -> Expr:
    return Binary("add", a, b)


def _fold(fn: Callable[[Expr, Expr], Expr], values: list[Expr]) -> Expr:
    """A balanced tree of ``fn`` over ``values``."""
    while len(values) > 1:
        values = [fn(values[k], values[k + 1]) if k + 1 < len(values) else values[k] for k in range(0, len(values), 2)]
    return values[0]


def _texel_space(dv: int) -> Space:
    """WebGL's knobs: a fragment is one query row x ``planes`` texels of V's columns."""
    texels = dv // LANES
    # the default: the most render targets WebGL2 guarantees (4) that divide the row; 8 is tried first
    planes = sorted(PLANES, key=lambda p: (p > 4 or texels % p != 0, -p))
    knobs = (
        choice(
            "planes",
            planes,
            "render targets: texels of 4 of V's columns per fragment (the row's other columns go to other fragments, "
            "which compute the scores again)",
        ),
        choice("keys", (8, 4, 16), "keys per block: one maximum and one rescale of the accumulators per block"),
    )
    constraints = (
        Constraint("planes do not divide V's columns into whole texels", lambda c, _: texels % c["planes"] == 0),
        Constraint(
            "more planes than the device's render targets (max_draw_buffers)",
            lambda c, lim: c["planes"] <= lim.get("max_draw_buffers", DEFAULT_LIMITS["max_draw_buffers"]),
        ),
    )
    seeds = [{"planes": p, "keys": k} for p in (8, 4) for k in (8, 16) if texels % p == 0]
    return Space(knobs, constraints, tuple(seeds))


class _TexelLowering(_Lowering):
    """WebGL: a fragment computes one query's row of ``planes`` texels of V's columns, one texel per render
    target. A block's scores are vec4s of 4 neighbouring keys (one texel of K); Q's row is read a texel of 4 of
    its columns at a time."""

    def __init__(self, tile, p, config, buffers, output: Tensor, name: str, layouts: Mapping[int, Layout]) -> None:
        split = p.sizes[3] // LANES // config["planes"]
        super().__init__(tile, p, {**config, "rows": 1, "split": split}, buffers, output, name)
        self.views = Buffers(dict(buffers), dict(layouts))
        self.h = ix.index_var("h")  # the tile's share of the row: e0 a multiple of whole texels
        self.ranges[self.h] = (0, self.split - 1)
        self.e0 = self.h * (self.dv // self.split)

    def tile_lets(self) -> list[ir.Stmt]:
        rest = ix.floordiv(self.tid, self.split)
        return [
            ir.Let(self.b, ix.floordiv(rest, self.row_blocks)),
            ir.Let(self.i0, ix.floormod(rest, self.row_blocks)),
            ir.Let(self.h, ix.floormod(self.tid, self.split)),
        ]

    def element(self, t: Tensor, indices: tuple[sympy.Expr, ...]) -> sympy.Expr:
        return self.views.index(t, indices)

    def at(self, t: Tensor, row: sympy.Expr, col: sympy.Expr) -> sympy.Expr:
        return self.element(t, (*self.batch_indices(), row, col))

    def tail(self, j0: int, keys: int) -> list[ir.Stmt]:
        """One block of the whole texels of keys, then one of the last keys, unrolled (their K values each a
        known channel of a texel)."""
        texels, single = divmod(keys, LANES)
        blocks = [self.block(sympy.Integer(j0), texels * LANES, LANES, "v")] if texels else []
        return blocks + ([self.block(sympy.Integer(self.t - single), single, 1, "t")] if single else [])

    def dots(self, j0: sympy.Expr, width: int, tag: str, score: dict[tuple[int, int], str]) -> ir.Stmt:
        d4 = ix.index_var(f"d{tag}")
        self.ranges[d4] = (0, self.d // LANES - 1)
        q = f"q{tag}"
        code: list[ir.Stmt] = [
            ir.Decl(q, "float32", ir.BufLoad(self.q, self.at(self.p.q, self.i0, d4 * LANES), LANES), LANES, const=True)
        ]
        for u in range(LANES):
            for (_, g), s in score.items():
                k = f"k{tag}{g}_{u}"
                read = ir.BufLoad(self.k, self.at(self.p.k, d4 * LANES + u, j0 + g * width), width)
                code.append(ir.Decl(k, "float32", read, width, const=True))
                product = self.local(q, LANES, u) * self.local(k, width)
                code.append(ir.Assign(s, self.local(s, width) + product))
        return ir.For(d4, self.d // LANES, ir.seq(*code))
