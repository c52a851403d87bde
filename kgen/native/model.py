"""Run a converted model folder outside the browser, through its backend's native runner (wasm through
wasmtime, WGSL through wgpu-py): the same kernels and memory plan the page's runtime launches; for fast tests and
``kgen run --native``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from kgen import backends
from kgen.codegen.program import Binding, CompiledKernel
from kgen.descriptor.schema import read_backend, read_model, read_weights
from kgen.errors import KgenError


def _kernel(k: dict) -> CompiledKernel:
    bindings = tuple(Binding(**b) for b in k["bindings"])
    source = k.get("source", "")  # a wasm kernel ships its binary alone
    return CompiledKernel(k["name"], source, tuple(k["workgroup"]), tuple(k["grid"]), bindings, k.get("binary"))


def run(folder: Path | str, backend: str, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs by name, for ``feeds`` by input name."""
    runner = backends.get(backend).native_runner()
    model = read_model(folder)
    weights = read_weights(folder, model)
    prog = read_backend(folder, model, backend)
    writes: dict[str, np.ndarray] = {w["buffer"]: weights[w["tensor"]] for w in prog["weights"]}
    for i in prog["inputs"]:
        if i["name"] not in feeds:
            raise KgenError(f"input '{i['name']}' is not given")
        data = np.asarray(feeds[i["name"]], np.float32)
        if data.size != np.prod(i["shape"]):
            raise KgenError(f"input '{i['name']}' needs shape {i['shape']}, got {list(data.shape)}")
        writes[i["buffer"]] = data
    kernels = [_kernel(k) for k in prog["program"]["kernels"]]
    outputs = [(o["buffer"], int(np.prod(o["shape"]))) for o in prog["outputs"]]
    results = runner.run_model(prog["program"], kernels, writes, outputs)
    return {o["name"]: r.reshape(o["shape"]) for o, r in zip(prog["outputs"], results, strict=True)}
