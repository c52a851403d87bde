"""WebGL2 kernels in real headless Chromium: every op, its default and sampled configs, every texture layout and
outputs split into 2, 4 and 8 planes (render targets), odd and even shapes, match numpy; a shader that does not
compile comes back with the driver's log."""

import dataclasses

import numpy as np
import pytest

from kgen.backends.webgl import conversion
from kgen.browser.measure import Harness
from kgen.build import build, space
from kgen.ops import Workload
from kgen.scheduling.layout import NAMES, PLANES
from kgen.scheduling.space import DEFAULT_LIMITS
from tests.browser_cases import CASES, cases_of, swept

pytestmark = pytest.mark.browser


def harness_for(browser, workload, **kwargs):
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(0))
    return Harness(browser, arrays, workload.opdef.reference(arrays, workload.attr_dict), "webgl", **kwargs)


def every_layout(workload):
    """One config per layout name: every layout knob set to it where the tensor's rank allows it."""
    sp = space(workload, "webgl")
    configs = []
    for name in NAMES:
        config = {k.name: name for k in sp.knobs if k.name.startswith("layout_") and name in k.values}
        if config and not sp.violations({**sp.default(), **config}):
            configs.append(config)
    return configs


def device_planes(limits) -> set[int]:
    return {p for p in PLANES if p <= limits["max_draw_buffers"]}


def every_plane_count(workload, limits=DEFAULT_LIMITS):
    """Configs whose output is split into 2, 4 and (where ``limits`` allow 8 render targets) 8 planes, for each
    output layout that leaves an axis for them."""
    sp = space(workload, "webgl")
    configs = [{"layout_out": name, "planes": planes} for name in NAMES for planes in PLANES if planes > 1]
    return [c for c in configs if not sp.violations({**sp.default(), **c}, limits)]


@pytest.mark.parametrize("op", sorted(CASES))
def test_op_matches_numpy_in_webgl(browser, op):
    limits = browser.limits()
    for n, (shapes, attrs) in enumerate(cases_of(op)):
        workload = Workload.create(op, shapes, attrs)
        harness = harness_for(browser, workload)
        configs = [None, *space(workload, "webgl").sample(2, seed=len(shapes), limits=limits)]
        if n == 0 and swept(op):
            configs += every_layout(workload) + every_plane_count(workload, limits)
        programs = [build(workload, "webgl", c, limits)[0] for c in configs]
        for config, result in zip(configs, harness.measure_batch(programs, time_it=False), strict=True):
            assert result.ok, f"{workload.key} {config}: {result.status} {result.reason}"


def test_planes_one_value_long_are_written_one_texel_each(browser):
    """An R output with as many planes as values: each plane is one value long, so the lanes' storage indices are
    adjacent, yet each lane is its own texture's texel (a 4-wide store wrote all of them into the first)."""
    for n in sorted(device_planes(browser.limits()) - {1}):
        workload = Workload.create("reduce_mean", [(3, n)], {"axes": (0,), "keepdims": 0})
        program, _ = build(workload, "webgl", {"layout_out": "r", "planes": n}, browser.limits())
        (result,) = harness_for(browser, workload).measure_batch([program], time_it=False)
        assert result.ok, f"{n} planes: {result.status} {result.reason}"


def test_every_layout_is_exercised():
    workload = Workload.create("conv2d", [(1, 3, 13, 11), (5, 3, 3, 3), (5,)], {"pads": (1, 1, 1, 1)})
    assert [c["layout_out"] for c in every_layout(workload)] == list(NAMES)
    planed = {(c["layout_out"], c["planes"]) for c in every_plane_count(workload)}
    assert planed == {(name, p) for name in NAMES if name != "rgba_2x2" for p in (2, 4)}
    planed = {(c["layout_out"], c["planes"]) for c in every_plane_count(workload, {"max_draw_buffers": 8})}
    assert planed == {(name, p) for name in NAMES if name != "rgba_2x2" for p in (2, 4, 8)}
    problems = space(workload, "webgl").violations({**space(workload, "webgl").default(), "planes": 8})
    assert problems == ["more planes than the device's render targets (max_draw_buffers)"]


def test_glsl_compile_error_carries_the_driver_log(browser):
    workload = Workload.create("relu", [(64,)])
    good = build(workload, "webgl")[0]
    source = good.kernels[0].source.replace("kgen_o = vec4", "kgen_o = vec9")
    broken = dataclasses.replace(good.kernels[0], source=source)
    harness = harness_for(browser, workload)
    results = harness.measure_batch([dataclasses.replace(good, kernels=(broken,)), good])
    assert results[0].status == "compile_error"
    assert "vec9" in results[0].reason and results[0].reason.startswith("relu: ")
    assert results[1].ok and results[1].clock == "wall" and results[1].samples >= 5


