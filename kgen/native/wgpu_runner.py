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

from kgen.codegen.program import CompiledKernel, CompiledProgram
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


class Prepared:
    """A program's buffers, pipelines and bind groups on the device, inputs written: ready to dispatch."""

    def __init__(self, program: CompiledProgram, inputs: Sequence[np.ndarray]) -> None:
        feeds = iter(inputs)
        writes = {}
        for info in program.buffers:
            if info.role == "input":
                data = np.ascontiguousarray(next(feeds), dtype=np.float32).ravel()
                if data.size != info.size:
                    raise KgenError(f"input {info.name} needs {info.size} values, got {data.size}")
                writes[info.name] = data
        self.program = program
        self.setup({b.name: b.size for b in program.buffers}, program.kernels, writes)

    def setup(self, sizes: dict[str, int], kernels, writes: dict[str, np.ndarray]) -> None:
        """Buffers of ``sizes`` elements, ``writes`` written into them, and a pipeline per kernel."""
        import wgpu

        self.dev = device()
        usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST
        self.buffers = {n: self.dev.create_buffer(size=max(4 * size, 16), usage=usage) for n, size in sizes.items()}
        for name, data in writes.items():
            self.dev.queue.write_buffer(self.buffers[name], 0, np.ascontiguousarray(data, np.float32).tobytes())
        self.steps = []
        for kernel in kernels:
            module = self.dev.create_shader_module(code=kernel.source)
            stage = {"module": module, "entry_point": "main"}
            pipeline = self.dev.create_compute_pipeline(layout="auto", compute=stage)
            entries = [{"binding": b.binding, "resource": {"buffer": self.buffers[b.buffer]}} for b in kernel.bindings]
            group = self.dev.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=entries)
            self.steps.append((pipeline, group, kernel.grid))

    def dispatch(self, times: int = 1) -> None:
        """Submit ``times`` runs of the whole program in one command buffer."""
        encoder = self.dev.create_command_encoder()
        compute = encoder.begin_compute_pass()
        for _ in range(times):
            for pipeline, group, grid in self.steps:
                compute.set_pipeline(pipeline)
                compute.set_bind_group(0, group)
                compute.dispatch_workgroups(*grid)
        compute.end()
        self.dev.queue.submit([encoder.finish()])

    def output(self, count: int | None = None) -> np.ndarray:
        """The output's first ``count`` values (all by default); reading waits for the submitted work."""
        out = self.program.output
        return self.read(out.name, out.size if count is None else min(count, out.size))

    def read(self, name: str, count: int) -> np.ndarray:
        data = self.dev.queue.read_buffer(self.buffers[name], 0, max(4 * count, 4))
        return np.frombuffer(data, dtype=np.float32)[:count].copy()


def run(program: CompiledProgram, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Run every kernel of ``program`` once on ``inputs`` and return the output buffer's values."""
    prepared = Prepared(program, inputs)
    prepared.dispatch()
    return prepared.output()


def run_model(program: dict, kernels: Sequence[CompiledKernel], writes: dict[str, np.ndarray], outputs) -> list:
    """A converted model's program (its descriptor entry ``program``) run once: ``writes`` by buffer name,
    ``outputs`` (buffer name, values) read back."""
    prepared = Prepared.__new__(Prepared)
    prepared.setup({b["name"]: b["size"] for b in program["buffers"]}, kernels, writes)
    prepared.dispatch()
    return [prepared.read(name, count) for name, count in outputs]


def time_ms(prepared: Prepared, samples: int = 7, min_sample_ms: float = 2.0) -> list[float]:
    """Per-run wall times (ms) of ``samples`` batches of back-to-back runs, each batch closed by a 1-value
    read-back; the batch size grows until a batch lasts ``min_sample_ms``, so the read-back is amortised."""
    import time

    k = 1
    while True:  # warm-up and calibration
        start = time.perf_counter()
        prepared.dispatch(k)
        prepared.output(1)
        elapsed = 1e3 * (time.perf_counter() - start)
        if elapsed >= min_sample_ms or k >= 1 << 16:
            break
        k = min(k * max(2, int(min_sample_ms / max(elapsed, 1e-3))), 1 << 16)
    result = []
    for _ in range(samples):
        start = time.perf_counter()
        prepared.dispatch(k)
        prepared.output(1)
        result.append(1e3 * (time.perf_counter() - start) / k)
    return result
