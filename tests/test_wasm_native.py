"""Every op's WebAssembly kernels, run through wasmtime, match numpy: default configs and configs with every knob
drawn (1 to 4 threads), SIMD ones; threaded modules (shared memory) validate."""

import base64
import itertools
import math
import re

import numpy as np
import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgen import backends
from kgen.build import build, space
from kgen.checking import compare
from kgen.codegen.wasm.renderer import render
from kgen.errors import KgenError
from kgen.native import wasm_runner
from kgen.ops import Workload, get_op
from kgen.scheduling.lower import lower
from kgen.scheduling.space import DEFAULT_LIMITS
from tests.strategies import CASES, LIGHT_OPS, OTHER_OPS, configs
from tests.test_fused_epilogue import conv_bias_relu_residual

LIMITS = {**DEFAULT_LIMITS, "max_threads": 4}


def _check(workload: Workload, config, seed: int = 0):
    program, full = build(workload, "wasm", config, LIMITS)
    arrays = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(seed))
    want = workload.opdef.reference(arrays, workload.attr_dict)
    got = wasm_runner.run(program, arrays).reshape(want.shape)
    result = compare(got, want, "wasm")
    assert result.ok, f"{workload.key} {full}: {result}"
    return program, full


@pytest.mark.parametrize("op", OTHER_OPS)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_wasm_kernel_matches_reference(op, data):
    check_drawn(op, data)


@pytest.mark.parametrize("op", LIGHT_OPS)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(data=st.data())
def test_wasm_light_kernel_matches_reference(op, data):
    check_drawn(op, data)


def check_drawn(op, data):
    shapes, attrs = data.draw(CASES[op], label="case")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    workload = Workload.create(op, shapes, attrs)
    config = data.draw(st.none() | configs(space(workload, "wasm"), LIMITS), label="config")
    _check(workload, config, seed)


MICRO_KERNELS = [
    # ragged: the last tile overhangs both axes, lanes past the end are computed and discarded
    ("matmul", [(13, 29), (29, 19)], {}, {"tile_axis": "i0", "tile_a": 4, "tile_b": 8, "vector": "f32x4"}),
    ("matmul", [(16, 32), (32, 16)], {}, {"tile_axis": "i0", "tile_a": 4, "tile_b": 8, "vector": "f32x4_fma"}),
    # padding: lanes of one 4-wide read have different guards (a lane mask, hoisted out of the channel loop)
    (
        "conv2d",
        [(1, 5, 9, 11), (8, 5, 3, 3), (8,)],
        {"pads": (1, 1, 1, 1)},
        {"tile_axis": "m", "tile_a": 2, "tile_b": 8, "vector": "f32x4_fma", "unroll": 2},
    ),
    # stride 2 over a merged pixel axis: lanes that cross a row are gathered one by one
    (
        "conv2d",
        [(1, 3, 15, 15), (4, 3, 3, 3)],
        {"strides": (2, 2), "pads": (1, 1, 1, 1)},
        {"tile_axis": "m", "tile_a": 4, "tile_b": 4, "vector": "f32x4", "merge_hw": 1},
    ),
    # 1x1 conv as an implicit GEMM over pixels, output-channel tiles fastest (they share the input panel)
    (
        "conv2d",
        [(1, 8, 7, 9), (12, 8, 1, 1)],
        {},
        {"tile_axis": "m", "tile_a": 6, "tile_b": 8, "vector": "f32x4_fma", "merge_hw": 1, "tile_order": "a"},
    ),
    ("softmax", [(3, 37)], {"axis": -1}, {"tile_b": 4, "vector": "f32x4"}),
    ("sigmoid", [(2, 3, 9)], {}, {"tile_b": 8, "vector": "f32x4"}),
]


@pytest.mark.parametrize(
    ("op", "shapes", "attrs", "config"), MICRO_KERNELS, ids=[f"{c[0]}-{k}" for k, c in enumerate(MICRO_KERNELS)]
)
def test_simd_micro_kernels(op, shapes, attrs, config):
    program, _ = _check(Workload.create(op, shapes, attrs), config, seed=3)
    assert "f32x4" in program.source
    assert ("f32x4.relaxed_madd" in program.source) == (config["vector"] == "f32x4_fma")


def test_a_window_unrolled_whole_reads_each_value_just_before_its_first_use():
    """With no reduction loop left (a depthwise 3x3 window unrolled whole), the reads stay beside the multiply-adds
    that use them instead of being hoisted all ahead of the first one (48 vectors live at once: spilled, and the
    kernel ran 2x slower than with its window's rows looped)."""
    workload = Workload.create("conv2d", [(1, 8, 14, 14), (8, 1, 3, 3)], {"group": 8, "pads": (1, 1, 1, 1)})
    config = {"tile_axis": "h", "tile_a": 2, "tile_b": 16, "vector": "f32x4_fma", "unroll": 2, "pad": 1}
    program, _ = _check(workload, config, seed=7)
    conv = program.kernels[-1].source
    assert "(loop $L_" not in conv
    assert conv.index("f32x4.relaxed_madd") < conv.rindex("v128.load")


