"""WebGPU: WGSL compute shaders over storage buffers, tiled for workgroups."""

from kgen.backends import Backend, Fingerprint
from kgen.codegen.wgsl.renderer import render
from kgen.scheduling.templates.gpu_tile import GpuTile


def _device_parts(fingerprint: Fingerprint) -> list[str]:
    gpu = fingerprint.get("webgpu", {})
    return [gpu.get("vendor") or "unknown", gpu.get("architecture") or gpu.get("device") or "unknown"]


BACKEND = Backend(
    name="webgpu",
    template=GpuTile(),
    render=render,
    # float32 accumulation in another order than the float64 reference, and WGSL's exp/tanh/sqrt (a few ulp)
    tolerance=(1e-4, 1e-4),
    storage="buffers",
    device_parts=_device_parts,
    gpu=True,
    native=("kgen.native.wgpu_runner", "wgpu-py"),
    fingerprint_entry="webgpu",
)
