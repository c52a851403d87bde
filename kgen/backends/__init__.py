"""The backends, each defined in one module of this package: its template, renderer, tolerance, where its
buffers live in a model, its device class, its runner outside the browser and how the browser times it.

Code that differs by backend asks its ``Backend`` here instead of matching the backend's name. Adding one (WebNN,
a native target to compare against) is a new module here, listed in ``NAMES``, and its launcher in the JS
runtime (``kgen/runtime/launchers``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kgen.errors import KgenError

if TYPE_CHECKING:  # for the annotations alone: the CLI reads NAMES without loading the scheduling layer
    from kgen.codegen.program import CompiledProgram, RenderOptions
    from kgen.scheduling import ir
    from kgen.scheduling.lower import Template

Fingerprint = Mapping[str, Any]


@dataclass(frozen=True)
class Backend:
    """One backend. ``storage`` is where a model's tensors live: ``linear`` (one WebAssembly memory, planned
    offsets), ``heap`` (one JS ArrayBuffer, planned offsets), ``buffers`` (a GPU buffer each, pooled) or
    ``textures`` (WebGL textures with layouts)."""

    name: str
    template: Template
    #: the renderer's ``render(program, options)``
    render: Callable[[ir.Program, RenderOptions], CompiledProgram]
    #: (rtol, atol) of a float32 kernel against its float64 numpy reference (``kgen.checking.compare``)
    tolerance: tuple[float, float]
    storage: str
    #: the parts of a record's device class (``kgen.records.store.device_class``) from a browser's fingerprint
    device_parts: Callable[[Fingerprint], list[str]]
    #: runs on a GPU adapter, which may be a software rasterizer (SwiftShader): its figures are labelled so
    gpu: bool = False
    #: launches a program's prepare kernels (weight packing) once per set of weights
    prepare: bool = False
    #: threads and relaxed SIMD: a model gets a variant per thread count, each also without relaxed SIMD
    threads: bool = False
    #: threads: how long a worker spins after a launch before it sleeps (``SPIN_MS`` in the runtime's worker); a
    #: node run on one thread for longer lets them sleep, and the next node pays their wake-up
    worker_spin_ms: float = 0.0
    #: the most bytes of memory a program may plan (wasm32's 4 GiB), or None
    max_memory_bytes: int | None = None
    #: (module, tool) of the runner outside the browser (``run(program, arrays)`` for a kernel, ``run_model`` for a
    #: converted model's program), or None
    native: tuple[str, str] | None = None
    #: (samples, minimum ms per sample) when the browser times a kernel
    timing: tuple[int, float] = (7, 1.0)
    #: the harness fingerprint's entry that says whether a browser has this backend's launcher (None: always)
    fingerprint_entry: str | None = None

    def available(self, fingerprint: Fingerprint) -> bool:
        """Whether the browser of a harness fingerprint can run this backend's kernels."""
        if self.fingerprint_entry is None:
            return True
        entry = fingerprint.get(self.fingerprint_entry) or {}
        return bool(entry.get("available")) and entry.get("launcher", True) is not False

    def native_runner(self) -> Any:
        """The module that runs this backend's programs outside the browser."""
        if self.native is None:
            raise KgenError(f"backend {self.name} has no native runner (native: {', '.join(native_names())})")
        return importlib.import_module(self.native[0])


def cpu_parts(name: str, threaded: bool = False) -> Callable[[Fingerprint], list[str]]:
    """A CPU backend's device class: the backend and the cores of the machine, or with ``threaded`` the threads
    the page may run (a page without cross-origin isolation runs one, whatever the cores: its own class)."""

    def parts(fingerprint: Fingerprint) -> list[str]:
        cores = fingerprint.get("hardwareConcurrency", 0)
        return [name, f"{(fingerprint.get(name) or {}).get('maxThreads', cores) if threaded else cores}threads"]

    return parts


#: every backend: each is the module of that name here, whose ``BACKEND`` it is
NAMES = ("webgpu", "webgl", "wasm", "js")


def get(name: str) -> Backend:
    if name not in NAMES:
        raise KgenError(f"unknown backend '{name}' (backends: {', '.join(NAMES)})")
    return importlib.import_module(f"kgen.backends.{name}").BACKEND


def native_names() -> tuple[str, ...]:
    return tuple(name for name in NAMES if get(name).native is not None)
