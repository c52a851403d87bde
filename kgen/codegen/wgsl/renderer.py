"""The IR printed as WGSL compute shaders.

The C-like parts are ``kgen.codegen.cstyle``'s. Conditions use WGSL's non-short-circuit ``&``/``|``: straight-line
code (``&&`` branches, and SwiftShader's compiler chokes on blocks of many guarded reads joined by ``&&``).
Buffers read 4 lanes at a time get a second, ``vec4`` view bound to the same GPU buffer. Same IR in, same text
out.
"""

from __future__ import annotations

import math

import sympy

from kgen.codegen.cstyle import CStylePrinter
from kgen.codegen.program import ONE_THREAD, Binding, BufferInfo, CompiledKernel, CompiledProgram, RenderOptions
from kgen.errors import KgenError
from kgen.scheduling import ir
from kgen.te import index as ix
from kgen.te.expr import Expr

TYPES = {"float32": "f32", "int32": "i32", "bool": "bool"}
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


class _KernelPrinter(CStylePrinter):
    language = "WGSL"
    types = TYPES
    and_op = " & "
    or_op = " | "
    helper_texts = HELPERS

    def __init__(self, kernel: ir.Kernel) -> None:
        super().__init__(kernel)
        self.views = _views(kernel)

    def select(self, if_false: str, if_true: str, cond: str) -> str:
        # robust access keeps an out-of-range read harmless; select() discards its value
        return f"select({if_false}, {if_true}, {cond})"

    def vector_type(self, lanes: int, dtype: str) -> str:
        return f"vec{lanes}<{TYPES[dtype]}>"

    def element(self, buf: ir.Buffer, index: sympy.Expr, lanes: int) -> str:
        """``buf[index]`` (``lanes`` = 4: the aligned vec4 at ``index`` through the buffer's vec4 view)."""
        if buf.scope == "shared":
            return f"s_{buf.name}[{self.index(index)}]"
        if lanes == 4:
            return f"b_{buf.name}_v4[{self.index(ix.simplify(ix.floordiv(index, 4), self.ranges))}]"
        return f"b_{buf.name}[{self.index(index)}]"

    def store(self, s: ir.Store, pad: str) -> list[str]:
        return [f"{pad}{self.element(s.buffer, s.index, s.lanes)} = {self.value(s.value)};"]

    def declare(self, name: str, type_: str, value: str, mutable: bool) -> str:
        return f"{'var' if mutable else 'let'} {name}: {type_} = {value};"

    def loop_head(self, var: str, extent: int) -> str:
        return f"for (var {var}: i32 = 0; {var} < {extent}; {var} = {var} + 1)"

    def if_head(self, cond: str) -> str:
        return f"if {cond}"

    def infinity(self, positive: bool) -> str:
        self.helpers.add("inf")
        return "bitcast<f32>(kgen_inf_bits)" if positive else "(-bitcast<f32>(kgen_inf_bits))"

    def int_const(self, v: int) -> str:
        return f"{v}i"

    def barrier(self) -> str:
        return "workgroupBarrier();"

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
            *self.helper_lines(),
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
        for node in ir.value_nodes(e):
            if isinstance(node, ir.BufLoad):
                note(node.buffer, node.lanes)

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


def render(program: ir.Program, options: RenderOptions = ONE_THREAD) -> CompiledProgram:
    """WGSL text and launch info for every kernel of ``program``."""
    buffers = (
        *(BufferInfo(b.name, b.dtype, b.size, "input") for b in program.inputs),
        *(BufferInfo(b.name, b.dtype, b.size, "temp") for b in program.temps),
        BufferInfo(program.output.name, program.output.dtype, program.output.size, "output"),
    )
    kernels = tuple(_KernelPrinter(k).render() for k in program.kernels)
    return CompiledProgram("webgpu", buffers, kernels)
