"""Tensors, axes and the two ways to make a tensor: ``placeholder`` (an input) and ``compute``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sympy

from kgen.errors import TEError
from kgen.te import index as ix
from kgen.te.expr import DTYPES, Expr, IndexCond, Load, Reduce, map_indices, walk, wrap


@dataclass(frozen=True, eq=False)
class IterVar:
    """A loop axis: ``var`` runs over ``range(extent)``; data axes index the output, reduce axes are summed."""

    var: sympy.Symbol
    extent: int
    kind: str  # "data" | "reduce"

    @property
    def name(self) -> str:
        return self.var.name

    # In index arithmetic an axis stands for its variable: ``h * 2 + kh``.
    def __add__(self, other: Any) -> sympy.Expr:
        return self.var + _var(other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> sympy.Expr:
        return self.var - _var(other)

    def __rsub__(self, other: Any) -> sympy.Expr:
        return _var(other) - self.var

    def __mul__(self, other: Any) -> sympy.Expr:
        return self.var * _var(other)

    __rmul__ = __mul__


def _var(value: Any) -> Any:
    return value.var if isinstance(value, IterVar) else value


def reduce_axis(extent: int, name: str) -> IterVar:
    if not isinstance(extent, int) or extent <= 0:
        raise TEError(f"reduce_axis {name}: extent must be a positive int, got {extent!r}")
    return IterVar(ix.index_var(name), extent, "reduce")


@dataclass(frozen=True, eq=False)
class PlaceholderOp:
    """An input of the computation; its values are fed from outside. A ``constant`` input (a weight) usually
    keeps its values from one run to the next, so kernels may read a copy of it repacked once."""

    constant: bool = False


@dataclass(frozen=True, eq=False)
class ComputeOp:
    axes: tuple[IterVar, ...]
    body: Expr
    #: what the graph ending here computes as a whole (e.g. ``kgen.ops.attention.AttentionPattern``), for templates
    #: that lower it as one kernel rather than stage by stage
    pattern: Any = None
    #: an elementwise compute that is stored rather than inlined into its readers, where they would recompute it
    #: many times (attention's probabilities, read once per column of V)
    materialize: bool = False

    @property
    def reduce_axes(self) -> tuple[IterVar, ...]:
        return self.body.axes if isinstance(self.body, Reduce) else ()

    @property
    def ranges(self) -> dict[sympy.Symbol, tuple[int, int]]:
        return {ax.var: (0, ax.extent - 1) for ax in self.axes + self.reduce_axes}

    @property
    def inputs(self) -> tuple[Tensor, ...]:
        """Tensors this op reads, in order of first use."""
        seen: dict[int, Tensor] = {}
        for node in walk(self.body):
            if isinstance(node, Load):
                seen.setdefault(id(node.tensor), node.tensor)
        return tuple(seen.values())


@dataclass(frozen=True, eq=False)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    op: PlaceholderOp | ComputeOp

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _indices(self, indices: Any) -> tuple[sympy.Expr, ...]:
        idx = indices if isinstance(indices, tuple) else (indices,)
        if len(idx) != self.ndim:
            raise TEError(f"{self.name} has {self.ndim} dimensions but was indexed with {len(idx)}")
        return tuple(ix.as_index(_var(i)) for i in idx)

    def __getitem__(self, indices: Any) -> Load:
        """A read that must stay inside the tensor (checked when the compute is built)."""
        return Load(self, self._indices(indices))

    def guarded(self, indices: Any, default: float = 0.0, when: sympy.Basic = sympy.true) -> Load:
        """A read that yields ``default`` outside the tensor, or where ``when`` does not hold (padding)."""
        idx = self._indices(indices)
        return Load(self, idx, sympy.And(when, ix.in_bounds(idx, self.shape)), default)


def placeholder(shape: Sequence[int], dtype: str = "float32", name: str = "input", constant: bool = False) -> Tensor:
    shape = tuple(shape)
    if not all(isinstance(d, int) and d > 0 for d in shape):
        raise TEError(f"placeholder {name}: shape must be positive ints, got {shape}")
    if dtype not in DTYPES:
        raise TEError(f"placeholder {name}: unknown dtype {dtype!r}")
    return Tensor(name, shape, dtype, PlaceholderOp(constant))


def compute(
    shape: Sequence[int],
    fcompute: Callable[..., Any],
    name: str = "compute",
    axis_names: Sequence[str] | None = None,
) -> Tensor:
    """A tensor whose element at each index is ``fcompute(*index)``.

    Every index expression in the body is simplified with the ranges of this compute's axes; bounds checks
    that the ranges prove are dropped, and an unguarded read that might leave its tensor is an error.
    """
    shape = tuple(shape)
    if not all(isinstance(d, int) and d > 0 for d in shape):
        raise TEError(f"compute {name}: shape must be positive ints, got {shape}")
    names = tuple(axis_names) if axis_names is not None else tuple(f"i{k}" for k in range(len(shape)))
    if len(names) != len(shape):
        raise TEError(f"compute {name}: {len(names)} axis names for {len(shape)} dimensions")
    axes = tuple(IterVar(ix.index_var(n), d, "data") for n, d in zip(names, shape, strict=True))
    body = wrap(fcompute(*(ax.var for ax in axes)))

    reductions = [node for node in walk(body) if isinstance(node, Reduce)]
    if reductions and (reductions[0] is not body or len(reductions) > 1):
        raise TEError(f"compute {name}: a reduction must be the whole body (put the rest in another compute)")
    all_names = [ax.name for ax in axes + (body.axes if isinstance(body, Reduce) else ())]
    if len(set(all_names)) != len(all_names):
        raise TEError(f"compute {name}: axis names must be distinct, got {all_names}")

    op = ComputeOp(axes, body)
    ranges = op.ranges
    body = map_indices(body, lambda e: ix.simplify(e, ranges))
    op = ComputeOp(axes, body)
    _check_loads(name, op)
    return Tensor(name, shape, body.dtype, op)


def _check_loads(name: str, op: ComputeOp) -> None:
    ranges = op.ranges
    for node in walk(op.body):
        exprs = (*node.indices, node.guard) if isinstance(node, Load) else ()
        exprs += (node.cond,) if isinstance(node, IndexCond) else ()
        for e in exprs:
            unknown = {s for s in e.free_symbols if s not in ranges}
            if unknown:
                names = ", ".join(sorted(s.name for s in unknown))
                raise TEError(f"compute {name}: uses {names}, which is not an axis of this compute")
        if isinstance(node, Load) and node.guard is sympy.true:
            inside = ix.prove(ix.in_bounds(node.indices, node.tensor.shape), ranges)
            if inside is not True:
                raise TEError(
                    f"compute {name}: read of {node.tensor.name}{list(node.indices)} may fall outside its "
                    f"shape {node.tensor.shape}; use .guarded() for padding"
                )
