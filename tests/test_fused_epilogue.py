"""A convolution with bias, activation and residual add in one TE graph becomes one kernel (a fused epilogue),
and that kernel matches numpy under default, tiled and shared-memory configs."""

import numpy as np
import pytest

from kgen import backends, te
from kgen.checking import compare
from kgen.codegen.wgsl.renderer import render
from kgen.native import wgpu_runner
from kgen.ops import get_op
from kgen.scheduling.lower import lower
from kgen.scheduling.partition import partition


def conv_bias_relu_residual():
    x = te.placeholder((1, 8, 9, 9), name="x")
    w = te.placeholder((16, 8, 3, 3), name="w")
    b = te.placeholder((16,), name="b")
    skip = te.placeholder((1, 16, 9, 9), name="skip")
    conv = get_op("conv2d").builder([x, w, b], get_op("conv2d").normalize_attrs({"pads": (1, 1, 1, 1)}))
    act = te.compute(conv.shape, lambda *i: te.maximum(conv[i], 0.0), name="relu")
    out = te.compute(conv.shape, lambda *i: act[i] + skip[i], name="residual")
    return [x, w, b, skip], out


def test_bias_activation_and_residual_fuse_into_the_convolution():
    _, out = conv_bias_relu_residual()
    stages = partition(out)
    assert len(stages) == 1
    assert stages[0].reduce is not None and stages[0].out is out


@pytest.mark.parametrize(
    "config",
    [
        None,
        {"tile_axis": "m", "tile_a": 4, "tile_b": 4, "unroll": 2, "vec4": 1},
        {"tile_axis": "m", "tile_a": 2, "tile_b": 2, "group_b": 8, "smem": 1, "unroll": 2},
    ],
)
def test_fused_kernel_matches_numpy(config):
    inputs, out = conv_bias_relu_residual()
    program, _ = lower(inputs, out, backends.get("webgpu").template, config, "conv_block")
    compiled = render(program)
    assert len(compiled.kernels) == 1
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(t.shape).astype(np.float32) for t in inputs]
    conv = get_op("conv2d").reference(arrays[:3], {"pads": (1, 1, 1, 1)})
    want = np.maximum(conv, 0.0) + arrays[3]
    got = wgpu_runner.run(compiled, arrays).reshape(want.shape)
    assert compare(got, want, "webgpu").ok


def registry_conv_add_relu(batch):
    """conv + bias, then the registry's broadcasting add of the residual, then relu: ResNet's block end as the
    model converter builds it. At batch 1 the add reads the size-1 batch axis at 0, not at its variable."""
    x = te.placeholder((batch, 8, 6, 6), name="in0")
    w = te.placeholder((16, 8, 1, 1), name="in1", constant=True)
    b = te.placeholder((16,), name="in2", constant=True)
    skip = te.placeholder((batch, 16, 6, 6), name="in3")
    conv = get_op("conv2d").builder([x, w, b], get_op("conv2d").normalize_attrs({"pads": (0, 0, 0, 0)}))
    out = get_op("relu").builder([get_op("add").builder([conv, skip], {})], {})
    return [x, w, b, skip], out


@pytest.mark.parametrize("batch", [1, 2])
def test_a_residual_add_at_batch_one_fuses_and_matches_numpy_on_wasm(batch):
    from kgen.codegen.wasm.renderer import render as render_wasm
    from kgen.native import wasm_runner

    inputs, out = registry_conv_add_relu(batch)
    assert len(partition(out)) == 1  # was two kernels at batch 1: the conv, then a pass for add + relu
    config = {"tile_axis": "m", "tile_a": 4, "tile_b": 8, "merge_hw": 1, "vector": "f32x4"}
    program, _ = lower(inputs, out, backends.get("wasm").template, config, "block")
    compiled = render_wasm(program)
    assert len(compiled.kernels) == 1
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(t.shape).astype(np.float32) for t in inputs]
    want = np.maximum(get_op("conv2d").reference(arrays[:3], {"pads": (0, 0, 0, 0)}) + arrays[3], 0.0)
    got = wasm_runner.run(compiled, arrays).reshape(want.shape)
    assert compare(got, want, "wasm").ok
