"""Run a compiled WebGPU program through wgpu-py, on Chromium's own SwiftShader Vulkan driver by default.

The same WGSL and launch info the browser gets; used by fast tests. ``KGEN_VK_ICD`` overrides the Vulkan
driver (e.g. lavapipe's ICD file); with no Vulkan loader wgpu falls back to whatever adapter it finds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from kgen.codegen.program import CompiledProgram
from kgen.errors import KgenError

SWIFTSHADER_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json"


@cache
def device():
    """One wgpu device per process (creating one costs about half a second)."""
    icd = os.environ.get("KGEN_VK_ICD", SWIFTSHADER_ICD)
    if Path(icd).exists():
        os.environ.setdefault("VK_ICD_FILENAMES", icd)
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    import wgpu

    adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
    if adapter is None:
        raise KgenError("wgpu found no adapter (install libvulkan1, or set KGEN_VK_ICD to a Vulkan driver's ICD)")
    return adapter.request_device_sync(required_limits={"max_storage_buffers_per_shader_stage": 8})


def run(program: CompiledProgram, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Run every kernel of ``program`` once on ``inputs`` and return the output buffer's values."""
    import wgpu

    dev = device()
    usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
    gpu_buffers = {}
    feeds = iter(inputs)
    for info in program.buffers:
        size = max(4 * info.size, 16)
        buf = dev.create_buffer(size=size, usage=usage)
        if info.role == "input":
            data = np.ascontiguousarray(next(feeds), dtype=np.float32).ravel()
            if data.size != info.size:
                raise KgenError(f"input {info.name} needs {info.size} values, got {data.size}")
            dev.queue.write_buffer(buf, 0, data.tobytes())
        gpu_buffers[info.name] = buf
    encoder = dev.create_command_encoder()
    for kernel in program.kernels:
        module = dev.create_shader_module(code=kernel.source)
        pipeline = dev.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": "main"})
        entries = [{"binding": b.binding, "resource": {"buffer": gpu_buffers[b.buffer]}} for b in kernel.bindings]
        group = dev.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=entries)
        compute = encoder.begin_compute_pass()
        compute.set_pipeline(pipeline)
        compute.set_bind_group(0, group)
        compute.dispatch_workgroups(*kernel.grid)
        compute.end()
    dev.queue.submit([encoder.finish()])
    out = program.output
    data = dev.queue.read_buffer(gpu_buffers[out.name])
    return np.frombuffer(data, dtype=np.float32)[: out.size].copy()
