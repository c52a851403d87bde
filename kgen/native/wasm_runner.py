"""Run a compiled WebAssembly program through wasmtime: the same modules and memory plan the browser gets,
for fast tests outside the browser. ``Math`` imports are Python's ``math`` (both are IEEE double)."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

import numpy as np
import wasmtime

from kgen.codegen.program import CompiledProgram
from kgen.errors import KgenError

PAGE = 65536
_MATH = {"exp": math.exp, "log": math.log, "tanh": math.tanh, "pow": math.pow}


def _engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.wasm_simd = True
    config.wasm_relaxed_simd = True
    return wasmtime.Engine(config)


def _ieee(fn):
    """``fn`` with IEEE results where Python raises (log(0) = -inf, exp overflow = inf, log(-1) = nan)."""

    def call(*args: float) -> float:
        try:
            return fn(*args)
        except OverflowError:
            return math.inf
        except ValueError:
            return -math.inf if args[0] == 0 else math.nan

    return call


def run(program: CompiledProgram, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Run every kernel of ``program`` once, single-threaded, on ``inputs``; the output buffer's values."""
    if program.backend != "wasm" or program.memory_bytes is None:
        raise KgenError(f"wasm runner: a {program.backend} program is not a WebAssembly program")
    engine = _engine()
    store = wasmtime.Store(engine)
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(program.memory_bytes // PAGE, None)))
    linker = wasmtime.Linker(engine)
    linker.define(store, "env", "memory", memory)
    f64 = wasmtime.ValType.f64()
    for name, fn in _MATH.items():
        params = [f64, f64] if name == "pow" else [f64]
        linker.define_func("math", name, wasmtime.FuncType(params, [f64]), _ieee(fn))
    feeds = iter(inputs)
    for info in program.buffers:
        if info.role == "input":
            data = np.ascontiguousarray(next(feeds), dtype=np.float32).ravel()
            if data.size != info.size:
                raise KgenError(f"input {info.name} needs {info.size} values, got {data.size}")
            memory.write(store, data.tobytes(), info.offset)
    for kernel in program.kernels:
        module = wasmtime.Module(engine, base64.b64decode(kernel.binary or ""))
        instance = linker.instantiate(store, module)
        instance.exports(store)["run"](store, 0, kernel.grid[0])
    out = program.output
    assert out.offset is not None
    data = memory.read(store, out.offset, out.offset + 4 * out.size)
    return np.frombuffer(bytes(data), dtype=np.float32).copy()
