"""Attention as one kernel: the fused template where a backend has one, the chain of kernels elsewhere (the
probabilities stored, not recomputed for every column of V)."""

import numpy as np
import pytest

from kgen import backends
from kgen.build import build
from kgen.checking import compare
from kgen.native import wasm_runner, wgpu_runner
from kgen.ops import Workload
from kgen.scheduling.lower import lower_workload

# 2 heads of 7 queries and 11 keys: no block of keys nor tile of rows divides them
SHAPES = [(2, 7, 5), (2, 5, 11), (2, 11, 8), (7, 11)]


@pytest.mark.parametrize(("backend", "kernels"), [("wasm", 1), ("js", 5), ("webgpu", 1), ("webgl", 5)])
def test_attention_is_one_kernel_where_the_backend_has_the_fused_template(backend, kernels):
    program, _ = lower_workload(Workload.create("attention", SHAPES, {"scale": 0.5}), backends.get(backend).template)
    assert len(program.kernels) == kernels


@pytest.mark.parametrize(("backend", "run"), [("wasm", wasm_runner.run), ("webgpu", wgpu_runner.run)])
def test_a_row_whose_every_key_is_masked_weighs_them_all_equally(backend, run):
    """As onnxruntime does: a mask of the lowest float32 on every key of a row leaves equal scores there."""
    workload = Workload.create("attention", SHAPES, {"scale": 0.5})
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(0))
    arrays[3][2] = -3.4028234663852886e38
    want = workload.opdef.reference(arrays, workload.attr_dict)
    program, _ = build(workload, backend, {"rows": 3, "keys": 4})
    got = run(program, arrays).reshape(want.shape)
    assert compare(got, want, backend).ok
    np.testing.assert_allclose(got[:, 2], arrays[2].mean(axis=1), rtol=1e-4, atol=1e-5)
