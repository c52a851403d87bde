"""Run a compiled WebAssembly program through wasmtime: the same modules and memory plan the browser gets,
for fast tests outside the browser. ``Math`` imports are Python's ``math`` (both are IEEE double).

A threaded program runs each thread's share of every launch in turn, so the split of tiles between threads is
exercised, if not their concurrency (the browser tests run real workers). wasmtime-py 50 cannot link a shared
memory (its ``SharedMemory`` fails to convert to an extern), so a threaded program's modules get their memory
import's limits flag flipped from shared to unshared (`unshared`); nothing else in them differs.
"""

from __future__ import annotations

import base64
import ctypes
import math
from collections.abc import Sequence

import numpy as np
import wasmtime

from kgen.codegen.program import CompiledKernel, CompiledProgram
from kgen.errors import KgenError

PAGE = 65536
_MATH = {"exp": math.exp, "log": math.log, "tanh": math.tanh, "pow": math.pow}


def _engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.wasm_simd = True
    config.wasm_relaxed_simd = True
    return wasmtime.Engine(config)


def share(thread: int, threads: int, tiles: int) -> tuple[int, int]:
    """The tiles one thread runs (as the browser launcher splits them)."""
    return thread * tiles // threads, (thread + 1) * tiles // threads


def _leb(data: bytes, at: int) -> tuple[int, int]:
    """An unsigned LEB128 at ``at``: (value, the offset after it)."""
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return value, at


def unshared(binary: bytes) -> bytes:
    """The module with its imported memory unshared: the import's limits flag 0x03 (shared, with a maximum) made
    0x01, the same length, so no size in the module changes."""
    out = bytearray(binary)
    at = 8  # magic and version
    while at < len(out):
        section, at = out[at], at + 1
        size, at = _leb(out, at)
        if section == 2:  # imports: (module, field, kind, description)*
            count, cursor = _leb(out, at)
            for _ in range(count):
                for _name in range(2):
                    length, cursor = _leb(out, cursor)
                    cursor += length
                kind, cursor = out[cursor], cursor + 1
                if kind == 0x02:  # memory: limits flag, then min (and max)
                    if out[cursor] == 0x03:
                        out[cursor] = 0x01
                    return bytes(out)
                if kind == 0x00:  # function: a type index
                    _, cursor = _leb(out, cursor)
                elif kind == 0x01:  # table: a reference type, then limits
                    flag, cursor = out[cursor + 1], cursor + 2
                    for _bound in range(1 + (flag & 1)):
                        _, cursor = _leb(out, cursor)
                else:  # global: a value type and mutability
                    cursor += 2
        at += size
    return bytes(out)


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
    if program.memory_bytes is None or any(k.binary is None for k in program.kernels):
        raise KgenError(f"wasm runner: a {program.backend} program is not a WebAssembly program")
    out = program.output
    assert out.offset is not None
    kernels = [(k.binary or "", k.grid[0]) for k in program.kernels]
    writes = input_writes(program, inputs)
    (result,) = execute(program.memory_bytes, program.threads or 1, kernels, writes, [(out.offset, out.size)])
    return result


def run_model(program: dict, kernels: Sequence[CompiledKernel], writes: dict[str, np.ndarray], outputs) -> list:
    """A converted model's program (its descriptor entry ``program``) run once: ``writes`` by buffer name,
    ``outputs`` (buffer name, values) read back."""
    offsets = {b["name"]: b["offset"] for b in program["buffers"]}
    threads = program.get("threads", 1)
    launches = [
        (k.binary or "", k.grid[0], j.get("threads", threads)) for k, j in zip(kernels, program["kernels"], strict=True)
    ]
    placed = [(offsets[name], data) for name, data in writes.items()]
    return execute(program["memory_bytes"], threads, launches, placed, [(offsets[b], n) for b, n in outputs])


def input_writes(program: CompiledProgram, inputs: Sequence[np.ndarray]) -> list[tuple[int, np.ndarray]]:
    """(byte offset, float32 values) of each of ``program``'s input buffers, fed from ``inputs`` in order."""
    feeds = iter(inputs)
    writes = []
    for info in program.buffers:
        if info.role == "input":
            feed = np.ascontiguousarray(next(feeds), dtype=np.float32).ravel()
            if feed.size != info.size:
                raise KgenError(f"input {info.name} needs {info.size} values, got {feed.size}")
            assert info.offset is not None
            writes.append((info.offset, feed))
    return writes


def execute(
    memory_bytes: int,
    threads: int,
    kernels: Sequence[tuple[str, int] | tuple[str, int, int]],
    writes: Sequence[tuple[int, np.ndarray]],
    reads: Sequence[tuple[int, int]],
) -> list[np.ndarray]:
    """Write float32 arrays at byte offsets of a fresh memory, run each kernel (base64 binary, tiles) over
    all its tiles, thread share by thread share (a kernel's own thread count, where it has one, else
    ``threads``), and read (offset, size) windows back."""
    engine = _engine()
    store = wasmtime.Store(engine)
    pages = memory_bytes // PAGE
    # a threaded program's modules import a memory of a fixed size (a shared memory needs a maximum)
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(pages, pages if threads > 1 else None)))
    view = (ctypes.c_ubyte * memory_bytes).from_address(ctypes.addressof(memory.data_ptr(store).contents))
    memory_view = np.frombuffer(view, dtype=np.uint8)
    linker = wasmtime.Linker(engine)
    linker.define(store, "env", "memory", memory)
    f64 = wasmtime.ValType.f64()
    for name, fn in _MATH.items():
        params = [f64, f64] if name == "pow" else [f64]
        linker.define_func("math", name, wasmtime.FuncType(params, [f64]), _ieee(fn))
    for offset, array in writes:
        data = np.ascontiguousarray(array, dtype=np.float32).ravel()
        memory_view[offset : offset + 4 * data.size] = data.view(np.uint8)
    for binary, tiles, *own in kernels:
        split = own[0] if own else threads
        module_bytes = base64.b64decode(binary)
        module = wasmtime.Module(engine, unshared(module_bytes) if threads > 1 else module_bytes)
        run_tiles = linker.instantiate(store, module).exports(store)["run"]
        for thread in range(split):
            run_tiles(store, *share(thread, split, tiles))
    return [memory_view[o : o + 4 * n].view(np.float32).copy() for o, n in reads]
