"""Every knob of every op's template space, drawn by hypothesis together with the shapes and attributes, in
headless Chromium on WebGL2 and plain JS (WebGPU and wasm draw them through their native runners:
test_webgpu_native.py, test_wasm_native.py), against numpy; and infinities in the inputs of the ops that must
carry them (max and min pools and reductions, clip, relu, softmax), in every WebGL layout.

A long sweep of the same: `KGEN_CONFIG_EXAMPLES=200 pytest tests/test_configs_browser.py`."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgen.browser.measure import Harness
from kgen.ops import Workload
from kgen.scheduling.build import build, space
from tests.strategies import CASES, configs, with_infinities

pytestmark = pytest.mark.browser

EXAMPLES = int(os.environ.get("KGEN_CONFIG_EXAMPLES", "12"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
INFINITE = {  # ops whose output must keep the infinities of their input (numpy's semantics)
    "max_pool2d": CASES["max_pool2d"],
    "reduce_max": CASES["reduce_max"],
    "clip": CASES["clip"],
    "relu": CASES["relu"],
    "max": CASES["max"],
    "min": CASES["min"],
    "softmax": CASES["softmax"],
}


def check(browser, backend, workload, config, arrays):
    want = workload.opdef.reference(arrays, workload.attr_dict)
    program, full = build(workload, backend, config, browser.limits())
    result = Harness(browser, arrays, want, backend).measure(program, time_it=False)
    assert result.ok, f"{workload.key} on {backend} {full}: {result.status} {result.reason}"


@pytest.mark.parametrize("backend", ["webgl", "js"])
@pytest.mark.parametrize("op", sorted(CASES))
@SETTINGS
@given(data=st.data())
def test_every_knob_drawn_matches_numpy(browser, op, backend, data):
    shapes, attrs = data.draw(CASES[op], label="case")
    workload = Workload.create(op, shapes, attrs)
    config = data.draw(configs(space(workload, backend), browser.limits()), label="config")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(seed))
    check(browser, backend, workload, config, arrays)


@pytest.mark.parametrize("backend", ["webgl", "js"])
@pytest.mark.parametrize("op", sorted(INFINITE))
@SETTINGS
@given(data=st.data())
def test_infinities_in_the_input_come_out_as_numpys(browser, op, backend, data):
    shapes, attrs = data.draw(INFINITE[op], label="case")
    workload = Workload.create(op, shapes, attrs)
    config = data.draw(configs(space(workload, backend), browser.limits()), label="config")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    arrays = with_infinities(workload.opdef.random_inputs(workload.shapes, rng), rng)
    if op == "softmax":  # +inf makes numpy's softmax NaN; -inf is an exact 0 (a masked logit)
        arrays[0] = np.where(arrays[0] == np.inf, -np.inf, arrays[0])
        axis = attrs.get("axis", -1)
        np.put_along_axis(arrays[0], np.zeros_like(arrays[0].take([0], axis=axis), dtype=np.int64), 0.5, axis=axis)
    check(browser, backend, workload, config, arrays)
