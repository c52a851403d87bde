"""Texture layouts: the symbolic storage index agrees with numpy packing, packing round-trips, textures fit."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgen.errors import KgenError
from kgen.scheduling.layout import NAMES, PLANES, Layout
from kgen.te import index as ix

shapes = st.lists(st.integers(1, 9), min_size=1, max_size=4).map(tuple)


@st.composite
def layouts(draw):
    shape = draw(shapes)
    layout = Layout.named(draw(st.sampled_from(Layout.valid_names(len(shape)))), shape)
    axis = draw(st.sampled_from([layout.plane_axis, *range(len(shape))]))  # a packed axis too: its texels split
    return layout.with_planes(draw(st.sampled_from(PLANES)), axis) if axis is not None else layout


@settings(max_examples=60, deadline=None)
@given(layout=layouts(), data=st.data())
def test_storage_index_matches_packing(layout, data):
    values = np.arange(1, np.prod(layout.shape) + 1, dtype=np.float32).reshape(layout.shape)
    storage = layout.pack(values)
    assert storage.size == layout.size == layout.plane_count * layout.texels * layout.channels
    np.testing.assert_array_equal(layout.unpack(storage), values)
    point = tuple(data.draw(st.integers(0, n - 1)) for n in layout.shape)
    index = ix.evaluate_index(layout.storage_index(point), {})
    assert storage[int(index)] == values[point]
    assert np.count_nonzero(storage) == values.size  # every element has its own place; the rest is padding


def test_planes_split_the_last_axis_a_layout_does_not_pack():
    """4 planes of 4 channels: one fragment's texel in each plane holds 4 channels of 4 neighbouring columns."""
    layout = Layout.named("rgba_c", (1, 8, 3, 10)).with_planes(4)
    assert layout.planes == (3, 4) and layout.packed_shape == (1, 2, 3, 3) and layout.size == 4 * 18 * 4
    assert ix.evaluate_index(layout.storage_index((0, 5, 2, 9)), {}) == (1 * 18 + 1 * 9 + 2 * 3 + 2) * 4 + 1
    assert Layout.named("rgba_last", (6, 8)).with_planes(2).planes == (0, 2)  # rows, where columns are packed
    with pytest.raises(KgenError, match="no axis left for 2 planes"):
        Layout.named("rgba_2x2", (6, 8)).with_planes(2)


def test_planes_of_a_packed_axis_split_its_texels():
    """Planes along the packed last axis: one fragment writes 8 texels of 4 neighbouring columns each, a row of 32
    columns (the fused attention's output on WebGL)."""
    layout = Layout.named("rgba_last", (2, 3, 32)).with_planes(8, 2)
    assert layout.packed_shape == (2, 3, 1) and layout.texels == 6
    assert ix.evaluate_index(layout.storage_index((1, 2, 13)), {}) == (3 * 6 + 5) * 4 + 1  # texel 3 of row 5: plane 3


LAYOUTS_IN_JS = [
    Layout.named("rgba_last", (2, 3, 32)).with_planes(8, 2),
    Layout.named("rgba_last", (3, 10)).with_planes(2, 1),
    Layout.named("rgba_c", (1, 8, 3, 10)).with_planes(4),
    Layout.named("rgba_2x2", (5, 7)),
    Layout.named("r", (4, 3)).with_planes(2),
]


def test_the_runtime_places_every_element_where_python_does():
    """The WebGL launcher's storageIndices (in node) against the layout's, planes of a packed axis included."""
    launcher = Path(__file__).parents[1] / "kgen" / "runtime" / "launchers" / "webgl.js"
    script = (
        f"const {{ storageIndices }} = await import({json.dumps(launcher.as_uri())});"
        f"const layouts = {json.dumps([layout.to_json() for layout in LAYOUTS_IN_JS])};"
        "console.log(JSON.stringify(layouts.map((l) => Array.from(storageIndices(l)))));"
    )
    done = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for layout, got in zip(LAYOUTS_IN_JS, json.loads(done.stdout), strict=True):
        assert got == layout._storage_indices().tolist(), layout


