"""The IR printed as GLSL ES 3.0 fragment shaders (WebGL2).

Every global buffer is a float texture (R32F, or RGBA32F for 4 channels) of (width, height) texels; a storage
index ``i`` is channel ``i % channels`` of texel ``i // channels``, which lives at ``(t % width, t // width)``.
A kernel's thread is a fragment of its output texture: thread ``t`` is the fragment at
``(t % width, t // width)``, and the kernel's stores (which the texel template makes to that thread's own texel
only) set the channels of the fragment's colour; an output split into planes is that many render targets, one
colour each, and a 2D array texture of that many layers that a later kernel reads through a ``sampler2DArray``
with the plane as the layer. The C-like parts are ``kgen.codegen.cstyle``'s.
"""

from __future__ import annotations

import sympy

from kgen.codegen.cstyle import LANES, CStylePrinter
from kgen.codegen.program import ONE_THREAD, Binding, BufferInfo, CompiledKernel, CompiledProgram, RenderOptions
from kgen.scheduling import ir
from kgen.te import index as ix

TYPES = {"float32": "float", "int32": "int", "bool": "bool"}
VECTORS = {"float32": "vec", "int32": "ivec", "bool": "bvec"}
HELPERS = {
    # divisors are positive; a negative dividend is negated first (GLSL leaves % of negatives undefined)
    "floordiv": "int kgen_floordiv(int a, int b) {\n  return a >= 0 ? a / b : -((b - 1 - a) / b);\n}\n",
    "floormod": "int kgen_floormod(int a, int b) {\n  return a - b * kgen_floordiv(a, b);\n}\n",
    # channel c of a texel, by its bits: a one-hot dot product would turn an infinite channel's 0 * inf into NaN
    "lane": "float kgen_lane(vec4 v, int c) {\n"
    "  uvec4 b = floatBitsToUint(v) & (uvec4(equal(ivec4(c), ivec4(0, 1, 2, 3))) * 0xffffffffu);\n"
    "  return uintBitsToFloat(b.x | b.y | b.z | b.w);\n}\n",
}
OUT = "kgen_o"
COLOUR = "kgen_color"


def _colour(name: str, plane: int, planes: int) -> str:
    """The name of a fragment's output colour (or its working copy) for ``plane`` of ``planes`` render targets."""
    return name if planes == 1 else f"{name}{plane}"


def _chunks(items: list[str], n: int) -> list[list[str]]:
    return [items[k : k + n] for k in range(0, len(items), n)]