def test_clip_against_constants_is_one_instruction_a_bound_and_keeps_nan():
    """ReLU6 against its constant bounds is ``f32x4.pmax`` / ``pmin`` (one x86 instruction each, where V8 spends
    about eight on ``f32x4.max`` / ``min``: a MobileNet expansion conv ran 1.5x slower with them), with the data
    first so that a NaN input stays NaN; a max of two tensors keeps the strict instruction."""
    workload = Workload.create("clip", [(1, 2, 4, 8)], {"min": 0.0, "max": 6.0})
    program, _ = build(workload, "wasm", {"tile_b": 8, "vector": "f32x4"}, LIMITS)
    assert "f32x4.pmax" in program.source and "f32x4.pmin" in program.source
    assert "f32x4.max" not in program.source and "f32x4.min" not in program.source
    x = np.linspace(-8, 8, 64, dtype=np.float32).reshape(1, 2, 4, 8)
    x.flat[[0, 9, 18, 27]] = [np.nan, -np.inf, np.inf, -0.0]
    got = wasm_runner.run(program, [x]).reshape(x.shape)
    np.testing.assert_array_equal(got, np.clip(x, 0.0, 6.0))  # NaN where x is NaN, bounds at the infinities

    pair = Workload.create("max", [(1, 2, 4, 8), (1, 2, 4, 8)], {})
    program, _ = build(pair, "wasm", {"tile_b": 8, "vector": "f32x4"}, LIMITS)
    assert "f32x4.max" in program.source and "f32x4.pmax" not in program.source
    y = np.zeros_like(x)
    np.testing.assert_array_equal(wasm_runner.run(program, [y, x]).reshape(x.shape), np.maximum(y, x))


@pytest.mark.parametrize("vector", ["f32x4", "f32x4_fma", "scalar"])
def test_exp_is_inline_and_right_at_its_edges(vector):
    """exp is printed inline, not called (a call clobbers every vector register: a matmul's accumulators were
    spilled around each GELU of its epilogue), in vectors and scalars alike, its reduction and polynomial in fused
    multiply-adds with relaxed SIMD; it keeps NaN, is +inf past 88.72 and 0 below -87.34, and within 2 ulp
    elsewhere."""
    x = np.array([np.nan, -np.inf, np.inf, -0.0, -1e4, -87.4, -87.3, -20.5, -1.0, 0.0, 1e-8, 0.5, 3.0, 88.3, 88.8, 1e4])
    x = np.concatenate([x, np.linspace(-80, 80, 48)]).astype(np.float32).reshape(1, 4, 4, 4)
    workload = Workload.create("exp", [x.shape], {})
    program, _ = build(workload, "wasm", {"tile_b": 4, "vector": vector}, LIMITS)
    assert "call $exp" not in program.source and "f32x4.min" not in program.source
    assert program.source.count("f32x4.relaxed_") == (8 if vector == "f32x4_fma" else 0)
    got = wasm_runner.run(program, [x]).reshape(x.shape)
    with np.errstate(over="ignore"):
        want = np.exp(x.astype(np.float64))
    want[x > 88.72283935546875] = np.inf
    want[x < -87.33654022216797] = 0.0
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=2.5e-7, atol=0)


@pytest.mark.parametrize("vector", ["f32x4", "scalar"])
def test_tanh_is_inline_and_right_at_its_edges(vector):
    """tanh is computed in WebAssembly (it called JavaScript's Math.tanh once per lane): within 2.5e-7 of the true
    value, odd (-0 stays -0), ±1 at the infinities and NaN kept."""
    x = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1e-6, 1e-6, -9.5, 9.5, 20.0, -0.3, 0.7, 1e4, -1e4, 3.0, -3.0])
    x = np.concatenate([x, np.linspace(-6, 6, 48)]).astype(np.float32).reshape(1, 4, 4, 4)
    workload = Workload.create("tanh", [x.shape], {})
    program, _ = build(workload, "wasm", {"tile_b": 4, "vector": vector}, LIMITS)
    assert '(import "math"' not in program.source and "call $tanh" not in program.source
    got = wasm_runner.run(program, [x]).reshape(x.shape)
    np.testing.assert_allclose(got, np.tanh(x.astype(np.float64)), rtol=0, atol=2.5e-7)
    assert np.signbit(got.flat[3]) and not np.signbit(got.flat[4])


def test_erf_is_right_over_the_whole_line():
    """erf is a rational function of its argument clamped to ±4, no exp: within 4e-7 of the true value in
    float32, odd, ±1 at the infinities and NaN kept."""
    x = np.array([np.nan, -np.inf, np.inf, -0.0, 0.0, -1e-6, 1e-6, -3.9, 3.9, 4.1, -4.1, 1e4, -1e4, 0.5, -0.5, 2.0])
    x = np.concatenate([x, np.linspace(-6, 6, 4096)]).astype(np.float32).reshape(1, 16, 257)
    workload = Workload.create("erf", [x.shape], {})
    program, _ = build(workload, "wasm", {"tile_b": 4, "vector": "f32x4"}, LIMITS)
    assert "$exp" not in program.source
    got = wasm_runner.run(program, [x]).reshape(x.shape)
    want = np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=0, atol=4e-7)
    assert np.signbit(got.flat[3]) and not np.signbit(got.flat[4])


@pytest.mark.parametrize("op", ["sin", "cos"])
def test_sine_and_cosine_are_right_over_a_rotary_embeddings_angles(op):
    """sin and cos reduce their argument by multiples of π in three parts: within 1.5e-7 of the true value of the
    float32 argument up to ±12000 (positions times frequencies), NaN at the infinities."""
    x = np.concatenate([[np.nan, -np.inf, np.inf, 0.0, 1e-30], np.linspace(-12000, 12000, 4091)])
    x = x.astype(np.float32).reshape(1, 16, 256)
    program, _ = build(Workload.create(op, [x.shape], {}), "wasm", {"tile_b": 4, "vector": "f32x4_fma"}, LIMITS)
    got = wasm_runner.run(program, [x]).reshape(x.shape)
    with np.errstate(invalid="ignore"):
        want = getattr(np, op)(x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=0, atol=1.5e-7)


