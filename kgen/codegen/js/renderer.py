"""The IR printed as plain JavaScript: the fallback for browsers with no WebGPU, WebGL2 or WebAssembly.

Each kernel is a function expression ``(m, begin, end) => ...`` over tiles ``begin .. end - 1``, where ``m`` is
a ``Float32Array`` over the program's whole memory and every buffer sits at a fixed element offset
(``kgen.codegen.memory``, as for WebAssembly). Arithmetic is JavaScript's double precision, rounded to float32
where it is stored. Index math is exact in doubles; a quotient is truncated with ``| 0`` (dividends are never
negative, as in the other C-style printers). The C-like parts are ``kgen.codegen.cstyle``'s.
"""

from __future__ import annotations

from typing import ClassVar

import sympy

from kgen.codegen.cstyle import BINARY, UNARY, CStylePrinter
from kgen.codegen.memory import placed_buffers, plan_memory
from kgen.codegen.program import ONE_THREAD, CompiledKernel, CompiledProgram, RenderOptions
from kgen.scheduling import ir

MATH_UNARY = {
    **UNARY,
    "exp": "Math.exp({0})",
    "log": "Math.log({0})",
    "tanh": "Math.tanh({0})",
    "sigmoid": "(1.0 / (1.0 + Math.exp(-{0})))",
    "sqrt": "Math.sqrt({0})",
    "abs": "Math.abs({0})",
    "floor": "Math.floor({0})",
    "ceil": "Math.ceil({0})",
    "trunc": "Math.trunc({0})",
}
MATH_BINARY = {**BINARY, "max": "Math.max({0}, {1})", "min": "Math.min({0}, {1})", "pow": "Math.pow({0}, {1})"}
HELPERS = {
    "floordiv": "const kgen_floordiv = (a, b) => Math.floor(a / b);",
    "floormod": "const kgen_floormod = (a, b) => a - b * Math.floor(a / b);",
}


class _KernelPrinter(CStylePrinter):
    language = "JavaScript"
    types: ClassVar[dict[str, str]] = {"float32": "Number", "int32": "Math.trunc", "bool": "Boolean"}
    unary_ops = MATH_UNARY
    binary_ops = MATH_BINARY
    int_functions: ClassVar[dict[str, str]] = {"min": "Math.min", "max": "Math.max", "abs": "Math.abs"}
    helper_texts = HELPERS

    def __init__(self, kernel: ir.Kernel, offsets: dict[str, int]) -> None:
        super().__init__(kernel)
        self.offsets = offsets

    def select(self, if_false: str, if_true: str, cond: str) -> str:
        return f"({cond} ? {if_true} : {if_false})"

    def vector_type(self, lanes: int, dtype: str) -> str:
        raise self.fail("plain JavaScript kernels have no vectors")

    def element(self, buf: ir.Buffer, index: sympy.Expr, lanes: int) -> str:
        if buf.scope != "global" or lanes != 1:
            raise self.fail(f"buffer {buf.name}: plain JavaScript kernels read global buffers one value at a time")
        return f"m[{self.index(index + self.offsets[buf.name] // 4)}]"

    def store(self, s: ir.Store, pad: str) -> list[str]:
        return [f"{pad}{self.element(s.buffer, s.index, s.lanes)} = {self.value(s.value)};"]

    def declare(self, name: str, type_: str, value: str, mutable: bool) -> str:
        return f"{'let' if mutable else 'const'} {name} = {value};"

    def loop_head(self, var: str, extent: int) -> str:
        return f"for (let {var} = 0; {var} < {extent}; {var}++)"

    def infinity(self, positive: bool) -> str:
        return "Infinity" if positive else "-Infinity"

    def int_divide(self, a: str, b: str) -> str:
        return f"(({a} / {b}) | 0)"

    def render(self) -> str:
        k = self.kernel
        t = f"i_{k.thread_vars[0].name}"
        body = self.stmt(k.body, 2)
        return "\n".join(
            [
                f"// kgen {k.name}: {k.launch[0]} tiles; (m, begin, end) computes tiles begin .. end - 1",
                "(m, begin, end) => {",
                *("  " + h for h in self.helper_lines()),
                f"  for (let {t} = begin; {t} < end; {t}++) {{",
                *body,
                "  }",
                "}",
                "",
            ]
        )


def render(program: ir.Program, options: RenderOptions = ONE_THREAD) -> CompiledProgram:
    """JavaScript text and the memory plan for every kernel of ``program`` (one thread)."""
    offsets, end = options.placement or plan_memory(program)
    buffers = placed_buffers(program, offsets)
    kernels = tuple(
        CompiledKernel(k.name, _KernelPrinter(k, offsets).render(), (1, 1, 1), (k.launch[0], 1, 1), ())
        for k in program.launches
    )
    return CompiledProgram("js", buffers, kernels, memory_bytes=end, prepare=len(program.prepare) or None)
