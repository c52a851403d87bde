"""Scheduling templates, one per op family × backend group; each declares a space and lowers any config."""

from kgen.errors import KgenError
from kgen.scheduling.lower import Template
from kgen.scheduling.templates.cpu_tile import CpuTile
from kgen.scheduling.templates.gpu_tile import GpuTile
from kgen.scheduling.templates.texel import TexelTile

_BY_BACKEND: dict[str, Template] = {
    "webgpu": GpuTile(),
    "webgl": TexelTile(),
    "wasm": CpuTile(simd=True),
    "js": CpuTile(simd=False),
}
BACKENDS = tuple(_BY_BACKEND)


def template_for(backend: str) -> Template:
    if backend not in _BY_BACKEND:
        raise KgenError(f"unknown backend '{backend}' (backends: {', '.join(BACKENDS)})")
    return _BY_BACKEND[backend]