def test_a_subexpression_used_twice_is_computed_once():
    """GELU's erf reads its clamped argument three times and its square in two polynomials: each is computed once
    per vector into a local, not once per use (V8 does not merge them)."""
    workload = Workload.create("gelu", [(1, 8, 16)], {"approximate": "none"})
    program, _ = build(workload, "wasm", {"tile_b": 4, "vector": "f32x4"}, LIMITS)
    kernel = program.kernels[-1].source
    assert kernel.count("f32x4.pmin") == 1 and kernel.count("local.set $cse") == 2, kernel


def test_copies_into_a_padded_buffer_take_whole_rows_per_tile():
    """The interior copy of a padded input (made on every run) takes a 14-pixel row per tile, not 8 pixels: with
    little work per tile, fewer tiles made it 2x faster."""
    workload = Workload.create("conv2d", [(1, 8, 14, 14), (8, 1, 3, 3)], {"group": 8, "pads": (1, 1, 1, 1)})
    program, _ = _check(workload, {"tile_axis": "h", "tile_b": 16, "vector": "f32x4_fma", "pad": 1}, seed=8)
    copy = next(k for k in program.kernels if k.name.endswith("_0"))
    assert copy.grid[0] == 8 * 14  # one tile per row of each channel


def test_padded_reductions_have_an_unguarded_interior_version():
    """A padded conv with its window looped: tiles inside the image run a copy of the reduction without guards;
    the image has interior and border tiles, so both copies run and must match numpy."""
    workload = Workload.create("conv2d", [(1, 4, 14, 18), (8, 4, 3, 3)], {"pads": (1, 1, 1, 1)})
    config = {"tile_axis": "m", "tile_a": 4, "tile_b": 4, "vector": "f32x4_fma", "unroll": 0, "k_unroll": 1}
    program, _ = _check(workload, config, seed=5)
    source = program.source
    interior, border = source.split("(else", 1)
    assert "(if " in interior and "select" not in interior.split("(then", 1)[1]
    assert "select" in border or "v128.and" in border  # a guard, or a lane mask (zero default: an and)


def test_lanes_known_to_lie_past_an_edge_are_masked_in_one_vector_read():
    """A tile as wide as a 14-pixel row reads columns -1 and 14, 15 of the image at its ends: lanes whose guard
    is false where the kernel is made. Their vectors are one 4-wide read and an ``and`` with a constant mask, not
    scalar reads and lane inserts. The row's last, half vector is stored in one 8-byte store (depthwise 512ch 14²
    in 2x16 tiles: 0.065 -> 0.061 ms side by side). The rows' guards are settled too: the first tile of a column,
    the last and those between each have code of their own, so no mask is made at run time, and the first and
    last tiles skip the multiply-adds of the padding row (4 columns x 3 of the 72)."""
    workload = Workload.create("conv2d", [(1, 8, 14, 14), (8, 1, 3, 3)], {"group": 8, "pads": (1, 1, 1, 1)})
    config = {"tile_axis": "h", "tile_a": 2, "tile_b": 16, "vector": "f32x4_fma", "pad": 0, "unroll": 2}
    program, _ = _check(workload, config, seed=3)
    source = program.kernels[-1].source
    first, rest = source.split("(then", 1)[1].split("(else", 1)
    between, last = rest.split("(then", 1)[1].split("(else", 1)
    assert [part.count("relaxed_madd") for part in (first, between, last)] == [60, 72, 60]
    assert "replace_lane" not in between and "f32.load" not in between
    assert "(v128.const i32x4 0 -1 -1 -1)" in between and "(v128.const i32x4 -1 -1 0 0)" in between
    assert between.count("v128.and") >= 2 and "bitselect" not in source
    masks = re.findall(r"\(local.set \$vm\d+ (\(\S+)", source)
    assert masks and set(masks) == {"(v128.const"}
    # the row's last vector holds columns 12..15, of which 12 and 13 exist: one 8-byte store, no lane guards
    assert source.count("v128.store64_lane") == 3 * 2 and "extract_lane" not in source
    assert "(if (i32.const" not in source


def test_a_streamed_tile_stores_each_accumulator_right_after_its_last_update():
    """``stream``, depthwise 3x3 in tiles of 8 rows by 2 vectors (16 accumulators, 144 multiply-adds): the updates
    go column by column, down each in input row order, and each accumulator (bias added) is stored right after its
    last update: the first row's first vector after the 3 + 6 + 9 multiply-adds of input rows 0, 1 and 2 of its
    column, not after all 144 (16 accumulators, 9 splatted weights and the reads would not fit in 16 vector
    registers), nor after row 2 of the second column too (row by row across the tile, 35: 12 accumulators live
    in a 7x16 tile, spilled). Within an input row, each read's updates come together (the read is then dead):
    the first 18 multiply-adds read 9 vectors in 9 runs, not 18. Unmasked edges included (no padded copy): the
    stores go into the code of each tile position, in the first tile's after 15 multiply-adds (the padding row's
    3 are left out)."""
    workload = Workload.create("conv2d", [(1, 3, 16, 8), (3, 1, 3, 3), (3,)], {"group": 3, "pads": (1, 1, 1, 1)})
    config = {"tile_axis": "h", "tile_a": 8, "tile_b": 8, "vector": "f32x4_fma", "pad": 1, "unroll": 2}
    program, _ = _check(workload, {**config, "stream": 1}, seed=11)
    source = program.kernels[-1].source
    assert source.count("relaxed_madd") == 144 and source.count("v128.store ") == 16
    assert source.split("v128.store ")[0].count("relaxed_madd") == 18
    reads = re.findall(r"relaxed_madd \(local.get \$(\w+)\)", source)[:18]
    assert len(set(reads)) == 9 and len([read for read, _ in itertools.groupby(reads)]) == 9
    unpadded, _ = _check(workload, {**config, "stream": 1, "pad": 0}, seed=12)
    first = unpadded.kernels[-1].source.split("(then", 1)[1].split("(else", 1)[0]
    assert first.count("v128.store ") == 16 and first.split("v128.store ")[0].count("relaxed_madd") == 15
    # not streamed, every update comes before the first store
    program, _ = _check(workload, config, seed=11)
    assert program.kernels[-1].source.split("v128.store ")[0].count("relaxed_madd") == 144
    with pytest.raises(KgenError, match="stream needs the reduction unrolled whole"):
        build(workload, "wasm", {**config, "stream": 1, "unroll": 1}, LIMITS)


