"""Every op's WebGPU kernels, run through wgpu-py on SwiftShader, match numpy: default and sampled configs."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgen.checking import compare
from kgen.native import wgpu_runner
from kgen.ops import Workload
from kgen.scheduling.build import build, space
from tests.strategies import CASES


@pytest.mark.parametrize("op", sorted(CASES))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_webgpu_kernel_matches_reference(op, data):
    shapes, attrs = data.draw(CASES[op], label="case")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    workload = Workload.create(op, shapes, attrs)
    sampled = space(workload, "webgpu").sample(1, seed=seed)
    config = data.draw(st.sampled_from([None, *sampled]), label="config")
    program, full = build(workload, "webgpu", config)
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(seed))
    want = workload.opdef.reference(arrays, workload.attr_dict)
    got = wgpu_runner.run(program, arrays).reshape(want.shape)
    result = compare(got, want, "webgpu")
    assert result.ok, f"{workload.key} {full}: {result}"
