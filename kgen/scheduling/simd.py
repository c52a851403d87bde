"""SIMD along the last tile axis: four lanes' scalar code zipped into one 4-lane expression (a small SLP
vectorizer over expression trees, for CPU backends).

The lanes of a tile group run the same code at neighbouring positions of the output's last axis. Zipping them:
equal lanes stay one scalar (a read of it becomes one splat, declared once); reads of one buffer at indices
``i, i+1, i+2, i+3`` (or ``i, i+2, i+4, i+6``) become one 4-wide read, whatever their guards (lanes whose guard
is false get the default through a lane mask, declared once per guard tuple); the same operation in every lane
becomes the vector operation; anything else is gathered lane by lane (``ir.Vector``).

An unguarded 4-wide read may reach past its buffer where a lane lies past the tensor's end (such a lane's value
is discarded): renderers keep every index a read can reach inside memory (``ix.bounds``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import sympy

from kgen.scheduling import ir
from kgen.scheduling.lower import LoadCache
from kgen.te import index as ix
from kgen.te.expr import Binary, Cast, Compare, Const, Expr, IndexCond, Select, Unary

LANES = 4
STRIDES = (1, 2)  # strided reads: a stride-2 read is two 4-wide reads and a shuffle (a stride-2 convolution's)


def same(a: Expr, b: Expr) -> bool:
    """Structural equality of two value expressions (IR nodes compare by identity)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, Expr):
            if not same(x, y):
                return False
        elif isinstance(x, tuple) and x and isinstance(x[0], Expr):
            if len(x) != len(y) or not all(same(p, q) for p, q in zip(x, y, strict=True)):
                return False
        elif x != y:
            return False
    return True


def local_names(expr: Expr) -> set[str]:
    """Names of the locals ``expr`` reads (inside gathered vectors too)."""
    return {node.name for node in ir.value_nodes(expr) if isinstance(node, ir.Local)}


@dataclass
class SimdCache(LoadCache):
    """A ``LoadCache`` that also zips lanes (``vectorize``) and declares only what the final code reads."""

    _keys: dict[str, tuple] = field(default_factory=dict)
    _vectors: dict[tuple, ir.Decl] = field(default_factory=dict)
    _splats: dict[str, ir.Decl] = field(default_factory=dict)
    _masks: dict[tuple, ir.Decl] = field(default_factory=dict)

    def lower(self, expr: Expr, acc: ir.Local | None = None) -> Expr:
        out = super().lower(expr, acc)
        self._keys.update({local.name: key for key, local in self._pending.items()})
        return out

    def vectorize(self, lanes: Sequence[Expr]) -> Expr:
        """One expression whose 4 lanes are ``lanes`` (scalars where all lanes agree)."""
        first = lanes[0]
        if all(same(first, e) for e in lanes[1:]):
            return self._splat(first)
        if all(type(e) is type(first) for e in lanes):
            zipped = self._zip(lanes)
            if zipped is not None:
                return zipped
        elif all(isinstance(e, ir.Local | Const) for e in lanes):
            edge = self._vector_read(lanes)
            if edge is not None:
                return edge
        return ir.Vector(tuple(lanes))

    def _zip(self, lanes: Sequence[Expr]) -> Expr | None:
        first = lanes[0]
        match first:
            case ir.Local():
                if all(e.name == first.name and e.lanes == LANES and e.lane == k for k, e in enumerate(lanes)):
                    return ir.Local(first.name, first.dtype, LANES)
                return self._vector_read(lanes)
            case Unary() if all(e.func == first.func for e in lanes):
                return Unary(first.func, self.vectorize([e.x for e in lanes]))
            case Binary() | Compare() if all(e.op == first.op for e in lanes):
                a = self.vectorize([e.a for e in lanes])
                return type(first)(first.op, a, self.vectorize([e.b for e in lanes]))
            case Select():
                parts = [self.vectorize([getattr(e, name) for e in lanes]) for name in ("cond", "a", "b")]
                return Select(*parts)
            case Cast() if all(e.dtype == first.dtype for e in lanes):
                return Cast(self.vectorize([e.x for e in lanes]), first.dtype)
            case IndexCond():
                return self._mask(tuple(e.cond for e in lanes))
        return None

    def _splat(self, e: Expr) -> Expr:
        """A value every lane shares: a read of it is splatted once; other values stay scalar."""
        if not (isinstance(e, ir.Local) and e.name in self._keys):
            return e
        if e.name not in self._splats:
            buf, index, guard, _ = self._keys[e.name]
            # an unguarded read is splatted as it is read (one load-and-splat instruction)
            value = ir.BufLoad(buf, index) if guard is sympy.true else e
            self._splats[e.name] = ir.Decl(f"{e.name}s", e.dtype, ir.Vector((value,) * LANES), LANES, const=True)
        return ir.Local(self._splats[e.name].name, e.dtype, LANES)

    def _is_read(self, e: Expr) -> bool:
        """Whether ``e`` is a (scalar) read collected by this cache."""
        return isinstance(e, ir.Local) and e.lane is None and e.name in self._keys

    def _vector_read(self, lanes: Sequence[Expr]) -> Expr | None:
        """One 4-wide read for reads of one buffer at indices ``i + stride * k`` (stride 1 or 2), or None.

        Lanes that are the reads' default (a read whose guard is false there: a tile's lanes past an image's edge)
        are read too, masked to the default: one read and a mask instead of a lane-by-lane gather."""
        reads = [(k, e) for k, e in enumerate(lanes) if self._is_read(e)]
        if not reads:
            return None
        k0, first = reads[0]
        buf, index0, _, default = self._keys[first.name]  # type: ignore[union-attr]
        stride: sympy.Expr = sympy.Integer(1)  # one read among masked lanes: any stride reads it in its lane
        if len(reads) > 1:
            k1, second = reads[1]
            stride = ix.simplify(self._keys[second.name][1] - index0, self.ranges) / (k1 - k0)  # type: ignore[union-attr]
            if stride not in STRIDES:
                return None
        base = ix.simplify(index0 - stride * k0, self.ranges)
        guards: list[sympy.Basic] = []
        for k, e in enumerate(lanes):
            if isinstance(e, Const):
                if e.value != default or e.dtype != buf.dtype:
                    return None
                guards.append(sympy.false)
                continue
            if not self._is_read(e):
                return None
            b, index, guard, d = self._keys[e.name]  # type: ignore[union-attr]
            if b is not buf or d != default or ix.simplify(index - base, self.ranges) != stride * k:
                return None
            guards.append(guard)
        key = (buf, base, tuple(guards), default)
        if key not in self._vectors:
            # named after its lane 0's read; a read that starts with masked lanes, or whose lane 0's read already
            # names another vector (its other lanes masked, or read at another stride), gets a name of its own
            name = f"{first.name}v"
            if k0 or any(d.name == name for d in self._vectors.values()):
                name = f"{self.prefix}x{len(self._vectors)}"  # unique: one more vector each time
            read = ir.BufLoad(buf, base, LANES, stride=int(stride))
            if all(g == guards[0] for g in guards):
                init: Expr = dataclasses.replace(read, guard=guards[0], default=default)
            else:
                init = Select(self._mask(tuple(guards)), read, Const(default, buf.dtype))
            self._vectors[key] = ir.Decl(name, buf.dtype, init, LANES, const=True)
        return ir.Local(self._vectors[key].name, buf.dtype, LANES)

    def _mask(self, conds: tuple[sympy.Basic, ...]) -> Expr:
        """A 4-lane condition, declared once per tuple of lane conditions."""
        if all(c == conds[0] for c in conds):
            return IndexCond(conds[0])
        if conds not in self._masks:
            name = f"{self.prefix}m{len(self._masks)}"
            lanes = tuple(IndexCond(c) for c in conds)
            self._masks[conds] = ir.Decl(name, "bool", ir.Vector(lanes), LANES, const=True)
        return ir.Local(self._masks[conds].name, "bool", LANES)

    def flush(self, used: Sequence[Expr] = ()) -> list[ir.Stmt]:  # type: ignore[override]
        """Declarations that ``used`` (the code that follows) needs, each after what it reads."""
        scalars = [s for s in super().flush() if isinstance(s, ir.Decl)]
        decls = [*self._masks.values(), *self._vectors.values(), *scalars, *self._splats.values()]
        needed: set[str] = set()
        for e in used:
            needed |= local_names(e)
        for d in reversed(decls):  # a declaration's inputs come before it
            if d.name in needed:
                needed |= local_names(d.init)
        out = [d for d in decls if d.name in needed]
        self._keys.clear()
        self._vectors.clear()
        self._splats.clear()
        self._masks.clear()
        return out