def test_a_streamed_accumulator_that_reads_only_padding_is_still_stored():
    """A strided conv whose second output row reads only the bottom padding (one input row, pads 3 below,
    stride 3): every update of that row's accumulators adds nothing and is left out, and streamed, its stores
    (bias alone) still come, after the others (found by hypothesis: the row came out 0)."""
    workload = Workload.create(
        "conv2d", [(2, 2, 1, 11), (4, 1, 1, 4), (4,)], {"group": 2, "pads": (0, 0, 3, 0), "strides": (3, 2)}
    )
    config = {"tile_axis": "h", "tile_a": 8, "tile_b": 4, "unroll": 1, "stream": 1, "vector": "f32x4"}
    for threads, split_fast in ((1, 0), (4, 1)):
        _check(workload, {**config, "threads": threads, "split_fast": split_fast}, seed=7)


def test_a_short_image_is_tiled_whole_or_in_halves_and_streamed_first():
    """On a 14x14 image the rows may go in tiles of 7 or 14 (two tiles per channel, none overhanging), not only
    in the usual 1..8; the first seeds are streamed 7x16 tiles, which compute the conv. A long axis (a matmul's
    64 rows) gets no such choices."""
    workload = Workload.create("conv2d", [(1, 3, 14, 14), (3, 1, 3, 3)], {"group": 3, "pads": (1, 1, 1, 1)})
    sp = space(workload, "wasm")
    assert next(k for k in sp.knobs if k.name == "tile_a").values == (4, 1, 2, 3, 6, 8, 7, 14)
    seeds = sp.fix({"threads": 1}).seed_configs(LIMITS)
    assert [(c["tile_a"], c["tile_b"], c["stream"], c["pad"]) for c in seeds[:2]] == [(7, 16, 1, 0), (7, 16, 1, 1)]
    for config in seeds[:2]:
        program, _ = _check(workload, config, seed=5)
        assert program.kernels[-1].grid[0] == 3 * 2
    matmul = space(Workload.create("matmul", [(64, 64), (64, 64)]), "wasm")
    assert next(k for k in matmul.knobs if k.name == "tile_a").values == (4, 1, 2, 3, 6, 8)


WRAP = {"tile_axis": "m", "tile_a": 6, "tile_b": 8, "merge_hw": 1, "pad": 0, "wrap": 1, "unroll": 2}


def test_wrapped_rows_are_read_in_whole_vectors_across_the_end_of_a_row():
    """``wrap`` on a 14x14 conv: the image is copied into rows of 15 floats (the 15th zero, shared by the row's
    right and the next row's left padding) between zero rows, the conv computes 15 pixels per row merged, each
    tap one unguarded 4-wide read at the pixel plus a constant, and a last kernel keeps 14 of every 15 with the
    bias added. The kernels: the border filled once, the interior copy, the wide conv, the narrowing copy."""
    workload = Workload.create("conv2d", [(1, 8, 14, 14), (16, 8, 3, 3), (16,)], {"pads": (1, 1, 1, 1)})
    for vector in ("f32x4_fma", "f32x4", "scalar"):
        config = {**WRAP, "vector": vector} | ({"tile_a": 2} if vector == "scalar" else {})
        program, _ = _check(workload, config, seed=7)
        assert program.prepare == 1 and len(program.kernels) == 4
    program, _ = _check(workload, {**WRAP, "vector": "f32x4_fma"})
    _, copy, conv, narrow = program.kernels
    assert copy.grid[0] == 8 * 14 and narrow.grid[0] == 16 * 14  # a row per tile
    assert conv.grid[0] == 3 * 27  # 16 channels in tiles of 6, and 14 * 15 = 210 pixels in tiles of 8
    body = conv.source.split("(loop", 2)[2].split("store")[0]  # the channel loop: every tap read whole, unguarded
    assert body.count("relaxed_madd") == 6 * 2 * 9 and body.count("v128.load ") == 2 * 9
    assert not any(s in body for s in ("v128.and", "bitselect", "replace_lane", "f32.load", "(if"))
    with pytest.raises(KgenError, match="wrap needs merge_hw and not pad"):
        build(workload, "wasm", {**WRAP, "merge_hw": 0, "pad": 1}, LIMITS)


