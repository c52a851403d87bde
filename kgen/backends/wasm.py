"""WebAssembly: SIMD128 (and relaxed SIMD's fused multiply-add) modules over one linear memory, split over
threads."""

from kgen.backends import Backend, cpu_parts
from kgen.codegen.wasm.renderer import render
from kgen.scheduling.templates.cpu_tile import CpuTile

BACKEND = Backend(
    name="wasm",
    template=CpuTile(simd=True),
    render=render,
    # IEEE float32 arithmetic in another order, relaxed multiply-adds (one rounding or two), exp and tanh computed
    # in wasm (a few ulp; tanh within 2.5e-7 of the true value)
    tolerance=(1e-4, 1e-4),
    storage="linear",
    device_parts=cpu_parts("wasm", threaded=True),
    prepare=True,
    threads=True,
    worker_spin_ms=0.5,
    max_memory_bytes=4 * 2**30,  # the most linear memory a wasm32 module can address
    native=("kgen.native.wasm_runner", "wasmtime"),
    # timings on these VMs show bursts up to 3.5x slower for about half a second (docs/browser.md): more and
    # longer samples keep the median out of them
    timing=(15, 5.0),
    fingerprint_entry="wasm",
)
