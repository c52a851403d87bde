"""What a renderer hands to a launcher: kernel texts plus launch info, as plain JSON-able data.

The same structure travels to the browser harness, to the native runners and, later, into model descriptors,
so a kernel is launched the same way wherever it runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class BufferInfo:
    """A program buffer. One that lives in a texture (WebGL) has its ``layout`` (``Layout.to_json``: logical
    shape, packing, channels) and ``texture`` (width, height in texels); ``size`` is then its storage size.
    One in WebAssembly linear memory has its byte ``offset`` there."""

    name: str
    dtype: str
    size: int  # elements
    role: str  # "input" | "temp" | "output"
    layout: dict[str, Any] | None = None
    texture: tuple[int, int] | None = None
    offset: int | None = None


@dataclass(frozen=True)
class Binding:
    binding: int
    buffer: str
    view: str  # "scalar" | "vec4"
    access: str  # "read" | "read_write"


@dataclass(frozen=True)
class CompiledKernel:
    """A kernel's text and launch info; a WebAssembly kernel also carries its assembled module (base64)."""

    name: str
    source: str
    workgroup: tuple[int, int, int]
    grid: tuple[int, int, int]
    bindings: tuple[Binding, ...]
    binary: str | None = None


@dataclass(frozen=True)
class RenderOptions:
    """What a renderer takes beside the program (every renderer has ``render(program, options)``): ``threads``
    that split every launch (WebAssembly: more than 1 makes the memory shared), and ``placement`` (the byte offset
    of every buffer, the memory's size) to place the buffers in a memory planned elsewhere, a model's (WebAssembly
    and JavaScript)."""

    threads: int = 1
    placement: tuple[dict[str, int], int] | None = None


ONE_THREAD = RenderOptions()


@dataclass(frozen=True)
class CompiledProgram:
    backend: str
    buffers: tuple[BufferInfo, ...]
    kernels: tuple[CompiledKernel, ...]
    memory_bytes: int | None = None  # WebAssembly: the linear memory every kernel imports
    threads: int | None = None  # WebAssembly: threads that split every launch (more than 1: shared memory)
    #: kernels[:prepare] run once per set of inputs (they pack weights) and are not timed; the rest every run
    prepare: int | None = None

    @property
    def inputs(self) -> tuple[BufferInfo, ...]:
        return tuple(b for b in self.buffers if b.role == "input")

    @property
    def output(self) -> BufferInfo:
        return next(b for b in self.buffers if b.role == "output")

    def to_json(self) -> dict[str, Any]:
        """As plain data; a field that only some backends use appears only where it is set (so a WebGPU
        program's JSON, and its digest, are what they were before other backends existed)."""
        return _drop_unset(asdict(self))

    @property
    def digest(self) -> str:
        """Hash of every kernel text and its launch info: the key of compile caches and of measurements."""
        text = json.dumps(self.to_json(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def source(self) -> str:
        """All kernel texts, as ``kgen show`` prints them."""
        return "\n".join(k.source for k in self.kernels)


def _drop_unset(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _drop_unset(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_drop_unset(v) for v in data]
    return data