def test_wrapped_rows_keep_a_fused_epilogue_and_odd_pads():
    """The conv's epilogue (bias, relu, residual add: one fused stage) moves into the narrowing copy; asymmetric
    pads (rows of 10 + 3 floats) with a dilated, grouped window compute the op too."""
    inputs, out = conv_bias_relu_residual()
    program, _ = lower(inputs, out, backends.get("wasm").template, {**WRAP, "vector": "f32x4_fma"}, "block", LIMITS)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(t.shape).astype(np.float32) for t in inputs]
    want = np.maximum(get_op("conv2d").reference(arrays[:3], {"pads": (1, 1, 1, 1)}), 0.0) + arrays[3]
    got = wasm_runner.run(render(program), arrays).reshape(want.shape)
    assert compare(got, want, "wasm").ok
    _, conv, narrow = program.kernels  # the residual (in3) is read by the narrowing copy, not by the conv
    assert "in3" not in {b.name for b in conv.params} and "in3" in {b.name for b in narrow.params}
    odd = {"pads": (2, 0, 1, 3), "dilations": (2, 1), "group": 2}
    workload = Workload.create("conv2d", [(2, 6, 10, 10), (6, 3, 3, 3)], odd)
    _check(workload, {**WRAP, "tile_axis": "n", "tile_a": 2, "vector": "f32x4_fma"}, seed=3)


@pytest.mark.parametrize(
    ("shapes", "attrs", "offered"),
    [
        ([(1, 8, 14, 14), (8, 8, 3, 3)], {"pads": (1, 1, 1, 1)}, True),
        ([(1, 8, 28, 28), (8, 8, 3, 3)], {"pads": (1, 1, 1, 1)}, True),  # rows of 3.5 tiles of 8
        ([(1, 8, 56, 56), (8, 8, 3, 3)], {"pads": (1, 1, 1, 1)}, False),  # rows of whole tiles: nothing to gain
        ([(1, 8, 14, 14), (8, 8, 1, 1)], {}, False),  # no padding
        ([(1, 8, 14, 14), (8, 8, 3, 3)], {"pads": (1, 1, 1, 1), "strides": (2, 2)}, False),
        ([(1, 8, 14, 14), (8, 1, 3, 3)], {"pads": (1, 1, 1, 1), "group": 8}, False),  # no tile axis but rows
    ],
)
def test_wrap_is_offered_where_it_can_gain(shapes, attrs, offered):
    names = {k.name for k in space(Workload.create("conv2d", shapes, attrs), "wasm").knobs}
    assert ("wrap" in names) == offered


def test_two_vector_reads_that_start_with_the_same_read_are_two_vectors():
    """Merged pixels cross a row: one vector of a tile is its first read and three lanes known to lie past the
    left edge, another starts with the same read and goes on in the row. Each is declared under its own name (found
    by hypothesis: the second took the first's name, and so its masked lanes, in 36 of 120 outputs)."""
    workload = Workload.create(
        "conv2d",
        [(2, 6, 5, 6), (6, 3, 3, 3)],
        {"strides": (2, 1), "pads": (0, 3, 0, 0), "dilations": (1, 2), "group": 2},
    )
    config = {"tile_b": 12, "tile_axis": "n", "tile_a": 4, "merge_hw": 1, "unroll": 1, "pad": 0, "vector": "f32x4"}
    program, _ = _check(workload, config)
    assert "v128.and" in program.kernels[-1].source  # masked edge vectors are in play


def test_stride_2_rows_are_read_as_two_vectors_and_a_shuffle():
    workload = Workload.create("conv2d", [(1, 3, 23, 23), (6, 3, 7, 7)], {"strides": (2, 2), "pads": (3, 3, 3, 3)})
    config = {"tile_axis": "m", "tile_a": 4, "tile_b": 8, "vector": "f32x4_fma", "unroll": 1}
    program, _ = _check(workload, config, seed=6)
    assert "i8x16.shuffle" in program.source
    assert "f32x4.replace_lane" not in program.source  # no value is gathered lane by lane


def test_guards_that_are_not_linear_in_the_loops_stay_in_both_versions():
    """A strided transposed conv's grid test (a floor-mod of the window) cannot be lifted out of the loops."""
    workload = Workload.create("conv_transpose2d", [(1, 3, 6, 7), (3, 5, 3, 3)], {"strides": (2, 2)})
    _check(workload, {"tile_axis": "m", "tile_a": 2, "tile_b": 4, "vector": "f32x4", "unroll": 0}, seed=7)


@pytest.mark.parametrize(
    ("op", "shapes", "attrs", "config", "packed"),
    [
        # a matmul's B (the weight) along its columns, in blocks of tile_b: 4-wide reads of one panel
        ("matmul", [(13, 29), (29, 19)], {}, {"tile_axis": "i0", "tile_a": 4, "tile_b": 8}, (3, 29, 8)),
        # a conv's filter along its output channels (14 = 2 blocks of 6 and 2 of zeros), splatted
        (
            "conv2d",
            [(1, 5, 9, 11), (14, 5, 3, 3), (14,)],
            {"pads": (1, 1, 1, 1)},
            {"tile_axis": "m", "tile_a": 6, "tile_b": 8, "unroll": 2},
            (3, 5, 3, 3, 6),
        ),
        # Gemm with transB: the weight's rows are the output columns
        ("gemm", [(7, 9), (11, 9)], {"transB": 1}, {"tile_axis": "i0", "tile_a": 3, "tile_b": 4}, (3, 9, 4)),
        # a classifier's Gemm on one image: tile_b alone
        ("gemm", [(1, 9), (11, 9)], {"transB": 1}, {"tile_b": 8}, (2, 9, 8)),
    ],
)
def test_weights_are_packed_once_by_a_prepare_kernel(op, shapes, attrs, config, packed):
    workload = Workload.create(op, shapes, attrs)
    program, _ = _check(workload, {**config, "pack": 1, "vector": "f32x4_fma", "threads": 2}, seed=8)
    assert program.prepare == 1 and program.kernels[0].name == f"{op}_pack0"
    temp = next(b for b in program.buffers if b.role == "temp")
    assert (temp.name, temp.size) == ("pack0", int(np.prod(packed)))


