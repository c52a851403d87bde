"""Workloads: normalized, hashable, JSON round-trippable, with stable keys."""

import json

import pytest

from kgen.errors import KgenError
from kgen.ops import Workload
from kgen.ops.common import window_output_size

CONV = ("conv2d", [(1, 3, 224, 224), (64, 3, 7, 7)], {"strides": [2, 2], "pads": [3, 3, 3, 3]})


def test_defaults_are_filled_so_equal_work_has_equal_keys():
    explicit = Workload.create("conv2d", CONV[1], {**CONV[2], "dilations": (1, 1), "group": 1})
    implicit = Workload.create(*CONV)
    assert explicit == implicit
    assert hash(explicit) == hash(implicit)
    assert explicit.key == implicit.key


def test_key_is_stable():
    assert Workload.create(*CONV).key == (
        "conv2d/float32/1x3x224x224,64x3x7x7/dilations=1,1;group=1;kernel_shape=none;pads=3,3,3,3;strides=2,2"
    )
    assert Workload.create("leaky_relu", [(4,)]).key == "leaky_relu/float32/4/alpha=0.01"


def test_json_round_trip():
    w = Workload.create(*CONV)
    assert Workload.from_json(w.to_json()) == w
    assert json.loads(w.to_json())["attrs"]["strides"] == [2, 2]


def test_malformed_json_is_a_clear_error():
    with pytest.raises(KgenError, match="workload JSON is malformed"):
        Workload.from_json('{"shapes": []}')


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # (size, kernel, stride, dilation, pad_begin, pad_end, ceil_mode): sizes PyTorch and ONNX agree on
        ((224, 7, 2, 1, 3, 3, False), 112),
        ((112, 3, 2, 1, 1, 1, False), 56),
        ((6, 3, 2, 1, 0, 0, False), 2),
        ((6, 3, 2, 1, 0, 0, True), 3),
        ((5, 2, 2, 1, 1, 1, True), 3),  # the last window would start in the end padding: dropped
        ((7, 3, 1, 2, 0, 0, False), 3),
    ],
)
def test_window_output_size(args, expected):
    size, k, s, d, pb, pe, ceil = args
    assert window_output_size("op", "H", size, k, s, d, pb, pe, ceil) == expected


def test_tolerance_scales_with_the_output_magnitude():
    import numpy as np

    from kgen.checking import compare

    want = np.full(100, 50.0)
    assert compare(want + 4e-3, want, "webgpu").ok  # within 1e-4 * rms(50) + 1e-4 * 50
    assert not compare(want + 2e-2, want, "webgpu").ok
    assert not compare(np.array([1.0, np.nan]), np.array([1.0, 2.0]), "webgpu").ok
    assert compare(np.array([-np.inf, 1.0]), np.array([-np.inf, 1.0]), "webgpu").ok
