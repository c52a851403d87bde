"""Plain-JavaScript kernels (the fallback backend) in real headless Chromium: every op, its default and sampled
configs, odd and even shapes, match numpy; a kernel whose text does not parse is a compile error."""

import dataclasses

import numpy as np
import pytest

from kgen.browser.measure import Harness
from kgen.build import build, space
from kgen.ops import Workload
from tests.browser_cases import CASES, cases_of

pytestmark = pytest.mark.browser


def harness_for(browser, workload):
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(0))
    return Harness(browser, arrays, workload.opdef.reference(arrays, workload.attr_dict), "js")


@pytest.mark.parametrize("op", sorted(CASES))
def test_op_matches_numpy_in_js(browser, op):
    for shapes, attrs in cases_of(op):
        workload = Workload.create(op, shapes, attrs)
        sp = space(workload, "js")
        packed = next((c for c in sp.sample(40, seed=2) if c.get("pack")), None)  # a prepare kernel packs a weight
        padded = next((c for c in sp.sample(40, seed=3) if c.get("pad")), None)  # an input read through a padded copy
        configs = [None, *sp.sample(2, seed=len(shapes)), *(c for c in (packed, padded) if c)]
        results = harness_for(browser, workload).measure_batch([build(workload, "js", c)[0] for c in configs], False)
        for config, result in zip(configs, results, strict=True):
            assert result.ok, f"{workload.key} {config}: {result.status} {result.reason}"


def test_js_syntax_error_is_a_compile_error(browser):
    workload = Workload.create("relu", [(64,)])
    good = build(workload, "js")[0]
    broken = dataclasses.replace(good.kernels[0], source=good.kernels[0].source.replace("const ", "const const "))
    results = harness_for(browser, workload).measure_batch([dataclasses.replace(good, kernels=(broken,)), good])
    assert results[0].status == "compile_error" and results[0].reason.startswith("relu: "), results[0]
    assert results[1].ok and results[1].samples >= 5


def test_prepare_kernels_run_once_and_are_not_timed(browser):
    """A packed weight's prepare kernel runs with the checked run, never in the timed samples: here it throws if
    it is launched a second time, and the candidate must still pass and be timed."""
    workload = Workload.create("matmul", [(16, 24), (24, 20)])
    program = build(workload, "js", {"tile_axis": "i0", "tile_a": 4, "tile_b": 4, "pack": 1})[0]
    assert program.prepare == 1
    pack = program.kernels[0]
    again = "if (n++) throw new Error('the prepare kernel ran again')"
    once = f"(() => {{ let n = 0; const f = {pack.source}; return (m, b, e) => {{ {again}; f(m, b, e); }}; }})()"
    guarded = dataclasses.replace(program, kernels=(dataclasses.replace(pack, source=once), *program.kernels[1:]))
    (result,) = harness_for(browser, workload).measure_batch([guarded])
    assert result.ok and result.samples >= 5, result