@pytest.mark.parametrize(
    ("op", "shapes", "attrs", "config", "padded"),
    [
        # pads on every side differ (top 1, left 2, bottom 0, right 3); rows read by whole vectors
        (
            "conv2d",
            [(1, 3, 7, 9), (8, 3, 3, 3), (8,)],
            {"pads": (1, 2, 0, 3)},
            {"tile_axis": "m", "tile_a": 4, "tile_b": 8, "unroll": 2},
            (1, 3, 8, 14),
        ),
        # stride 2: two vectors and a shuffle, with no lane masks
        (
            "conv2d",
            [(1, 3, 23, 23), (6, 3, 7, 7)],
            {"strides": (2, 2), "pads": (3, 3, 3, 3)},
            {"tile_axis": "m", "tile_a": 4, "tile_b": 8, "unroll": 1},
            (1, 3, 29, 29),
        ),
        # max pooling pads with -inf, not 0
        ("max_pool2d", [(1, 5, 9, 9)], {"kernel_shape": (3, 3), "pads": (1, 1, 1, 1)}, {"tile_b": 4}, (1, 5, 11, 11)),
    ],
)
def test_a_padded_input_is_read_without_guards(op, shapes, attrs, config, padded):
    """With ``pad`` the border of a padded copy is filled once by a prepare kernel, the image is copied into its
    interior on every run, and the main kernel reads it with no guard (no select, no lane mask)."""
    workload = Workload.create(op, shapes, attrs)
    program, _ = _check(workload, {**config, "pad": 1, "vector": "f32x4_fma", "threads": 2}, seed=9)
    assert program.prepare == 1 and program.kernels[0].name == f"{op}_pad0"
    assert [b.size for b in program.buffers if b.role == "temp"] == [int(np.prod(padded))]
    copy, main = program.kernels[1:]
    assert "select" not in copy.source and "select" not in main.source
    assert "replace_lane" not in main.source  # no value is gathered lane by lane


def test_pad_is_offered_only_for_inputs_read_through_bounds_guards():
    """A strided transposed conv's guard also tests the stride grid, which padding cannot remove; a conv without
    pads reads nothing past its input."""
    unpadded = [
        Workload.create("conv_transpose2d", [(1, 3, 6, 7), (3, 5, 3, 3)], {"strides": (2, 2)}),
        Workload.create("conv2d", [(1, 3, 6, 7), (5, 3, 3, 3)], {}),
    ]
    assert all("pad" not in space(w, "wasm").default() for w in unpadded)
    padded = Workload.create("conv_transpose2d", [(1, 3, 6, 7), (3, 5, 3, 3)], {})  # stride 1: plain bounds
    assert "pad" in space(padded, "wasm").default()


@pytest.mark.parametrize("threads", [1, 2])
def test_a_strided_1x1_conv_reads_a_compact_copy_at_stride_1(threads):
    """With ``subsample`` a kernel copies the pixels a strided 1x1 conv reads (every other row and column) into
    a compact tensor on every run, and the conv reads that one with whole 4-wide reads: no shuffle, no gather."""
    workload = Workload.create("conv2d", [(1, 8, 16, 16), (16, 8, 1, 1), (16,)], {"strides": (2, 2)})
    config = {"tile_axis": "m", "tile_a": 4, "tile_b": 8, "merge_hw": 1, "vector": "f32x4", "threads": threads}
    plain, _ = _check(workload, config, seed=3)
    assert "i8x16.shuffle" in plain.kernels[0].source
    program, _ = _check(workload, {**config, "subsample": 1}, seed=3)
    assert [b.size for b in program.buffers if b.role == "temp"] == [8 * 8 * 8]
    copy, main = program.kernels
    assert copy.name == "conv2d_0" and "select" not in copy.source
    assert "i8x16.shuffle" not in main.source and "replace_lane" not in main.source


@pytest.mark.parametrize("threads", [1, 2])
def test_a_1x1_conv_on_rows_of_7_reads_them_from_a_copy_with_rows_of_8(threads):
    """With ``align`` (on by default where rows are unaligned) a 1x1 conv on 7x7 pixels reads its image from a
    copy whose rows are padded to 8 floats, so every 4-wide read starts on a 16-byte boundary; merged pixels
    (``merge_hw``) are read across rows, as they are."""
    workload = Workload.create("conv2d", [(1, 12, 7, 7), (8, 12, 1, 1), (8,)], {})
    config = {"tile_axis": "m", "tile_a": 4, "tile_b": 8, "merge_hw": 0, "vector": "f32x4_fma", "threads": threads}
    assert space(workload, "wasm").default()["align"] == 1
    program, full = _check(workload, config, seed=5)
    assert full["align"] == 1 and program.prepare == 1
    assert [b.size for b in program.buffers if b.role == "temp"] == [12 * 7 * 8]
    main = program.kernels[-1]
    assert "replace_lane" not in main.source and "(i32.const 56)" in main.source  # a channel: 7 rows of 8
    for unaligned in ({**config, "align": 0}, {**config, "merge_hw": 1}):
        plain, _ = _check(workload, unaligned, seed=5)
        assert not [b for b in plain.buffers if b.role == "temp"] and len(plain.kernels) == 1


