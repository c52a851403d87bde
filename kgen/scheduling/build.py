"""From a workload and a config to a compiled program for one backend: the one entry point the CLI, the
browser harness and the tuner use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kgen.codegen.program import CompiledProgram
from kgen.ops.workload import Workload
from kgen.scheduling.lower import lower, lower_workload, main_stage
from kgen.scheduling.space import DEFAULT_LIMITS, Limits, Space
from kgen.scheduling.templates import template_for
from kgen.te.tensor import compute, placeholder


def space(workload: Workload, backend: str) -> Space:
    """The knobs a config of ``workload`` on ``backend`` sets."""
    return template_for(backend).space(main_stage(workload))


def build(
    workload: Workload, backend: str, config: Mapping[str, Any] | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[CompiledProgram, dict]:
    """The compiled program and the complete config (defaults filled in), valid under the device ``limits``."""
    program, full = lower_workload(workload, template_for(backend), config, limits)
    assert not program.prepare or backend in ("wasm", "js"), f"{backend} renderers do not launch prepare kernels"
    if backend == "wasm":
        from kgen.codegen.wasm.renderer import render as render_wasm

        return render_wasm(program, threads=full["threads"]), full
    if backend == "webgpu":
        from kgen.codegen.wgsl.renderer import render
    elif backend == "webgl":
        from kgen.codegen.glsl.renderer import render
    elif backend == "js":
        from kgen.codegen.js.renderer import render
    else:
        raise AssertionError(f"no renderer for {backend}")
    return render(program), full


def build_conversion(
    shape: tuple[int, ...], source: str, target: str, planes: int = 1, limits: Limits = DEFAULT_LIMITS
) -> CompiledProgram:
    """A WebGL program that copies a tensor from one texture layout into another (``source`` and ``target`` are
    layout names, ``planes`` the target's render targets), for a consumer that reads another layout than its
    producer writes: a copy through the texel template, whose layout knobs do the packing."""
    from kgen.codegen.glsl.renderer import render

    x = placeholder(shape, name="input")
    y = compute(shape, lambda *i: x[i], name="convert")
    config = {"layout_input": source, "layout_out": target, "planes": planes}
    program, _ = lower([x], y, template_for("webgl"), config, "convert", limits)
    return render(program)
