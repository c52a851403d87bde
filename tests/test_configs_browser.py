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
from kgen.build import build, space
from kgen.ops import Workload
from tests.strategies import CASES, LIGHT_OPS, OTHER_OPS, configs, with_infinities

pytestmark = pytest.mark.browser

EXAMPLES = int(os.environ.get("KGEN_CONFIG_EXAMPLES", "6"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# ops whose output must keep the infinities of their input (numpy's semantics)
INFINITE = ("max_pool2d", "reduce_max", "reduce_min", "clip", "relu", "max", "min", "softmax")


def drawn(data, browser, op, backend):
    """A workload of ``op`` with shapes and attributes drawn, a config of every knob drawn, and a seeded rng."""
    shapes, attrs = data.draw(CASES[op], label="case")
    workload = Workload.create(op, shapes, attrs)
    config = data.draw(configs(space(workload, backend), browser.limits()), label="config")
    return workload, config, np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))


def check(browser, backend, workload, config, arrays):
    want = workload.opdef.reference(arrays, workload.attr_dict)
    program, full = build(workload, backend, config, browser.limits())
    result = Harness(browser, arrays, want, backend).measure(program, time_it=False)
    assert result.ok, f"{workload.key} on {backend} {full}: {result.status} {result.reason}"


@pytest.mark.parametrize("backend", ["webgl", "js"])
@pytest.mark.parametrize("op", OTHER_OPS)
@SETTINGS
@given(data=st.data())
def test_every_knob_drawn_matches_numpy(browser, op, backend, data):
    check_drawn(browser, op, backend, data)


@pytest.mark.parametrize("backend", ["webgl", "js"])
@pytest.mark.parametrize("op", LIGHT_OPS)
@settings(SETTINGS, max_examples=max(EXAMPLES // 3, 1))
@given(data=st.data())
def test_every_knob_drawn_matches_numpy_light_ops(browser, op, backend, data):
    check_drawn(browser, op, backend, data)


def check_drawn(browser, op, backend, data):
    workload, config, rng = drawn(data, browser, op, backend)
    check(browser, backend, workload, config, workload.opdef.random_inputs(workload.shapes, rng))


@pytest.mark.parametrize("backend", ["webgl", "js"])
@pytest.mark.parametrize("op", INFINITE)
@SETTINGS
@given(data=st.data())
def test_infinities_in_the_input_come_out_as_numpys(browser, op, backend, data):
    workload, config, rng = drawn(data, browser, op, backend)
    arrays = with_infinities(workload.opdef.random_inputs(workload.shapes, rng), rng)
    if op == "softmax":  # +inf makes numpy's softmax NaN; -inf is an exact 0 (a masked logit)
        arrays[0] = np.where(arrays[0] == np.inf, -np.inf, arrays[0])
        axis = workload.attr_dict.get("axis", -1)
        np.put_along_axis(arrays[0], np.zeros_like(arrays[0].take([0], axis=axis), dtype=np.int64), 0.5, axis=axis)
    check(browser, backend, workload, config, arrays)
