"""Renderers: the loop-nest IR printed as WGSL (WebGPU); GLSL and WebAssembly come next."""