def test_a_strided_1x1_conv_to_rows_of_7_makes_its_compact_copy_with_rows_of_8():
    """A stride-2 1x1 conv from 14x14 to 7x7 reads a compact copy; with ``align`` its rows are 8 floats (the
    eighth holds the default and no output reads it)."""
    workload = Workload.create("conv2d", [(1, 8, 14, 14), (16, 8, 1, 1)], {"strides": (2, 2)})
    config = {"tile_axis": "m", "tile_a": 4, "tile_b": 8, "merge_hw": 0, "subsample": 1, "vector": "f32x4"}
    for align, row in ((1, 8), (0, 7)):
        program, _ = _check(workload, {**config, "align": align}, seed=4)
        assert [b.size for b in program.buffers if b.role == "temp"] == [8 * 7 * row]


def test_align_is_offered_only_for_unaligned_rows_read_along_the_last_axis():
    """Rows of 8 are aligned already; a padded input is padded by ``pad``; a global pool reads its rows along a
    reduction axis, not along its output's last axis."""
    others = [
        Workload.create("conv2d", [(1, 3, 8, 8), (5, 3, 1, 1)], {}),
        Workload.create("conv2d", [(1, 3, 7, 7), (5, 3, 3, 3)], {"pads": (1, 1, 1, 1)}),
        Workload.create("global_avg_pool", [(1, 6, 7, 7)], {}),
    ]
    assert all("align" not in space(w, "wasm").default() for w in others)
    assert space(Workload.create("conv2d", [(1, 3, 14, 14), (5, 3, 1, 1)], {}), "wasm").default()["align"] == 1


def test_subsample_is_offered_only_for_inputs_read_at_a_stride():
    """Stride 1 reads nothing at a stride; a stride along rows only with padded columns would need a guard the
    copy does not take on (it pads the strided dimensions); dilated taps are not one window variable."""
    others = [
        Workload.create("conv2d", [(1, 3, 8, 8), (5, 3, 1, 1)], {}),
        Workload.create("conv2d", [(1, 3, 8, 8), (5, 3, 3, 3)], {"strides": (2, 1), "pads": (1, 1, 1, 1)}),
        Workload.create("conv2d", [(1, 3, 9, 9), (5, 3, 3, 3)], {"strides": (2, 2), "dilations": (2, 2)}),
    ]
    assert all("subsample" not in space(w, "wasm").default() for w in others)
    strided = [
        Workload.create("conv2d", [(1, 3, 8, 8), (5, 3, 1, 1)], {"strides": (2, 1)}),
        Workload.create("conv2d", [(1, 3, 8, 8), (5, 3, 3, 3)], {"strides": (2, 2), "pads": (1, 1, 1, 1)}),
        Workload.create("max_pool2d", [(1, 3, 8, 8)], {"kernel_shape": (3, 3), "strides": (2, 2)}),
    ]
    assert all(space(w, "wasm").default()["subsample"] == 0 for w in strided)


@pytest.mark.parametrize(
    ("op", "shapes", "attrs", "copy_shape"),
    [
        # ResNet-50's stem: 7 taps at stride 2 from 3 pixels before the edge, in two phases of 14 + 3 positions
        # (rows aligned to 20: ``align``)
        ("conv2d", [(1, 3, 28, 28), (8, 3, 7, 7), (8,)], {"strides": (2, 2), "pads": (3, 3, 3, 3)}, (2, 17, 2, 20)),
        # max pooling pads with -inf: the copy's border holds -inf, not 0
        ("max_pool2d", [(1, 5, 16, 16)], {"kernel_shape": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1)}, None),
    ],
)
def test_a_padded_strided_window_reads_its_phases_without_guards(op, shapes, attrs, copy_shape):
    """With ``subsample`` a padded stride-2 window reads a copy split into even and odd rows and columns,
    padded by the copy: the main kernel has no guard, no shuffle and no gather."""
    workload = Workload.create(op, shapes, attrs)
    config = {"tile_b": 8, "vector": "f32x4_fma", "subsample": 1, "unroll": 0}
    config |= {"tile_axis": "m"} if op == "conv2d" else {}
    program, full = _check(workload, config, seed=5)
    assert full["pad"] == 0
    (temp,) = [b for b in program.buffers if b.role == "temp"]
    if copy_shape:
        assert temp.size == shapes[0][1] * int(np.prod(copy_shape))
    copy, main = program.kernels
    assert "select" in copy.source or "v128.and" in copy.source  # the copy reads through the bounds guard: it pads
    assert "select" not in main.source and "i8x16.shuffle" not in main.source and "replace_lane" not in main.source


def test_a_gemv_with_a_transposed_weight_reads_it_packed_in_whole_vectors():
    """A classifier's Gemm on one image (transB: the weight's rows are the outputs) has no second tile axis; it
    read its weight lane by lane, 4 loads and 3 lane inserts per vector (MobileNet's 1280->1000 took 0.27 ms),
    and packed it reads whole vectors (0.08 ms)."""
    workload = Workload.create("gemm", [(1, 40), (24, 40), (24,)], {"transB": 1})
    assert "pack" in space(workload, "wasm").names
    plain, _ = _check(workload, {"tile_b": 8, "vector": "f32x4"}, seed=2)
    packed, _ = _check(workload, {"tile_b": 8, "vector": "f32x4", "pack": 1}, seed=2)
    assert "replace_lane" in plain.kernels[-1].source and "replace_lane" not in packed.kernels[-1].source


