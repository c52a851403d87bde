"""From a workload and a config to a compiled program for one backend: the one entry point the CLI, the
browser harness and the tuner use."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from kgen.codegen.program import CompiledProgram
from kgen.errors import KgenError
from kgen.ops.workload import Workload
from kgen.scheduling.lower import lower, lower_workload, main_stage_of, pattern_template
from kgen.scheduling.space import DEFAULT_LIMITS, Limits, Space
from kgen.scheduling.templates import template_for
from kgen.te.tensor import compute, placeholder


def space(workload: Workload, backend: str) -> Space:
    """The knobs a config of ``workload`` on ``backend`` sets."""
    template = template_for(backend)
    output = workload.build()[1]
    whole = pattern_template(template, output)
    return template.space(main_stage_of(output)) if whole is None else whole.space(output.op.pattern)


def build(
    workload: Workload, backend: str, config: Mapping[str, Any] | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[CompiledProgram, dict]:
    """The compiled program and the complete config (defaults filled in), valid under the device ``limits``."""
    program, full = lower_workload(workload, template_for(backend), config, limits)
    assert not program.prepare or backend in ("wasm", "js"), f"{backend} renderers do not launch prepare kernels"
    if backend == "wasm":
        from kgen.codegen.wasm.renderer import render as render_wasm

        rendered = render_wasm(program, threads=full["threads"])
    else:
        language = {"webgpu": "wgsl", "webgl": "glsl", "js": "js"}[backend]
        rendered = importlib.import_module(f"kgen.codegen.{language}.renderer").render(program)
    check_fits(rendered, workload.key, limits)
    return rendered, full


WASM32_BYTES = 4 * 2**30  # the most linear memory a wasm32 module can address


def check_fits(program: CompiledProgram, where: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise a one-line ``KgenError`` when ``program`` cannot run on a device with ``limits``: wasm32's 4 GiB of
    linear memory, WebGPU's largest storage binding and its dispatch grid."""
    if program.backend == "wasm" and (program.memory_bytes or 0) > WASM32_BYTES:
        raise KgenError(
            f"{where}: needs {program.memory_bytes / 2**30:.1f} GiB of wasm linear memory; wasm32 has 4 GiB"
        )
    if program.backend != "webgpu":
        return
    most = limits["max_storage_buffer_binding_size"]
    for b in program.buffers:
        if 4 * b.size > most:
            raise KgenError(
                f"{where}: buffer {b.name} of {4 * b.size:,} bytes is over the {most:,} bytes a storage binding "
                "may hold (maxStorageBufferBindingSize)"
            )
    cap = limits["max_workgroups_per_dimension"]
    for k in program.kernels:
        if max(k.grid) > cap:
            raise KgenError(f"{where}: kernel {k.name} dispatches {k.grid} workgroups; the device allows {cap} a side")


def build_conversion(
    shape: tuple[int, ...],
    source: str,
    target: str,
    planes: int = 1,
    limits: Limits = DEFAULT_LIMITS,
    source_planes: int = 1,
) -> CompiledProgram:
    """A WebGL program that copies a tensor from one texture layout into another (``source`` and ``target`` are
    layout names, ``planes`` the target's render targets and ``source_planes`` the planes its producer wrote), for
    a consumer that reads another layout than its producer writes: a copy through the texel template, whose layout
    knobs do the packing."""
    from kgen.codegen.glsl.renderer import render

    x = placeholder(shape, name="input")
    y = compute(shape, lambda *i: x[i], name="convert")
    config = {"layout_input": source, "layout_out": target, "planes": planes}
    program, _ = lower([x], y, template_for("webgl"), config, "convert", limits, {0: source_planes})
    return render(program)
