"""Every op's WebGPU kernels, run through wgpu-py on SwiftShader, match numpy: default configs and configs with
every knob drawn."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgen.build import build, space
from kgen.checking import compare
from kgen.errors import KgenError
from kgen.native import wgpu_runner
from kgen.ops import Workload
from kgen.scheduling.space import DEFAULT_LIMITS
from tests.strategies import CASES, LIGHT_OPS, OTHER_OPS, configs

SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.filter_too_much, HealthCheck.too_slow]}


@pytest.mark.parametrize("op", OTHER_OPS)
@settings(max_examples=10, **SETTINGS)
@given(data=st.data())
def test_webgpu_kernel_matches_reference(op, data):
    check_drawn(op, data)


@pytest.mark.parametrize("op", LIGHT_OPS)
@settings(max_examples=5, **SETTINGS)
@given(data=st.data())
def test_webgpu_light_kernel_matches_reference(op, data):
    check_drawn(op, data)


def check_drawn(op, data):
    shapes, attrs = data.draw(CASES[op], label="case")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    workload = Workload.create(op, shapes, attrs)
    config = data.draw(st.none() | configs(space(workload, "webgpu"), DEFAULT_LIMITS), label="config")
    program, full = build(workload, "webgpu", config)
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(seed))
    want = workload.opdef.reference(arrays, workload.attr_dict)
    got = wgpu_runner.run(program, arrays).reshape(want.shape)
    result = compare(got, want, "webgpu")
    assert result.ok, f"{workload.key} {full}: {result}"


STAGED = [
    # ragged sizes: workgroup blocks overhang both tiled axes
    ("matmul", [(33, 20), (20, 37)], {}, {"tile_a": 2, "tile_b": 4, "group_b": 8, "smem": 1, "k_unroll": 4}),
    (
        "matmul",
        [(64, 64), (64, 64)],
        {},
        {"tile_a": 4, "tile_b": 4, "group_b": 16, "smem": 1, "k_unroll": 8, "vec4": 1},
    ),
    ("gemm", [(20, 9), (20, 16), (16,)], {"transA": 1}, {"tile_a": 2, "tile_b": 2, "group_b": 8, "smem": 1}),
    (
        "conv2d",
        [(1, 4, 9, 9), (8, 4, 3, 3), (8,)],
        {"pads": (1, 1, 1, 1)},
        {"tile_axis": "m", "tile_a": 2, "tile_b": 2, "group_b": 8, "smem": 1, "unroll": 2},
    ),
    (
        "conv2d",
        [(1, 8, 7, 7), (16, 8, 1, 1)],
        {},
        {"tile_axis": "m", "merge_hw": 1, "tile_a": 4, "tile_b": 4, "group_b": 8, "smem": 1, "k_unroll": 4, "vec4": 1},
    ),
    ("conv2d", [(1, 8, 7, 7), (16, 8, 3, 3)], {"pads": (1, 1, 1, 1)}, {"tile_axis": "m", "tile_a": 2, "group_b": 16}),
]


@pytest.mark.parametrize(("op", "shapes", "attrs", "config"), STAGED, ids=[f"{c[0]}-{k}" for k, c in enumerate(STAGED)])
def test_workgroup_tile_and_shared_memory(op, shapes, attrs, config):
    workload = Workload.create(op, shapes, attrs)
    program, _ = build(workload, "webgpu", config)
    if config.get("smem"):
        assert "var<workgroup>" in program.source and "workgroupBarrier();" in program.source
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(1))
    want = workload.opdef.reference(arrays, workload.attr_dict)
    result = compare(wgpu_runner.run(program, arrays).reshape(want.shape), want, "webgpu")
    assert result.ok, f"{workload.key} {config}: {result}"


def test_build_checks_configs_against_the_device_limits():
    """A config whose shared tiles fit a 32 KiB device but not WebGPU's 16 KiB minimum builds only with the
    device's limits (the tuner passes them: it checks proposals against the browser's own)."""
    workload = Workload.create("conv2d", [(1, 32, 28, 28), (32, 32, 3, 3)], {"pads": (1, 1, 1, 1)})
    config = {"wg": 64, "tile_b": 8, "group_b": 32, "smem": 1, "merge_hw": 1, "unroll": 2, "k_unroll": 2}
    with pytest.raises(KgenError, match="workgroup storage"):
        build(workload, "webgpu", config)
    limits = {**DEFAULT_LIMITS, "max_workgroup_storage_bytes": 32768}
    program, full = build(workload, "webgpu", config, limits)
    assert full["smem"] == 1 and "var<workgroup>" in program.source


@pytest.mark.parametrize("op", ["tanh", "sigmoid", "gelu"])
def test_activations_of_large_inputs_are_not_nan(op):
    """SwiftShader computes tanh as (e^2x - 1) / (e^2x + 1): NaN past |x| = 44 unless the kernel clamps it (a
    captcha reader's LSTM, on a real image, read nothing)."""
    x = np.array([-1e4, -300.0, -89.0, -45.0, -10.0, -1.0, 0.0, 1.0, 10.0, 45.0, 89.0, 300.0, 1e4], np.float32)
    attrs = {"approximate": "tanh"} if op == "gelu" else {}
    workload = Workload.create(op, [x.shape], attrs)
    program, _ = build(workload, "webgpu", None)
    want = workload.opdef.reference([x], workload.attr_dict)
    got = wgpu_runner.run(program, [x]).reshape(want.shape)
    assert compare(got, want, "webgpu").ok, f"{op}: {got} against {want}"