def test_pack_needs_a_weight_along_a_tiled_axis():
    """A matmul tiled along A's rows only (tile_b 1, plain JS) reads no weight along a tiled axis: its weight B
    does not depend on A's rows, so pack is invalid, and says why."""
    workload = Workload.create("matmul", [(16, 32), (32, 16)])
    problems = space(workload, "js").violations(
        {**space(workload, "js").default(), "tile_axis": "i0", "tile_a": 4, "tile_b": 1, "pack": 1}, LIMITS
    )
    assert problems == ["pack needs a weight read along one tiled axis of more than 1 (tile_a or tile_b)"]


def test_threaded_modules_share_their_memory_and_validate():
    workload = Workload.create("matmul", [(16, 32), (32, 16)])
    program, _ = _check(workload, {"threads": 2, "vector": "f32x4", "tile_b": 8})
    assert program.threads == 2 and "shared" in program.kernels[0].source
    config = wasmtime.Config()
    config.wasm_threads = True
    config.wasm_relaxed_simd = True
    engine = wasmtime.Engine(config)
    wasmtime.Module.validate(engine, base64.b64decode(program.kernels[0].binary))


def test_a_threaded_module_unshared_loads_where_a_shared_memory_cannot_be_linked():
    """wasmtime-py cannot link a shared memory, so the native runner flips a threaded module's memory import to
    unshared in its binary: the same length, and the module then links to a plain memory of that size."""
    workload = Workload.create("matmul", [(16, 32), (32, 16)])
    program, _ = _check(workload, {"threads": 2, "vector": "f32x4", "tile_b": 8})
    binary = base64.b64decode(program.kernels[0].binary)
    engine = wasm_runner._engine()
    pages = program.memory_bytes // wasm_runner.PAGE
    plain = wasmtime.Memory(store := wasmtime.Store(engine), wasmtime.MemoryType(wasmtime.Limits(pages, pages)))
    linker = wasmtime.Linker(engine)
    linker.define(store, "env", "memory", plain)
    with pytest.raises(wasmtime.WasmtimeError, match="memory"):
        linker.instantiate(store, wasmtime.Module(engine, binary))
    patched = wasm_runner.unshared(binary)
    assert len(patched) == len(binary) and sum(a != b for a, b in zip(patched, binary, strict=True)) == 1
    linker.instantiate(store, wasmtime.Module(engine, patched))
    single, _ = _check(workload, {"threads": 1, "vector": "f32x4", "tile_b": 8})
    assert wasm_runner.unshared(b := base64.b64decode(single.kernels[0].binary)) == b  # nothing shared: as it was


def test_seed_micro_kernels_are_valid_and_correct():
    """The template's rules of thumb (tried first by the tuner) are complete, valid configs that compute the op."""
    workload = Workload.create("conv2d", [(1, 8, 9, 9), (12, 8, 3, 3), (12,)], {"pads": (1, 1, 1, 1)})
    seeds = space(workload, "wasm").fix({"threads": 2}).seed_configs(LIMITS)
    assert len(seeds) >= 4 and all(c["threads"] == 2 and c["vector"] == "f32x4_fma" for c in seeds)
    assert [(c["tile_a"], c["tile_b"], c["wrap"]) for c in seeds[:3]] == [(6, 8, 1), (6, 8, 1), (2, 16, 0)]
    # rows of 9: wrapped first (no lane lost at a row's end), then a whole row per tile
    assert any(c["tile_b"] == 16 and not c["pad"] and not c["merge_hw"] for c in seeds)  # and unpadded: no copy
    for config in seeds:
        _check(workload, config)


@pytest.mark.parametrize(("split_fast", "written"), [(0, np.s_[:8, :]), (1, np.s_[:, :32])])
def test_with_split_fast_the_first_thread_computes_a_band_of_columns_not_of_rows(split_fast, written):
    """Threads take contiguous ranges of tiles: with B's columns the fastest tile coordinate, the first thread's
    range is the top rows (each thread then reads all of B), and with ``split_fast`` the left columns (half of B
    each, held in each core's cache). Run alone, the first thread's share writes that band and nothing else."""
    workload = Workload.create("matmul", [(16, 32), (32, 64)])
    config = {"tile_axis": "i0", "tile_a": 4, "tile_b": 8, "tile_order": "b", "vector": "f32x4"}
    program, _ = _check(workload, {**config, "threads": 2, "split_fast": split_fast})
    (kernel,) = program.kernels
    a, b = workload.opdef.random_inputs(workload.shapes, np.random.default_rng(1))
    writes = wasm_runner.input_writes(program, [a, b])
    half = (kernel.binary, kernel.grid[0] // 2, 1)  # the tiles of share(0, 2, tiles)
    (got,) = wasm_runner.execute(program.memory_bytes, 2, [half], writes, [(program.output.offset, 16 * 64)])
    got = got.reshape(16, 64)
    mask = np.zeros(got.shape, dtype=bool)
    mask[written] = True
    np.testing.assert_allclose(got[mask], (a @ b)[mask], rtol=1e-5, atol=1e-5)
    assert not got[~mask].any()


def test_split_fast_on_one_thread_is_the_same_kernel():
    """A record tuned at 2 threads with split_fast serves a 1-thread model (its thread count overridden): there it
    must still be valid, and it changes nothing."""
    workload = Workload.create("matmul", [(16, 32), (32, 64)])
    config = {"tile_axis": "i0", "tile_a": 4, "tile_b": 8, "vector": "f32x4", "threads": 1}
    plain, _ = _check(workload, config)
    split, _ = _check(workload, {**config, "split_fast": 1})
    assert split.kernels[0].source == plain.kernels[0].source
