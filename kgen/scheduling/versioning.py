"""Interior versioning: a reduction whose guarded reads are all in range for a whole tile runs without guards.

A padded convolution guards its reads of the image (the padding reads 0). Most tiles lie inside the image, where
every guard holds for every step of the reduction, yet each read still pays for its guard (a select or a lane
mask per read). ``version`` splits such code into ``if (interior) fast else guarded``: a guard atom that is
linear in the loop variables is true for the whole loop exactly when it holds at the loop variables' worst
values, which gives a condition over the tile's coordinates only; the fast copy has those atoms replaced by
true. Guards that are not linear in the loop variables (a transposed convolution's grid test) stay as they
are in both copies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping

import sympy

from kgen.scheduling import ir
from kgen.scheduling.simd import local_names
from kgen.te import index as ix
from kgen.te.expr import Expr, IndexCond, Select, map_children

Ranges = Mapping[sympy.Symbol, tuple[int, int]]


def version(stmt: ir.Stmt, loops: Ranges, ranges: Ranges) -> ir.Stmt:
    """``stmt``, or ``if (every guard holds over the ranges of loops) stmt-without-guards else stmt``; ``ranges``
    (of every index variable) simplify that condition."""
    atoms: dict[sympy.Basic, sympy.Basic] = {}  # guard atom -> the condition that it holds over the loops
    for cond in read_guards(stmt):
        for atom in _atoms(cond):
            if atom not in atoms:
                atoms[atom] = _over_loops(atom, loops)
    holds = {atom: cond for atom, cond in atoms.items() if cond is not None}
    if not holds:
        return stmt
    interior = ix.simplify(sympy.And(*holds.values()), dict(ranges))
    if interior is sympy.false:
        return stmt
    fast = _without_dead_decls(_rewrite(stmt, {atom: sympy.true for atom in holds}))
    return fast if interior is sympy.true else ir.If(interior, fast, stmt)


def read_guards(stmt: ir.Stmt) -> Iterator[sympy.Basic]:
    """The conditions in ``stmt`` under which reads happen: each read's guard and each lane mask's lanes."""
    for expr in ir.values(stmt):
        for node in ir.value_nodes(expr):
            if isinstance(node, ir.BufLoad):
                yield node.guard
            elif isinstance(node, IndexCond):
                yield node.cond


def _atoms(cond: sympy.Basic) -> tuple[sympy.Basic, ...]:
    if cond in (sympy.true, sympy.false):
        return ()
    return cond.args if isinstance(cond, sympy.And) else (cond,)


def _over_loops(atom: sympy.Basic, loops: Ranges) -> sympy.Basic | None:
    """A condition free of the loop variables under which ``atom`` holds at every point of their ranges, or
    None where ``atom`` is not a linear inequality in them."""
    if not isinstance(atom, sympy.Ge | sympy.Gt | sympy.Le | sympy.Lt):
        return None
    diff = sympy.expand(atom.lhs - atom.rhs)
    lower_bound = isinstance(atom, sympy.Ge | sympy.Gt)  # the worst point is where diff is smallest
    worst = {}
    for var, (lo, hi) in loops.items():
        if var not in diff.free_symbols:
            continue
        coeff = diff.coeff(var)
        if not coeff.is_Integer or var in (diff - coeff * var).free_symbols:
            return None
        worst[var] = lo if (coeff > 0) == lower_bound else hi
    if not worst:
        return atom
    return atom.func(diff.xreplace(worst), 0)


def _rewrite(stmt: ir.Stmt, true: dict[sympy.Basic, sympy.Basic]) -> ir.Stmt:
    """``stmt`` with the guard atoms in ``true`` replaced by true, and selects on conditions (or lane masks)
    that became true replaced by their first value."""
    always: set[str] = set()  # lane masks whose every lane became true
    done: dict[int, Expr] = {}  # by node identity: a node shared in the input stays shared (a splat's lanes)

    def cond_of(c: sympy.Basic) -> sympy.Basic:
        return sympy.And(*(sympy.true if a in true else a for a in _atoms(c))) if _atoms(c) else c

    def value(e: Expr) -> Expr:
        if id(e) not in done:
            done[id(e)] = rewritten(e)
        return done[id(e)]

    def rewritten(e: Expr) -> Expr:
        match e:
            case ir.BufLoad():
                return dataclasses.replace(e, guard=cond_of(e.guard))
            case IndexCond():
                return IndexCond(cond_of(e.cond))
            case ir.Vector():
                return ir.Vector(tuple(value(v) for v in e.values))
            case Select():
                chosen = map_children(e, value)
                if _is_true(chosen.cond, always):
                    return chosen.a
                return chosen
        return map_children(e, value)

    def statement(s: ir.Stmt) -> ir.Stmt:
        match s:
            case ir.Decl():
                init = value(s.init)
                if isinstance(init, ir.Vector) and all(_is_true(v, always) for v in init.values):
                    always.add(s.name)
                return ir.Decl(s.name, s.dtype, init, s.lanes, s.const)
            case ir.Assign():
                return ir.Assign(s.name, value(s.value))
            case ir.Store():
                return ir.Store(s.buffer, s.index, value(s.value), s.lanes)
        return _map_stmt(s, statement)

    return statement(stmt)


def _is_true(cond: Expr, always: set[str]) -> bool:
    if isinstance(cond, IndexCond):
        return cond.cond is sympy.true
    return isinstance(cond, ir.Local) and cond.name in always


def _map_stmt(s: ir.Stmt, fn: Callable[[ir.Stmt], ir.Stmt]) -> ir.Stmt:
    match s:
        case ir.Seq(body=body):
            return ir.Seq(tuple(fn(b) for b in body))
        case ir.For():
            return ir.For(s.var, s.extent, fn(s.body))
        case ir.If():
            return ir.If(s.cond, fn(s.then), None if s.orelse is None else fn(s.orelse))
    return s


def _without_dead_decls(stmt: ir.Stmt) -> ir.Stmt:
    """``stmt`` without the constant declarations that nothing reads any more (lane masks that became true)."""
    read: set[str] = set()
    for expr in ir.values(stmt):
        read |= local_names(expr)

    def keep(s: ir.Stmt) -> ir.Stmt:
        if isinstance(s, ir.Seq):
            return ir.seq(*(keep(b) for b in s.body if not (isinstance(b, ir.Decl) and b.const and b.name not in read)))
        return _map_stmt(s, keep)

    return keep(stmt)
