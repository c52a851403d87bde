"""From a workload and a config to a compiled program for one backend: the one entry point the CLI, the
browser harness and the tuner use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kgen import backends
from kgen.codegen.program import CompiledProgram, RenderOptions
from kgen.errors import KgenError
from kgen.ops.workload import Workload
from kgen.scheduling.lower import lower_workload, main_stage_of, pattern_template
from kgen.scheduling.space import DEFAULT_LIMITS, Limits, Space


def space(workload: Workload, backend: str) -> Space:
    """The knobs a config of ``workload`` on ``backend`` sets."""
    template = backends.get(backend).template
    output = workload.build()[1]
    whole = pattern_template(template, output)
    return template.space(main_stage_of(output)) if whole is None else whole.space(output.op.pattern)


def build(
    workload: Workload, backend: str, config: Mapping[str, Any] | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[CompiledProgram, dict]:
    """The compiled program and the complete config (defaults filled in), valid under the device ``limits``."""
    b = backends.get(backend)
    program, full = lower_workload(workload, b.template, config, limits)
    if program.prepare and not b.prepare:
        raise KgenError(f"{workload.key}: {backend} renderers do not launch prepare kernels")
    rendered = b.render(program, RenderOptions(threads=full.get("threads", 1)))
    check_fits(rendered, workload.key, limits)
    return rendered, full


def check_fits(program: CompiledProgram, where: str, limits: Limits = DEFAULT_LIMITS) -> None:
    """Raise a one-line ``KgenError`` when ``program`` cannot run on a device with ``limits``: the memory a
    backend can address (wasm32's 4 GiB), and on GPU buffers the largest storage binding and the dispatch grid."""
    b = backends.get(program.backend)
    if b.max_memory_bytes is not None and (program.memory_bytes or 0) > b.max_memory_bytes:
        raise KgenError(
            f"{where}: needs {program.memory_bytes / 2**30:.1f} GiB of {b.name} memory; "
            f"it can address {b.max_memory_bytes / 2**30:g} GiB"
        )
    if b.storage != "buffers":
        return
    most = limits["max_storage_buffer_binding_size"]
    for buf in program.buffers:
        if 4 * buf.size > most:
            raise KgenError(
                f"{where}: buffer {buf.name} of {4 * buf.size:,} bytes is over the {most:,} bytes a storage binding "
                "may hold (maxStorageBufferBindingSize)"
            )
    cap = limits["max_workgroups_per_dimension"]
    for k in program.kernels:
        if max(k.grid) > cap:
            raise KgenError(f"{where}: kernel {k.name} dispatches {k.grid} workgroups; the device allows {cap} a side")