def test_hung_webgl_kernel_is_a_timeout_and_the_batch_goes_on(browser):
    """A draw that never ends blocks the page itself (readPixels waits for it): the watchdog replaces the browser."""
    workload = Workload.create("relu", [(64,)])
    good = build(workload, "webgl")[0]
    endless = good.kernels[0].source.replace(
        "  kgen_color = kgen_o;",
        "  for (int i = 0; i < 2000000000; ++i) { kgen_o += texelFetch(u_in0, ivec2(i % 64, 0), 0); }\n"
        "  kgen_color = kgen_o;",
    )
    hung = dataclasses.replace(good, kernels=(dataclasses.replace(good.kernels[0], source=endless),))
    harness = harness_for(browser, workload, timeout_s=4)
    results = harness.measure_batch([hung, good], time_it=False)
    assert [r.status for r in results] == ["timeout", "ok"], results


@pytest.mark.parametrize(
    ("shapes", "attrs"),
    [
        ([(1, 8, 6, 10), (12, 8, 3, 3), (12,)], {"pads": (1, 1, 1, 1)}),  # conv2d: channels inner, by texel
        ([(13, 20), (20, 12)], None),  # matmul
    ],
)
def test_seeds_are_valid_and_match_numpy(browser, shapes, attrs):
    """The texel template's rules of thumb (tried first by the tuner): 4 values a texel everywhere, 4, 2 or 1
    render targets, a conv's output and image in 2x2 pixel blocks, a padded input read from a padded copy with no
    guard (no select) in the main kernel."""
    workload = Workload.create("conv2d" if attrs else "matmul", shapes, attrs or {})
    seeds = space(workload, "webgl").seed_configs(browser.limits())
    assert len(seeds) >= 3 and {c["planes"] for c in seeds} == device_planes(browser.limits())
    assert any(c["layout_out"] == "rgba_2x2" for c in seeds) == bool(attrs)
    programs = [build(workload, "webgl", c, browser.limits())[0] for c in seeds]
    assert all("?" not in p.kernels[-1].source and len(p.kernels) == 1 + bool(attrs) for p in programs)
    results = harness_for(browser, workload).measure_batch(programs, time_it=False)
    for config, result in zip(seeds, results, strict=True):
        assert result.ok, f"{config}: {result.status} {result.reason}"


def test_conversion_kernels_move_a_tensor_between_every_pair_of_layouts(browser):
    """GPU-side layout conversion: every source layout into every target layout (and into 2, 4 and 8 planes)
    returns the tensor unchanged."""
    shape = (2, 6, 5, 7)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    harness = Harness(browser, [x], x, "webgl")
    planes = device_planes(browser.limits()) - {1}
    pairs = [(s, t, 1) for s in NAMES for t in NAMES] + [("rgba_c", t, p) for t in ("r", "rgba_c") for p in planes]
    programs = [conversion(shape, s, t, p, browser.limits()) for s, t, p in pairs]
    for pair, result in zip(pairs, harness.measure_batch(programs, time_it=False), strict=True):
        assert result.ok and result.max_abs_error == 0, f"{pair}: {result.status} {result.reason}"


@pytest.mark.parametrize("layout", NAMES)
def test_padded_max_pool_in_every_layout_keeps_infinities_out_of_the_output(browser, layout):
    """ResNet-50's 3x3 stride-2 max-pool read from a copy padded with -inf (issue 17: with the image 4 values a
    texel along the last axis, a channel picked at run time by a one-hot dot product turned -inf * 0 into NaN)."""
    workload = Workload.create(
        "max_pool2d", [(1, 8, 14, 14)], {"kernel_shape": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1)}
    )
    sp = space(workload, "webgl")
    configs = [
        {**sp.default(), "pad": 1, "layout_input": layout, "layout_out": out, "k_unroll": k, "outer_inner": 0}
        for out in ("r", layout)
        for k in (1, 3)
    ]
    configs = [c for c in configs if not sp.violations(c, browser.limits())]
    assert configs
    programs = [build(workload, "webgl", c, browser.limits())[0] for c in configs]
    assert all("dot(" not in p.source for p in programs)
    for config, result in zip(
        configs, harness_for(browser, workload).measure_batch(programs, time_it=False), strict=True
    ):
        assert result.ok, f"{config}: {result.status} {result.reason}"