def test_named_layouts():
    assert Layout.named("r", (2, 3)).channels == 1
    assert Layout.named("rgba_c", (1, 6, 5, 5)).packed_shape == (1, 2, 5, 5)
    assert Layout.named("rgba_2x2", (3, 5)).packed_shape == (2, 3)
    assert Layout.valid_names(1) == ("r", "rgba_last")
    assert set(Layout.valid_names(4)) == set(NAMES)
    with pytest.raises(KgenError, match="unknown layout 'rgb'"):
        Layout.named("rgb", (4,))
    with pytest.raises(KgenError, match="needs a tensor of higher rank"):
        Layout.named("rgba_c", (4, 4))


@settings(max_examples=40, deadline=None)
@given(layout=layouts(), max_width=st.sampled_from([4, 16, 64, 4096]))
def test_texture_holds_every_texel_within_the_size_limit(layout, max_width):
    """A layout fits exactly when it has at most max_width² texels (what the texel template's constraint checks)."""
    if layout.texels > max_width * max_width:
        with pytest.raises(KgenError, match="texels"):
            layout.texture(max_width)
        return
    width, height = layout.texture(max_width)
    assert width <= max_width and height <= max_width
    assert width * height >= layout.texels > width * (height - 1)


def test_rows_hold_whole_trailing_axes():
    assert Layout.named("rgba_c", (1, 64, 56, 56)).texture(4096) == (56, 896)
    assert Layout.named("rgba_c", (1, 256, 14, 14)).with_planes(4).texture(4096) == (56, 64)  # not (3584, 1)
    assert Layout.named("r", (1, 3, 224, 224)).texture(4096) == (224, 672)
    assert Layout.named("r", (5000, 3)).texture(128) == (128, 118)  # whole rows would be 5000 tall: wrap


def test_a_transposed_convs_phases_take_the_layout_main_knob_and_a_final_stage_has_none():
    """The phases (a temporary that a copy interleaves) packed 4 output channels a texel: a quarter of the
    fragments, each with 4 accumulators fed by vec4s of the weight. A conv's one stage writes the output: no knob."""
    from kgen.build import build, space
    from kgen.ops import Workload

    workload = Workload.create("conv_transpose2d", [(1, 16, 5, 5), (16, 8, 4, 4)], {"strides": (2, 2)})
    config = {"layout_input": "rgba_c", "layout_weight": "rgba_c", "layout_out": "rgba_c", "unroll": 2, "k_unroll": 4}
    kernels = {}
    for main in ("r", "rgba_c"):
        program, _ = build(workload, "webgl", {**config, "layout_main": main, "pad": 0})
        kernels[main] = next(k for k in program.kernels if "acc0" in k.source)
        phases = next(b for b in program.buffers if b.name == "tmp0")
        assert phases.layout["shape"] == [1, 8, 2, 2, 6, 6]
        assert phases.layout["packing"] == ([[1, 4]] if main == "rgba_c" else [])
    assert kernels["r"].grid[0] * kernels["r"].grid[1] == 4 * kernels["rgba_c"].grid[0] * kernels["rgba_c"].grid[1]
    assert "acc3" in kernels["rgba_c"].source and "acc1" not in kernels["r"].source
    conv = Workload.create("conv2d", [(1, 16, 5, 5), (8, 16, 3, 3)], {})
    assert "layout_main" not in {k.name for k in space(conv, "webgl").knobs}


def test_a_layer_norms_mean_is_packed_as_its_variance_is():
    """The knob packs the tuned stage's output (a layer norm's variance); the mean beside it, a stage of the same
    shape, is packed alike: a quarter of the fragments, 4 rows each and no lane picked out of a texel."""
    from kgen.build import build
    from kgen.ops import Workload

    workload = Workload.create("layer_norm", [(1, 128, 384), (384,), (384,)], {})
    for main, fragments in (("r", 128), ("rgba_c", 32)):
        config = {"layout_X": "rgba_c", "layout_out": "rgba_c", "layout_main": main, "planes": 1}
        program, _ = build(workload, "webgl", config)
        mean, variance = program.kernels[:2]
        assert mean.grid[0] * mean.grid[1] == variance.grid[0] * variance.grid[1] == fragments
        body = mean.source.split("main()")[1]
        assert ("acc3" in body) == (main == "rgba_c") and ("kgen_lane" in body) == (main == "r")
