"""Plain JavaScript: the fallback that runs anywhere, over one ArrayBuffer."""

from kgen.backends import Backend, cpu_parts
from kgen.codegen.js.renderer import render
from kgen.scheduling.templates.cpu_tile import CpuTile

BACKEND = Backend(
    name="js",
    template=CpuTile(simd=False),
    render=render,
    # JavaScript computes in double and rounds where it stores to a Float32Array
    tolerance=(1e-5, 1e-5),
    storage="heap",
    device_parts=cpu_parts("js"),
    prepare=True,
    timing=(15, 5.0),  # as for wasm: bursts on these VMs
)
