"""Attention as one kernel: the fused template where a backend has one, the chain of kernels elsewhere (the
probabilities stored, not recomputed for every column of V)."""

import numpy as np
import pytest

from kgen import backends
from kgen.build import build
from kgen.checking import compare
from kgen.errors import KgenError
from kgen.native import wasm_runner, wgpu_runner
from kgen.ops import Workload
from kgen.scheduling.lower import lower_workload
from kgen.scheduling.space import DEFAULT_LIMITS

# 2 heads of 7 queries and 11 keys: no block of keys nor tile of rows divides them
SHAPES = [(2, 7, 5), (2, 5, 11), (2, 11, 8), (7, 11)]


@pytest.mark.parametrize(("backend", "kernels"), [("wasm", 1), ("js", 1), ("webgpu", 1), ("webgl", 5)])
def test_attention_is_one_kernel_where_the_backend_has_the_fused_template(backend, kernels):
    program, _ = lower_workload(Workload.create("attention", SHAPES, {"scale": 0.5}), backends.get(backend).template)
    assert len(program.kernels) == kernels


def test_webgl_fuses_attention_where_the_rows_of_q_and_v_are_whole_texels():
    """A fragment writes 2 of the 4 texels of a row of V's columns, one per render target (D = 5 above: the chain
    of kernels)."""
    shapes = [(2, 7, 8), (2, 8, 11), (2, 11, 16), (7, 11)]
    limits = {**DEFAULT_LIMITS, "max_draw_buffers": 8}
    program, full = build(Workload.create("attention", shapes, {"scale": 0.5}), "webgl", {"planes": 2}, limits)
    assert full == {"planes": 2, "keys": 8} and len(program.kernels) == 1
    assert program.output.layout["planes"] == [2, 2] and "layout(location = 1) out vec4" in program.kernels[0].source
    with pytest.raises(KgenError, match="planes do not divide"):
        build(Workload.create("attention", shapes, {"scale": 0.5}), "webgl", {"planes": 8}, limits)


@pytest.mark.parametrize(
    ("backend", "run", "softmax"),
    [("wasm", wasm_runner.run, {}), ("wasm", wasm_runner.run, {"softmax": "tile"}), ("webgpu", wgpu_runner.run, {})],
)
def test_a_row_whose_every_key_is_masked_weighs_them_all_equally_or_is_zero_where_the_mask_is_infinite(
    backend, run, softmax
):
    """As onnxruntime does: a mask of the lowest float32 on every key of a row leaves equal scores there (and
    with ``softmax="tile"``, the scratch's lanes past the 11th key count for nothing). A row masked with -inf
    everywhere gives zeros, as torch's exporter guards it (NaN in a bare chain)."""
    workload = Workload.create("attention", SHAPES, {"scale": 0.5})
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(0))
    arrays[3][2] = -3.4028234663852886e38
    arrays[3][4] = -np.inf
    want = workload.opdef.reference(arrays, workload.attr_dict)
    program, _ = build(workload, backend, {"rows": 3, "keys": 4, **softmax})
    got = run(program, arrays).reshape(want.shape)
    assert compare(got, want, backend).ok
    np.testing.assert_allclose(got[:, 2], arrays[2].mean(axis=1), rtol=1e-4, atol=1e-5)
    assert np.all(got[:, 4] == 0) and np.all(want[:, 4] == 0)


@pytest.mark.parametrize(
    "config",
    [
        {"softmax": "tile", "rows": 3, "keys": 8, "cols": 1},
        {"softmax": "tile", "rows": 2, "keys": 4, "cols": 2, "split": 1, "vector": "f32x4_fma"},
        {"softmax": "tile", "rows": 1, "keys": 4, "cols": 1, "split": 2},
    ],
)
def test_the_tile_softmax_keeps_its_scores_in_a_scratch_slot_per_tile_and_matches_the_reference(config):
    """Keys in whole blocks, a vector past them and a tail of single keys (11 = 8 + 3); rows that overhang."""
    workload = Workload.create("attention", SHAPES, {"scale": 0.5})
    program, full = build(workload, "wasm", config)
    (scratch,) = [b for b in program.buffers if b.role == "temp"]
    tiles = 2 * -(-7 // full["rows"]) * full["split"]
    assert scratch.size == tiles * full["rows"] * 12  # rows of 11 scores, whole vectors long
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(1))
    want = workload.opdef.reference(arrays, workload.attr_dict)
    assert compare(wasm_runner.run(program, arrays).reshape(want.shape), want, "wasm").ok
