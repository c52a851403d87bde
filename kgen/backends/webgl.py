"""WebGL2: GLSL ES fragment shaders that write textures, one output texel per fragment."""

import re

from kgen.backends import Backend, Fingerprint
from kgen.codegen.glsl.renderer import render
from kgen.codegen.program import CompiledProgram
from kgen.scheduling.lower import lower
from kgen.scheduling.space import DEFAULT_LIMITS, Limits
from kgen.scheduling.templates.texel import TexelTile
from kgen.te.tensor import compute, placeholder


def _device_parts(fingerprint: Fingerprint) -> list[str]:
    renderer = (fingerprint.get("webgl2", {}).get("renderer") or "unknown").lower()
    return ["webgl", "swiftshader" if "swiftshader" in renderer else re.sub(r"[^a-z0-9]+", "_", renderer)[:48]]


BACKEND = Backend(
    name="webgl",
    template=TexelTile(),
    render=render,
    # RGBA32F/R32F textures hold float32 exactly; GLSL ES's exp/tanh/sqrt and accumulation order as for WGSL
    tolerance=(1e-4, 1e-4),
    storage="textures",
    device_parts=_device_parts,
    gpu=True,
    fingerprint_entry="webgl2",
)


def conversion(
    shape: tuple[int, ...],
    source: str,
    target: str,
    planes: int = 1,
    limits: Limits = DEFAULT_LIMITS,
    source_planes: tuple[int, int] | None = None,
) -> CompiledProgram:
    """A program that copies a tensor from one texture layout into another (``source`` and ``target`` are layout
    names, ``planes`` the target's render targets and ``source_planes`` the (axis, count) planes its producer
    wrote), for a consumer that reads another layout than its producer writes: a copy through the texel template,
    whose layout knobs do the packing."""
    x = placeholder(shape, name="input")
    y = compute(shape, lambda *i: x[i], name="convert")
    config = {"layout_input": source, "layout_out": target, "planes": planes}
    program, _ = lower([x], y, BACKEND.template, config, "convert", limits, {0: source_planes} if source_planes else {})
    return render(program)
