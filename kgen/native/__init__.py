"""Running generated kernels outside the browser (wgpu-py), for fast tests."""
