"""Split an op's TE graph into kernel stages.

Injective (elementwise, index-remapping) computes are inlined into their consumers: recomputing them is cheaper
than a round trip through memory. Every reduction is the anchor of one stage. An injective output that reads
exactly one reduction at its own index (bias, activation, residual add, the scale of a mean) is fused into that
reduction's stage as its epilogue, so conv + bias + relu is one kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import sympy

from kgen.te.expr import Binary, Const, Expr, IndexCond, Load, Reduce, Select, map_children, map_indices, walk
from kgen.te.index import simplify
from kgen.te.tensor import ComputeOp, IterVar, PlaceholderOp, Tensor


@dataclass(frozen=True, eq=False)
class Acc(Expr):
    """In an epilogue: the value of the stage's reduction at the current index."""

    dtype: str = "float32"


@dataclass(frozen=True, eq=False)
class Stage:
    """One kernel's worth of work: for every index over ``axes``, store ``epilogue`` into ``out``; ``final``: the
    stage that writes the graph's output (the others write temporaries that a later stage reads)."""

    out: Tensor
    axes: tuple[IterVar, ...]
    reduce: Reduce | None
    epilogue: Expr
    final: bool = False

    @property
    def reduce_axes(self) -> tuple[IterVar, ...]:
        return self.reduce.axes if self.reduce is not None else ()

    @property
    def ranges(self) -> dict[sympy.Symbol, tuple[int, int]]:
        return {ax.var: (0, ax.extent - 1) for ax in self.axes + self.reduce_axes}

    @property
    def exprs(self) -> tuple[Expr, ...]:
        return (self.epilogue,) if self.reduce is None else (self.reduce.body, self.epilogue)

    @property
    def reads(self) -> tuple[Tensor, ...]:
        seen: dict[int, Tensor] = {}
        for e in self.exprs:
            for node in walk(e):
                if isinstance(node, Load):
                    seen.setdefault(id(node.tensor), node.tensor)
        return tuple(seen.values())

    @property
    def flops(self) -> int:
        """Arithmetic per launch: 2 per multiply-add of a sum of products, 1 per other reduction step."""
        outputs = math.prod(ax.extent for ax in self.axes)
        if self.reduce is None:
            return outputs
        steps = math.prod(ax.extent for ax in self.reduce.axes)
        per_step = 2 if isinstance(self.reduce.body, Binary) and self.reduce.body.op == "mul" else 1
        return outputs * steps * per_step


def topological(output: Tensor) -> list[Tensor]:
    """Compute tensors that ``output`` depends on, producers first."""
    order: list[Tensor] = []
    seen: set[int] = set()

    def visit(t: Tensor) -> None:
        if id(t) in seen or isinstance(t.op, PlaceholderOp):
            return
        seen.add(id(t))
        for dep in t.op.inputs:
            visit(dep)
        order.append(t)

    visit(output)
    return order


def placeholders(output: Tensor) -> list[Tensor]:
    found: dict[int, Tensor] = {}
    for t in topological(output):
        for dep in t.op.inputs:
            if isinstance(dep.op, PlaceholderOp):
                found.setdefault(id(dep), dep)
    return list(found.values())


def substitute(expr: Expr, mapping: dict[sympy.Symbol, sympy.Expr]) -> Expr:
    """Replace index variables in every index expression of ``expr``."""
    return map_indices(expr, lambda e: e.xreplace(mapping) if mapping else e)


def _inline(expr: Expr, inlined: set[int], guard: sympy.Basic = sympy.true) -> Expr:
    """``expr`` with loads of inlined tensors replaced by their bodies; ``guard`` is ANDed into every load."""
    match expr:
        case Load(tensor=t) if id(t) in inlined:
            op: ComputeOp = t.op  # type: ignore[assignment]
            mapping = {ax.var: i for ax, i in zip(op.axes, expr.indices, strict=True)}
            inner_guard = sympy.And(guard, expr.guard)
            body = _inline(substitute(op.body, mapping), inlined, inner_guard)
            if expr.guard is sympy.true:
                return body
            return Select(IndexCond(expr.guard), body, Const(expr.default, t.dtype))
        case Load():
            return expr if guard is sympy.true else replace(expr, guard=sympy.And(guard, expr.guard))
    return map_children(expr, lambda e: _inline(e, inlined, guard))


def _simplified(expr: Expr, ranges) -> Expr:
    return map_indices(expr, lambda e: simplify(e, ranges))


def partition(output: Tensor) -> list[Stage]:
    """The stages of ``output``'s graph, in launch order; the last one writes ``output``."""
    order = topological(output)
    is_reduce = {id(t): isinstance(t.op.body, Reduce) for t in order}
    inlined = {id(t) for t in order if t is not output and not is_reduce[id(t)] and not t.op.materialize}

    bodies: dict[int, Expr] = {}
    for t in order:
        if id(t) in inlined:
            continue
        op: ComputeOp = t.op  # type: ignore[assignment]
        bodies[id(t)] = _simplified(_inline(op.body, inlined), op.ranges)

    anchors = [t for t in order if id(t) not in inlined]
    fused = _fusable(output, anchors, bodies) if not is_reduce[id(output)] else None

    stages = []
    for t in anchors:
        if t is fused:
            continue  # launched where the output is, after everything its epilogue reads
        if t is output and fused is not None:
            anchor_op: ComputeOp = fused.op  # type: ignore[assignment]
            out_op: ComputeOp = output.op  # type: ignore[assignment]
            mapping = {a.var: b.var for a, b in zip(out_op.axes, anchor_op.axes, strict=True)}
            epilogue = _replace_reads(substitute(bodies[id(output)], mapping), fused)
            stages.append(Stage(output, anchor_op.axes, bodies[id(fused)], epilogue, final=True))
        elif is_reduce[id(t)]:
            stages.append(Stage(t, t.op.axes, bodies[id(t)], Acc(t.dtype), final=t is output))
        else:
            stages.append(Stage(t, t.op.axes, None, bodies[id(t)], final=t is output))
    return stages


def _fusable(output: Tensor, anchors: list[Tensor], bodies: dict[int, Expr]) -> Tensor | None:
    """The reduction that ``output`` may absorb as its epilogue, if there is exactly one such."""
    out_op: ComputeOp = output.op  # type: ignore[assignment]
    reads = [n for n in walk(bodies[id(output)]) if isinstance(n, Load) and id(n.tensor) in bodies]
    targets = {id(n.tensor): n.tensor for n in reads}
    if len(targets) != 1:
        return None
    (anchor,) = targets.values()
    at_own_index = all(_identity(n.indices, out_op.axes) and n.guard is sympy.true for n in reads)
    if anchor.shape != output.shape or not at_own_index:
        return None
    for other in anchors:
        if other is output or other is anchor:
            continue
        if any(isinstance(n, Load) and n.tensor is anchor for n in walk(bodies[id(other)])):
            return None
    return anchor


def _identity(indices: tuple, axes: tuple[IterVar, ...]) -> bool:
    """Whether a read at ``indices`` is at the output's own index: each index is its axis's variable, or 0 on
    an axis of extent 1 (a broadcasting op reads a size-1 dimension at 0: batch 1's residual add)."""
    return len(indices) == len(axes) and all(
        i == ax.var or (ax.extent == 1 and i == 0) for i, ax in zip(indices, axes, strict=True)
    )


def _replace_reads(expr: Expr, tensor: Tensor) -> Expr:
    match expr:
        case Load(tensor=t) if t is tensor:
            return Acc(t.dtype)
    return map_children(expr, lambda e: _replace_reads(e, tensor))
