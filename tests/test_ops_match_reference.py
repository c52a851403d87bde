"""For every op: the TE interpreter equals the hand-written numpy reference over hypothesis-drawn cases."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgen import te
from kgen.checking import compare
from kgen.ops import Workload, all_ops
from tests.strategies import CASES


def test_every_op_has_a_strategy():
    assert sorted(CASES) == sorted(op.name for op in all_ops())


@pytest.mark.parametrize("op", sorted(CASES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_te_matches_reference(op, data):
    shapes, attrs = data.draw(CASES[op], label="case")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    workload = Workload.create(op, shapes, attrs)
    inputs, output = workload.build()
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(seed))
    got = te.evaluate(output, dict(zip(inputs, arrays, strict=True)))
    want = workload.opdef.reference(arrays, workload.attr_dict)
    result = compare(got, want, "te")
    assert result.ok, f"{workload.key}: {result}"
