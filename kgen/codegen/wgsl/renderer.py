"""The IR printed as WGSL compute shaders.

A table says how each value node prints; statements and index math (sympy) print through a few methods.
Conditions use WGSL's non-short-circuit ``&``/``|``. Integer division prints as WGSL's truncating ``/`` and
``%`` where the dividend is provably non-negative, shifted by a multiple of the divisor where its lower bound is
known (so no negative number is ever divided: NVIDIA's Vulkan driver got floor helpers built on signed ``/``,
``%`` and a ``!=`` of booleans wrong for negative dividends), and as floor helpers otherwise. Buffers read 4
lanes at a time get a second, ``vec4`` view bound to the same GPU buffer. Same IR in, same text out.
"""

from __future__ import annotations

import math

import numpy as np
import sympy

from kgen.codegen.program import Binding, BufferInfo, CompiledKernel, CompiledProgram
from kgen.errors import KgenError
from kgen.scheduling import ir
from kgen.te import index as ix
from kgen.te.expr import Binary, Cast, Compare, Const, Expr, IndexCond, Select, Unary, walk

TYPES = {"float32": "f32", "int32": "i32", "bool": "bool"}
UNARY = {
    "neg": "(-{0})",
    "exp": "exp({0})",
    "log": "log({0})",
    "tanh": "tanh({0})",
    "sigmoid": "(1.0 / (1.0 + exp(-{0})))",
    "sqrt": "sqrt({0})",
    "abs": "abs({0})",
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
MAX_GROUPS_PER_DIM = 65535

HELPERS = {
    # divisors are positive; a negative dividend is negated first, so only non-negative numbers are divided
    "floordiv": "fn kgen_floordiv(a: i32, b: i32) -> i32 {\n  return select(-((b - 1 - a) / b), a / b, a >= 0);\n}\n",
    "floormod": "fn kgen_floormod(a: i32, b: i32) -> i32 {\n  return a - b * kgen_floordiv(a, b);\n}\n",
    # WGSL has no infinity literal and rejects infinite constant expressions: build it at run time.
    "inf": "var<private> kgen_inf_bits: u32 = 0x7f800000u;\n",
}


def _grid(groups: int) -> tuple[int, int, int]:
    if groups <= MAX_GROUPS_PER_DIM:
        return (groups, 1, 1)
    x = MAX_GROUPS_PER_DIM
    return (x, math.ceil(groups / x), 1)


class _KernelPrinter:
    def __init__(self, kernel: ir.Kernel) -> None:
        self.kernel = kernel
        self.ranges = dict(kernel.ranges)
        self.helpers: set[str] = set()
        self.views = _views(kernel)

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
                coeff, rest = t.as_coeff_Mul()
                if coeff.is_negative:
                    out += f" - {self.index(-t)}"
                else:
                    out += f" + {self.index(t)}"
            return f"({out})"
        if e.is_Mul:
            coeff, rest = e.as_coeff_Mul()
            factors = [self.index(f) for f in sympy.Mul.make_args(rest)]
            if coeff != 1:
                factors.insert(0, str(int(coeff)) if coeff != -1 else "-1")
            return "(" + " * ".join(factors) + ")"
        if isinstance(e, ix.FloorDiv | ix.FloorMod):
            a, b = e.args
            if not (b.is_Integer and b > 0):
                raise KgenError(f"{self.kernel.name}: index division by {b}, not a positive constant")
            lo, _ = ix.bounds(a, self.ranges)
            if lo is None:
                name = "floordiv" if isinstance(e, ix.FloorDiv) else "floormod"
                self.helpers.update(("floordiv", name))
                return f"kgen_{name}({self.index(a)}, {self.index(b)})"
            shift = -(lo // int(b)) if lo < 0 else 0  # whole divisors added so the dividend is >= 0
            a_text = self.index(a) if shift == 0 else f"({self.index(a)} + {shift * int(b)})"
            if isinstance(e, ix.FloorMod):
                return f"({a_text} % {b})"
            return f"({a_text} / {b})" if shift == 0 else f"({a_text} / {b} - {shift})"
        if isinstance(e, sympy.Min | sympy.Max):
            fn = "min" if isinstance(e, sympy.Min) else "max"
            args = [self.index(a) for a in e.args]
            out = args[0]
            for a in args[1:]:
                out = f"{fn}({out}, {a})"
            return out
        if isinstance(e, sympy.Abs):
            return f"abs({self.index(e.args[0])})"
        if isinstance(e, sympy.And | sympy.Or):
            # non-short-circuit & and |: straight-line code (&& branches, and SwiftShader's compiler chokes on
            # blocks of many guarded reads joined by &&)
            op = " & " if isinstance(e, sympy.And) else " | "
            return "(" + op.join(self.index(a) for a in e.args) + ")"
        if isinstance(e, sympy.Not):
            return f"(!{self.index(e.args[0])})"
        if isinstance(e, sympy.core.relational.Relational):
            return f"({self.index(e.lhs)} {RELATIONS[e.rel_op]} {self.index(e.rhs)})"
        raise KgenError(f"WGSL renderer: cannot print index expression {e}")

    # -- values ------------------------------------------------------------------------------------------
    def value(self, e: Expr) -> str:
        match e:
            case Const(value=v, dtype=dt):
                return self.const(v, dt)
            case ir.Local(name=name, lane=lane):
                return name if lane is None else f"{name}.{LANES[lane]}"
            case ir.BufLoad(buffer=buf, index=index, lanes=lanes, guard=guard, default=default):
                read = self.element(buf, index, lanes)
                if lanes == 4:
                    fallback = f"vec4<{TYPES[buf.dtype]}>({self.const(default, buf.dtype)})"
                else:
                    fallback = self.const(default, buf.dtype)
                if guard is sympy.true:
                    return read
                # robust access keeps an out-of-range read harmless; select() discards its value
                return f"select({fallback}, {read}, {self.index(guard)})"
            case Unary(func=f, x=x):
                return UNARY[f].format(self.value(x))
            case Binary(op=op, a=a, b=b):
                return BINARY[op].format(self.value(a), self.value(b))
            case Compare(op=op, a=a, b=b):
                return f"({self.value(a)} {COMPARE[op]} {self.value(b)})"
            case IndexCond(cond=cond):
                return self.index(cond)
            case Select(cond=c, a=a, b=b):
                return f"select({self.value(b)}, {self.value(a)}, {self.value(c)})"
            case Cast(x=x, dtype=dt):
                return f"{TYPES[dt]}({self.value(x)})"
            case ir.Vector(values=values):
                return f"vec{len(values)}<{TYPES[e.dtype]}>(" + ", ".join(self.value(v) for v in values) + ")"
        raise KgenError(f"WGSL renderer: cannot print {type(e).__name__}")

    def element(self, buf: ir.Buffer, index: sympy.Expr, lanes: int) -> str:
        """``buf[index]`` (``lanes`` = 4: the aligned vec4 at ``index`` through the buffer's vec4 view)."""
        if buf.scope == "shared":
            return f"s_{buf.name}[{self.index(index)}]"
        if lanes == 4:
            return f"b_{buf.name}_v4[{self.index(ix.simplify(ix.floordiv(index, 4), self.ranges))}]"
        return f"b_{buf.name}[{self.index(index)}]"

    def const(self, v: float | int | bool, dtype: str) -> str:
        if dtype == "bool":
            return "true" if v else "false"
        if dtype == "int32":
            return f"{int(v)}i"
        f = float(np.float32(v))
        if math.isinf(f):
            self.helpers.add("inf")
            return "bitcast<f32>(kgen_inf_bits)" if f > 0 else "(-bitcast<f32>(kgen_inf_bits))"
        if math.isnan(f):
            raise KgenError("WGSL renderer: NaN constants are not supported")
        text = repr(f)
        return text if any(c in text for c in ".e") else text + ".0"

    # -- statements --------------------------------------------------------------------------------------
    def stmt(self, s: ir.Stmt, depth: int) -> list[str]:
        pad = "  " * depth
        match s:
            case ir.Seq(body=body):
                return [line for child in body for line in self.stmt(child, depth)]
            case ir.Let(var=var, value=value):
                return [f"{pad}let i_{var.name}: i32 = {self.index(value)};"]
            case ir.Decl(name=name, dtype=dt, init=init, lanes=lanes, const=const):
                ty = TYPES[dt] if lanes == 1 else f"vec{lanes}<{TYPES[dt]}>"
                keyword = "let" if const else "var"
                return [f"{pad}{keyword} {name}: {ty} = {self.value(init)};"]
            case ir.Assign(name=name, value=value):
                return [f"{pad}{name} = {self.value(value)};"]
            case ir.Store(buffer=buf, index=index, value=value, lanes=lanes):
                return [f"{pad}{self.element(buf, index, lanes)} = {self.value(value)};"]
            case ir.For(var=var, extent=extent, body=body):
                v = f"i_{var.name}"
                head = f"{pad}for (var {v}: i32 = 0; {v} < {extent}; {v} = {v} + 1) {{"
                return [head, *self.stmt(body, depth + 1), f"{pad}}}"]
            case ir.If(cond=cond, then=then, orelse=orelse):
                lines = [f"{pad}if {self.index(cond)} {{", *self.stmt(then, depth + 1)]
                if orelse is not None:
                    lines += [f"{pad}}} else {{", *self.stmt(orelse, depth + 1)]
                return [*lines, f"{pad}}}"]
            case ir.Barrier():
                return [f"{pad}workgroupBarrier();"]
        raise KgenError(f"WGSL renderer: cannot print {type(s).__name__}")

    # -- the kernel --------------------------------------------------------------------------------------
    def render(self) -> CompiledKernel:
        k = self.kernel
        (threads,) = k.launch
        (wg,) = k.group
        grid = _grid(math.ceil(threads / wg))
        body = self.stmt(k.body, 1)
        bindings, decls = [], []
        for buf in k.params:
            if buf.name not in self.views:
                continue  # every read of it folded away (e.g. a pad that only crops to padding)
            access = "read_write" if buf is k.output else "read"
            for view in sorted(self.views[buf.name]):
                suffix, elem = ("_v4", f"vec4<{TYPES[buf.dtype]}>") if view == "vec4" else ("", TYPES[buf.dtype])
                n = len(bindings)
                bindings.append(Binding(n, buf.name, view, access))
                decls.append(f"@group(0) @binding({n}) var<storage, {access}> b_{buf.name}{suffix}: array<{elem}>;")
        tid = f"i32((wid.y * nwg.x + wid.x) * {wg}u + lid.x)"
        shared = [f"var<workgroup> s_{b.name}: array<{TYPES[b.dtype]}, {b.size}>;" for b in k.shared]
        lines = [
            f"// kgen {k.name}: {threads} threads, workgroup {wg}",
            *decls,
            *shared,
            *(HELPERS[h] for h in sorted(self.helpers)),
            f"@compute @workgroup_size({wg})",
            "fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,",
            "        @builtin(num_workgroups) nwg: vec3<u32>) {",
            f"  let i_{k.thread_vars[0].name}: i32 = {tid};",
        ]
        if grid[0] * grid[1] * wg != threads:
            lines.append(f"  if i_{k.thread_vars[0].name} >= {threads} {{ return; }}")
        lines += [*body, "}", ""]
        return CompiledKernel(k.name, "\n".join(lines), (wg, 1, 1), grid, tuple(bindings))


def _views(kernel: ir.Kernel) -> dict[str, set[str]]:
    """For each buffer, whether it is accessed one element (scalar) or 4 lanes (vec4) at a time."""
    views: dict[str, set[str]] = {}

    def note(buf: ir.Buffer, lanes: int) -> None:
        if buf.scope == "global":
            views.setdefault(buf.name, set()).add("vec4" if lanes == 4 else "scalar")

    def visit(e: Expr) -> None:
        for node in walk(e):
            if isinstance(node, ir.BufLoad):
                note(node.buffer, node.lanes)
            elif isinstance(node, ir.Vector):
                for v in node.values:
                    visit(v)

    for s in ir.walk(kernel.body):
        match s:
            case ir.Decl(init=init):
                visit(init)
            case ir.Assign(value=value):
                visit(value)
            case ir.Store(buffer=buf, value=value, lanes=lanes):
                note(buf, lanes)
                visit(value)
    out_views = views.get(kernel.output.name, set())
    if len(out_views) > 1:
        raise KgenError(f"WGSL renderer: kernel {kernel.name} writes its output both as scalars and as vec4")
    return views


def render(program: ir.Program) -> CompiledProgram:
    """WGSL text and launch info for every kernel of ``program``."""
    buffers = (
        *(BufferInfo(b.name, b.dtype, b.size, "input") for b in program.inputs),
        *(BufferInfo(b.name, b.dtype, b.size, "temp") for b in program.temps),
        BufferInfo(program.output.name, program.output.dtype, program.output.size, "output"),
    )
    kernels = tuple(_KernelPrinter(k).render() for k in program.kernels)
    return CompiledProgram("webgpu", buffers, kernels)
