"""The loop-nest IR that every renderer prints (WGSL, GLSL, WebAssembly text and JavaScript).

Index math stays sympy (simplified before printing). Values reuse the TE's arithmetic nodes (``Unary``,
``Binary``, ``Compare``, ``Select``, ``Cast``, ``Const``, ``IndexCond``) with IR leaves: ``BufLoad`` (a flat read
of a buffer, optionally guarded and ``lanes`` wide) and ``Local`` (a named local value). Statements are
``For``, ``If``, ``Let`` (an index binding), ``Decl``/``Assign`` (locals), ``Store`` and ``Barrier``.
Nothing here is WebGPU-specific: a kernel's thread space is ``launch`` (total threads per axis) and
``group`` (threads per workgroup), and ``thread_vars`` name the global thread index along each axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import sympy

from kgen.scheduling.layout import Layout
from kgen.te import expr as te_expr
from kgen.te.expr import Expr


@dataclass(frozen=True)
class Buffer:
    """A flat array: a kernel parameter (``global``), workgroup-shared memory or a per-thread array.

    A buffer that lives in a texture (``kgen.scheduling.layout``) has ``channels`` values per texel and a
    ``texture`` of (width, height) texels; its indices are storage indices (texel * channels + channel). One
    split into ``planes`` is that many textures of that size, one after another in storage order.
    """

    name: str
    dtype: str
    size: int
    scope: str = "global"  # "global" | "shared" | "local"
    channels: int = 1
    texture: tuple[int, int] | None = None
    planes: int = 1


@dataclass(frozen=True, eq=False)
class BufLoad(Expr):
    """``buffer[index + stride * k]`` for each lane ``k < lanes``; where ``guard`` is false the value is
    ``default`` (no read)."""

    buffer: Buffer
    index: sympy.Expr
    lanes: int = 1
    guard: sympy.Basic = sympy.true
    default: float = 0.0
    stride: int = 1

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.buffer.dtype

    @property
    def span(self) -> int:
        """Elements from the first lane's to the last lane's, both included."""
        return self.stride * (self.lanes - 1) + 1


@dataclass(frozen=True, eq=False)
class Local(Expr):
    """A named local value (declared by ``Decl``); ``lanes`` > 1 for vectors, ``lane`` picks one lane."""

    name: str
    dtype: str
    lanes: int = 1
    lane: int | None = None


@dataclass(frozen=True, eq=False)
class Vector(Expr):
    """Lanes gathered into one vector value (for a 4-wide store)."""

    values: tuple[Expr, ...]

    @property
    def dtype(self) -> str:  # type: ignore[override]
        return self.values[0].dtype


@dataclass(frozen=True, eq=False)
class Stmt:
    pass


@dataclass(frozen=True, eq=False)
class Seq(Stmt):
    body: tuple[Stmt, ...]


@dataclass(frozen=True, eq=False)
class For(Stmt):
    var: sympy.Symbol
    extent: int
    body: Stmt


@dataclass(frozen=True, eq=False)
class If(Stmt):
    cond: sympy.Basic
    then: Stmt
    orelse: Stmt | None = None


@dataclass(frozen=True, eq=False)
class Let(Stmt):
    """Bind an index variable to an index expression (hoisting index math out of inner code)."""

    var: sympy.Symbol
    value: sympy.Expr


@dataclass(frozen=True, eq=False)
class Decl(Stmt):
    """Declare a mutable local (``lanes`` wide), initialised to ``init``; ``const`` locals are never assigned."""

    name: str
    dtype: str
    init: Expr
    lanes: int = 1
    const: bool = False


@dataclass(frozen=True, eq=False)
class Assign(Stmt):
    name: str
    value: Expr


@dataclass(frozen=True, eq=False)
class Store(Stmt):
    """``value`` written at ``index``: ``lanes`` values (1, or 4 of a vector; 2: the first two lanes of a 4-lane
    value, one 8-byte store on WebAssembly)."""

    buffer: Buffer
    index: sympy.Expr
    value: Expr
    lanes: int = 1


@dataclass(frozen=True, eq=False)
class Barrier(Stmt):
    """All threads of a workgroup reach this point, and their shared-memory writes are visible."""


@dataclass(frozen=True)
class Kernel:
    """One launch of ``launch`` threads per axis (x fastest) in workgroups of ``group`` threads per axis.

    Renderers round the launch up to whole workgroups; threads past ``launch`` must do nothing.
    """

    name: str
    params: tuple[Buffer, ...]  # global buffers, inputs first, the written buffer last
    body: Stmt
    launch: tuple[int, ...]
    group: tuple[int, ...]
    thread_vars: tuple[sympy.Symbol, ...]
    shared: tuple[Buffer, ...] = ()
    ranges: dict[sympy.Symbol, tuple[int, int]] = field(default_factory=dict, compare=False)
    #: renderers may fuse ``acc + a * b`` into one multiply-add whose rounding the hardware picks
    fused_multiply_add: bool = False

    @property
    def output(self) -> Buffer:
        return self.params[-1]

    @property
    def inputs(self) -> tuple[Buffer, ...]:
        return self.params[:-1]


@dataclass(frozen=True)
class Program:
    """Every kernel of one workload, in launch order, over named buffers.

    ``inputs`` are fed from outside (in the op's input order), ``output`` is read back, ``temps`` live between
    kernels. Kernels listed in ``prepare`` run once per set of inputs (e.g. repacking weights) and are not timed.
    """

    inputs: tuple[Buffer, ...]
    output: Buffer
    temps: tuple[Buffer, ...]
    kernels: tuple[Kernel, ...]
    prepare: tuple[Kernel, ...] = ()
    layouts: dict[str, Layout] = field(default_factory=dict)  # by buffer name, for buffers in textures

    @property
    def launches(self) -> tuple[Kernel, ...]:
        """Every kernel in launch order: the ``prepare`` kernels, then the rest."""
        return (*self.prepare, *self.kernels)


def children(stmt: Stmt) -> tuple[Stmt, ...]:
    match stmt:
        case Seq(body=body):
            return body
        case For(body=body):
            return (body,)
        case If(then=then, orelse=orelse):
            return (then,) if orelse is None else (then, orelse)
    return ()


def walk(stmt: Stmt):
    """Every statement, parents before children."""
    stack = [stmt]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def values(stmt: Stmt):
    """The value expression of every declaration, assignment and store in ``stmt``."""
    for node in walk(stmt):
        match node:
            case Decl(init=value) | Assign(value=value) | Store(value=value):
                yield value


def seq(*stmts: Stmt | None) -> Stmt:
    """A sequence with ``None`` dropped and nested sequences flattened."""
    flat: list[Stmt] = []
    for s in stmts:
        if s is None:
            continue
        flat.extend(s.body if isinstance(s, Seq) else (s,))
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def value_nodes(expr: Expr):
    """Every node of an IR value expression, parents before children (the lanes of a ``Vector`` included)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(_operands(node)))


