"""What WGSL and GLSL printers share: C-like index math, arithmetic and statements over the IR.

A printer is this table plus a few methods that differ between the languages (declarations, ``select``,
vector types, how a buffer element is read or written). Integer division prints as truncating ``/`` and ``%``
where the dividend is provably non-negative, shifted by a whole multiple of the divisor where its lower bound
is known, so no negative number is ever divided (GLSL leaves ``%`` of negatives undefined, and NVIDIA's Vulkan
driver got WGSL floor helpers built on signed ``/``, ``%`` and a ``!=`` of booleans wrong), and through floor
helpers otherwise. Same IR in, same text out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import sympy

from kgen.errors import KgenError
from kgen.scheduling import ir
from kgen.te import index as ix
from kgen.te.expr import Binary, Cast, Compare, Const, Expr, IndexCond, Select, Unary

UNARY = {
    "neg": "(-{0})",
    "exp": "exp({0})",
    "log": "log({0})",
    # GPU drivers compute tanh as (e^2x - 1) / (e^2x + 1), NaN past |x| = 44 (SwiftShader does); tanh(10) is 1.0
    # in float32
    "tanh": "tanh(clamp({0}, -10.0, 10.0))",
    "sigmoid": "(1.0 / (1.0 + exp(-{0})))",
    "sqrt": "sqrt({0})",
    "abs": "abs({0})",
    "floor": "floor({0})",
    "ceil": "ceil({0})",
    "trunc": "trunc({0})",
}
BINARY = {
    "add": "({0} + {1})",
    "sub": "({0} - {1})",
    "mul": "({0} * {1})",
    "div": "({0} / {1})",
    "max": "max({0}, {1})",
    "min": "min({0}, {1})",
    "pow": "pow({0}, {1})",
}
COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
RELATIONS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "==", "!=": "!="}
LANES = "xyzw"


def shifted_division(
    e: ix.FloorDiv | ix.FloorMod, ranges: dict, fail: Callable[[str], Exception]
) -> tuple[sympy.Expr, int, int | None]:
    """(dividend, divisor, shift) of an index division, for printers that never divide a negative number:
    ``shift`` whole divisors added make the dividend non-negative; None where its lower bound is unknown (floor
    helpers then). A divisor that is not a positive constant is ``fail``'s error."""
    a, b = e.args
    if not (b.is_Integer and b > 0):
        raise fail(f"index division by {b}, not a positive constant")
    lo, _ = ix.bounds(a, ranges)
    if lo is None:
        return a, int(b), None
    return a, int(b), -(lo // int(b)) if lo < 0 else 0


class CStylePrinter:
    language = "C"
    types: ClassVar[dict[str, str]] = {}
    unary_ops: ClassVar[dict[str, str]] = UNARY
    binary_ops: ClassVar[dict[str, str]] = BINARY
    #: how ``min``, ``max`` and ``abs`` of integers are called
    int_functions: ClassVar[dict[str, str]] = {"min": "min", "max": "max", "abs": "abs"}
    and_op = " && "
    or_op = " || "
    #: helper functions by name; ``floormod`` may call ``floordiv``
    helper_texts: ClassVar[dict[str, str]] = {}

    def __init__(self, kernel: ir.Kernel) -> None:
        self.kernel = kernel
        self.ranges = dict(kernel.ranges)
        self.helpers: set[str] = set()

    def fail(self, what: str) -> KgenError:
        return KgenError(f"{self.language} renderer: kernel {self.kernel.name}: {what}")

    # -- what differs between languages ------------------------------------------------------------------
    def select(self, if_false: str, if_true: str, cond: str) -> str:
        raise NotImplementedError

    def vector_type(self, lanes: int, dtype: str) -> str:
        raise NotImplementedError

    def element(self, buf: ir.Buffer, index: sympy.Expr, lanes: int) -> str:
        raise NotImplementedError

    def store(self, s: ir.Store, pad: str) -> list[str]:
        raise NotImplementedError

    def declare(self, name: str, type_: str, value: str, mutable: bool) -> str:
        raise NotImplementedError

    def loop_head(self, var: str, extent: int) -> str:
        raise NotImplementedError

    def infinity(self, positive: bool) -> str:
        raise NotImplementedError

    def logical(self, conjunction: bool, terms: list[str]) -> str:
        """``terms`` joined by and (``conjunction``) or by or."""
        return "(" + (self.and_op if conjunction else self.or_op).join(terms) + ")"

    def if_head(self, cond: str) -> str:
        return f"if ({cond})"

    def int_const(self, v: int) -> str:
        return str(int(v))

    def barrier(self) -> str:
        raise self.fail("this backend has no workgroup barrier")

    # -- index math --------------------------------------------------------------------------------------
    def index(self, e: sympy.Basic) -> str:
        if e is sympy.true:
            return "true"
        if e is sympy.false:
            return "false"
        if e.is_Integer:
            return str(int(e))
        if e.is_Symbol:
            return f"i_{e.name}"
        if e.is_Add:
            terms = e.as_ordered_terms()
            out = self.index(terms[0])
            for t in terms[1:]:
                coeff, _ = t.as_coeff_Mul()
                out += f" - {self.index(-t)}" if coeff.is_negative else f" + {self.index(t)}"
            return f"({out})"
        if e.is_Mul:
            coeff, rest = e.as_coeff_Mul()
            factors = [self.index(f) for f in sympy.Mul.make_args(rest)]
            if coeff != 1:
                factors.insert(0, str(int(coeff)) if coeff != -1 else "-1")
            return "(" + " * ".join(factors) + ")"
        if isinstance(e, ix.FloorDiv | ix.FloorMod):
            return self.divide(e)
        if isinstance(e, sympy.Min | sympy.Max):
            fn = self.int_functions["min" if isinstance(e, sympy.Min) else "max"]
            args = [self.index(a) for a in e.args]
            out = args[0]
            for a in args[1:]:
                out = f"{fn}({out}, {a})"
            return out
        if isinstance(e, sympy.Abs):
            return f"{self.int_functions['abs']}({self.index(e.args[0])})"
        if isinstance(e, sympy.And | sympy.Or):
            return self.logical(isinstance(e, sympy.And), [self.index(a) for a in e.args])
        if isinstance(e, sympy.Not):
            return f"(!{self.index(e.args[0])})"
        if isinstance(e, sympy.core.relational.Relational):
            return f"({self.index(e.lhs)} {RELATIONS[e.rel_op]} {self.index(e.rhs)})"
        raise self.fail(f"cannot print index expression {e}")

    def divide(self, e: ix.FloorDiv | ix.FloorMod) -> str:
        a, b, shift = shifted_division(e, self.ranges, self.fail)
        if shift is None:
            name = "floordiv" if isinstance(e, ix.FloorDiv) else "floormod"
            self.helpers.update(("floordiv", name))
            return f"kgen_{name}({self.index(a)}, {b})"
        a_text = self.index(a) if shift == 0 else f"({self.index(a)} + {shift * b})"
        if isinstance(e, ix.FloorMod):
            return f"({a_text} % {b})"
        quotient = self.int_divide(a_text, str(b))
        return f"({quotient})" if shift == 0 else f"({quotient} - {shift})"

    def int_divide(self, a: str, b: str) -> str:
        """The quotient of non-negative integers (truncating ``/`` in C-like languages), for use as an operand
        of ``-``."""
        return f"{a} / {b}"

    # -- values ------------------------------------------------------------------------------------------
    def value(self, e: Expr) -> str:
        match e:
            case Const(value=v, dtype=dt):
                return self.const(v, dt)
            case ir.Local(name=name, lane=lane):
                return name if lane is None else f"{name}.{LANES[lane]}"
            case ir.BufLoad(buffer=buf, index=index, lanes=lanes, guard=guard):
                if e.stride != 1:
                    raise self.fail(f"buffer {buf.name}: strided vector reads are for WebAssembly only")
                read = self.element(buf, index, lanes)
                if guard is sympy.true:
                    return read
                return self.select(self.fallback(e), read, self.index(guard))
            case Unary(func=f, x=x):
                return self.unary_ops[f].format(self.value(x))
            case Binary(op=op, a=a, b=b):
                return self.binary_ops[op].format(self.value(a), self.value(b))
            case Compare(op=op, a=a, b=b):
                return f"({self.value(a)} {COMPARE[op]} {self.value(b)})"
            case IndexCond(cond=cond):
                return self.index(cond)
            case Select(cond=c, a=a, b=b):
                return self.select(self.value(b), self.value(a), self.value(c))
            case Cast(x=x, dtype=dt):
                return f"{self.types[dt]}({self.value(x)})"
            case ir.Vector(values=values):
                return f"{self.vector_type(len(values), e.dtype)}(" + ", ".join(self.value(v) for v in values) + ")"
        raise self.fail(f"cannot print {type(e).__name__}")

    def fallback(self, load: ir.BufLoad) -> str:
        """What a guarded read yields where its guard is false."""
        value = self.const(load.default, load.dtype)
        return value if load.lanes == 1 else f"{self.vector_type(load.lanes, load.dtype)}({value})"

    def const(self, v: float | int | bool, dtype: str) -> str:
        if dtype == "bool":
            return "true" if v else "false"
        if dtype == "int32":
            return self.int_const(int(v))
        f = float(np.float32(v))
        if math.isinf(f):
            return self.infinity(f > 0)
        if math.isnan(f):
            raise self.fail("NaN constants are not supported")
        text = repr(f)
        return text if any(c in text for c in ".e") else text + ".0"

    # -- statements --------------------------------------------------------------------------------------
    def stmt(self, s: ir.Stmt, depth: int) -> list[str]:
        pad = "  " * depth
        match s:
            case ir.Seq(body=body):
                return [line for child in body for line in self.stmt(child, depth)]
            case ir.Let(var=var, value=value):
                return [pad + self.declare(f"i_{var.name}", self.types["int32"], self.index(value), mutable=False)]
            case ir.Decl(name=name, dtype=dt, init=init, lanes=lanes, const=const):
                type_ = self.types[dt] if lanes == 1 else self.vector_type(lanes, dt)
                value = self.value(init)
                if lanes > 1 and isinstance(init, Const):  # a scalar initial value in every lane
                    value = f"{type_}({value})"
                return [pad + self.declare(name, type_, value, mutable=not const)]
            case ir.Assign(name=name, value=value):
                return [f"{pad}{name} = {self.value(value)};"]
            case ir.Store():
                return self.store(s, pad)
            case ir.For(var=var, extent=extent, body=body):
                return [f"{pad}{self.loop_head(f'i_{var.name}', extent)} {{", *self.stmt(body, depth + 1), f"{pad}}}"]
            case ir.If(cond=cond, then=then, orelse=orelse):
                lines = [f"{pad}{self.if_head(self.index(cond))} {{", *self.stmt(then, depth + 1)]
                if orelse is not None:
                    lines += [f"{pad}}} else {{", *self.stmt(orelse, depth + 1)]
                return [*lines, f"{pad}}}"]
            case ir.Barrier():
                return [pad + self.barrier()]
        raise self.fail(f"cannot print {type(s).__name__}")

    def helper_lines(self) -> list[str]:
        return [self.helper_texts[h] for h in sorted(self.helpers)]