def hoist(decls: Sequence[ir.Stmt], loop_vars: set[sympy.Symbol]) -> tuple[list[ir.Stmt], list[ir.Stmt]]:
    """(declarations that read no loop variable, directly or through another declaration; the rest)."""
    inside: set[str] = set()
    outside_decls: list[ir.Stmt] = []
    inside_decls: list[ir.Stmt] = []
    for d in decls:
        assert isinstance(d, ir.Decl)
        symbols = _index_symbols(d.init)
        if symbols & loop_vars or local_names(d.init) & inside:
            inside.add(d.name)
            inside_decls.append(d)
        else:
            outside_decls.append(d)
    return outside_decls, inside_decls


def _index_symbols(expr: Expr) -> set[sympy.Symbol]:
    symbols: set[sympy.Symbol] = set()
    for node in ir.value_nodes(expr):
        match node:
            case ir.BufLoad(index=index, guard=guard):
                symbols.update(index.free_symbols, guard.free_symbols)
            case IndexCond(cond=cond):
                symbols.update(cond.free_symbols)
    return symbols


def interleave(decls: Sequence[ir.Stmt], uses: Sequence[ir.Stmt]) -> list[ir.Stmt]:
    """``decls`` and ``uses`` with each declaration sunk to just before the first statement that reads it, so
    that few values are live at once (a 6x8 tile's 12 accumulators leave 4 of 16 vector registers)."""
    pending = {d.name: d for d in decls if isinstance(d, ir.Decl)}
    out: list[ir.Stmt] = []

    def emit(name: str) -> None:
        decl = pending.pop(name, None)
        if decl is None:
            return
        for dep in sorted(local_names(decl.init)):
            emit(dep)
        out.append(decl)

    for stmt in uses:  # an assignment, or a (guarded) store of an epilogue
        for name in sorted(set().union(*map(local_names, ir.values(stmt)))):
            emit(name)
        out.append(stmt)
    return [*pending.values(), *out]