def _operands(expr: Expr) -> tuple[Expr, ...]:
    """The value sub-expressions of an IR node, the lanes of a ``Vector`` included."""
    return expr.values if isinstance(expr, Vector) else te_expr.children(expr)


def structure(expr: Expr, memo: dict[int, tuple]) -> tuple:
    """A key that is equal for structurally equal value expressions (nodes compare by identity); ``memo`` maps
    node ids to keys and must not outlive the nodes."""
    key = memo.get(id(expr))
    if key is None:
        operands = _operands(expr)
        own = tuple(
            (f.name, repr(value) if isinstance(value, float) else value)  # -0.0 is not 0.0 here
            for f in fields(expr)
            if not isinstance(value := getattr(expr, f.name), Expr | tuple)
        )
        key = (type(expr).__name__, own, tuple(structure(e, memo) for e in operands))
        memo[id(expr)] = key
    return key


def repeated(expr: Expr, memo: dict[int, tuple]) -> list[Expr]:
    """The subexpressions of ``expr`` that occur more than once (by structure) and are worth computing once:
    arithmetic, not its leaves (a read repeated in one expression is merged by the compilers). Innermost first;
    one inside another repeated one counts once, and the lanes of a ``Vector`` are left as they are."""
    counts: dict[tuple, int] = {}
    order: list[tuple[tuple, Expr]] = []

    def walk(node: Expr) -> None:
        key = structure(node, memo)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] == 1:
            for child in te_expr.children(node):
                walk(child)
            order.append((key, node))

    walk(expr)
    leaves = te_expr.Const | Local | te_expr.IndexCond | BufLoad | Vector
    return [node for key, node in order if counts[key] > 1 and not isinstance(node, leaves)]