class _KernelPrinter(CStylePrinter):
    language = "GLSL"
    types = TYPES
    helper_texts = HELPERS

    def select(self, if_false: str, if_true: str, cond: str) -> str:
        return f"({cond} ? {if_true} : {if_false})"

    def logical(self, conjunction: bool, terms: list[str]) -> str:
        # all()/any() of a bvec: no short-circuit branches (SwiftShader compiled chains of && for minutes)
        fn = "all" if conjunction else "any"
        while len(terms) > 1:
            terms = [t[0] if len(t) == 1 else f"{fn}(bvec{len(t)}({', '.join(t)}))" for t in _chunks(terms, 4)]
        return terms[0]

    def vector_type(self, lanes: int, dtype: str) -> str:
        return f"{VECTORS[dtype]}{lanes}"

    def _split(self, buf: ir.Buffer, index: sympy.Expr) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
        """(plane, texel, channel) of a storage index."""
        plane = sympy.Integer(0)
        if buf.planes > 1:
            plane_size = buf.size // buf.planes
            plane = ix.simplify(ix.floordiv(index, plane_size), self.ranges)
            index = ix.simplify(ix.floormod(index, plane_size), self.ranges)
        if buf.channels == 1:
            return plane, index, sympy.Integer(0)
        texel = ix.simplify(ix.floordiv(index, buf.channels), self.ranges)
        return plane, texel, ix.simplify(ix.floormod(index, buf.channels), self.ranges)

    def element(self, buf: ir.Buffer, index: sympy.Expr, lanes: int) -> str:
        if buf.scope != "global" or buf.texture is None:
            raise self.fail(f"buffer {buf.name} is not in a texture")
        plane, texel, channel = self._split(buf, index)
        width, height = buf.texture
        if height == 1:
            x, y = texel, sympy.Integer(0)
        else:
            x = ix.simplify(ix.floormod(texel, width), self.ranges)
            y = ix.simplify(ix.floordiv(texel, width), self.ranges)
        # a buffer split into planes is a 2D array texture: the plane is the layer
        layer = f", {self.index(plane)}" if buf.planes > 1 else ""
        coord = f"ivec{3 if layer else 2}({self.index(x)}, {self.index(y)}{layer})"
        fetch = f"texelFetch(u_{buf.name}, {coord}, 0)"
        if lanes == 4:
            if channel != 0:
                raise self.fail(f"4-lane read of {buf.name} not aligned to a texel")
            return fetch
        if channel.is_Integer:
            return f"{fetch}.{LANES[int(channel)]}"
        # a channel known only at run time: picked by masking its bits (ANGLE turns v[i] into a function with a
        # switch, and SwiftShader's compiler took minutes over shaders full of them; a one-hot dot product makes
        # NaN of a padding's -inf)
        self.helpers.add("lane")
        return f"kgen_lane({fetch}, {self.index(channel)})"

    def store(self, s: ir.Store, pad: str) -> list[str]:
        if s.buffer is not self.kernel.output:
            raise self.fail(f"stores only to its output texture, not {s.buffer.name}")
        plane, _, channel = self._split(s.buffer, s.index)
        if not channel.is_Integer or not plane.is_Integer:
            raise self.fail(f"store to plane {plane}, channel {channel} of the output: not constants")
        colour = _colour(OUT, int(plane), s.buffer.planes)
        target = colour if s.lanes == 4 else f"{colour}.{LANES[int(channel)]}"
        return [f"{pad}{target} = {self.value(s.value)};"]

    def declare(self, name: str, type_: str, value: str, mutable: bool) -> str:
        return f"{type_} {name} = {value};"

    def stmt(self, s: ir.Stmt, depth: int) -> list[str]:
        # a guarded read fetches unconditionally (an out-of-range texelFetch is harmless in WebGL) and then
        # selects: a texelFetch inside ?: became branches that SwiftShader compiled for minutes
        if isinstance(s, ir.Decl) and isinstance(s.init, ir.BufLoad) and s.init.guard is not sympy.true:
            load = s.init
            type_ = self.types[s.dtype] if s.lanes == 1 else self.vector_type(s.lanes, s.dtype)
            fallback = self.fallback(load)
            pad = "  " * depth
            return [
                pad + self.declare(f"{s.name}_t", type_, self.element(load.buffer, load.index, load.lanes), False),
                pad + self.declare(s.name, type_, self.select(fallback, f"{s.name}_t", self.index(load.guard)), False),
            ]
        return super().stmt(s, depth)

    def loop_head(self, var: str, extent: int) -> str:
        return f"for (int {var} = 0; {var} < {extent}; ++{var})"

    def infinity(self, positive: bool) -> str:
        return "uintBitsToFloat(0x7f800000u)" if positive else "(-uintBitsToFloat(0x7f800000u))"

    def render(self) -> CompiledKernel:
        k = self.kernel
        (threads,) = k.launch
        out = k.output
        assert out.texture is not None
        width, height = out.texture
        body = self.stmt(k.body, 1)
        inputs = [b for b in k.inputs if b.scope == "global"]
        tid = f"i_{k.thread_vars[0].name}"
        planes = range(out.planes)
        colours = [_colour(COLOUR, p, out.planes) for p in planes]
        if out.planes == 1:
            outputs = [f"out vec4 {COLOUR};"]
        else:
            outputs = [f"layout(location = {p}) out vec4 {c};" for p, c in zip(planes, colours, strict=True)]
        lines = [
            "#version 300 es",
            f"// kgen {k.name}: {threads} fragments on a {width}x{height} texture"
            + (f", {out.planes} render targets" if out.planes > 1 else ""),
            "precision highp float;",
            "precision highp int;",
            "precision highp sampler2D;",
            *(["precision highp sampler2DArray;"] if any(b.planes > 1 for b in inputs) else []),
            *(f"uniform {'sampler2DArray' if b.planes > 1 else 'sampler2D'} u_{b.name};" for b in inputs),
            *outputs,
            *self.helper_lines(),
            "void main() {",
            f"  int {tid} = int(gl_FragCoord.y) * {width} + int(gl_FragCoord.x);",
        ]
        if width * height != threads:
            blank = " ".join(f"{c} = vec4(0.0);" for c in colours)
            lines.append(f"  if ({tid} >= {threads}) {{ {blank} return; }}")
        lines += [f"  vec4 {_colour(OUT, p, out.planes)} = vec4(0.0);" for p in planes]
        lines += [*body, *(f"  {c} = {_colour(OUT, p, out.planes)};" for p, c in zip(planes, colours, strict=True))]
        lines += ["}", ""]
        bindings = tuple(Binding(n, b.name, "texture", "read") for n, b in enumerate(inputs))
        bindings += (Binding(len(inputs), out.name, "texture", "write"),)
        return CompiledKernel(k.name, "\n".join(lines), (1, 1, 1), (width, height, 1), bindings)


def render(program: ir.Program, options: RenderOptions = ONE_THREAD) -> CompiledProgram:
    """GLSL text and launch info (textures, viewport as ``grid``) for every kernel of ``program``."""

    def info(b: ir.Buffer, role: str) -> BufferInfo:
        layout = program.layouts[b.name]
        return BufferInfo(b.name, b.dtype, b.size, role, layout.to_json(), b.texture)

    buffers = (
        *(info(b, "input") for b in program.inputs),
        *(info(b, "temp") for b in program.temps),
        info(program.output, "output"),
    )
    kernels = tuple(_KernelPrinter(k).render() for k in program.kernels)
    return CompiledProgram("webgl", buffers, kernels)
