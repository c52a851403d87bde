"""Bad input: every validation error names the op, the argument and what was expected."""

import pytest

from kgen.errors import OpError
from kgen.ops import Workload, get_op

CASES = [
    (
        "conv2d",
        [(1, 4, 8, 8), (8, 3, 3, 3)],
        {},
        "conv2d: weight has 3 input channels per group but input has 4 channels and group=1",
    ),
    (
        "conv2d",
        [(1, 4, 8, 8), (6, 1, 3, 3)],
        {"group": 4},
        "conv2d: weight has 6 output channels, which group=4 does not divide",
    ),
    (
        "conv2d",
        [(1, 4, 8, 8), (8, 4, 3, 3), (4,)],
        {},
        "conv2d: bias has shape (4,) but the output has 8 channels",
    ),
    (
        "conv2d",
        [(1, 4, 2, 8), (8, 4, 3, 3)],
        {},
        "conv2d: output would be empty along H: input size 2 with padding (0, 0) is smaller than the kernel's span 3",
    ),
    (
        "conv2d",
        [(1, 4, 8, 8), (8, 4, 3, 3)],
        {"strides": (0, 1)},
        "conv2d: attribute 'strides' values must be >= 1",
    ),
    ("conv2d", [(1, 4, 8, 8), (8, 4, 3, 3)], {"pads": (1, 1)}, "conv2d: attribute 'pads' must have 4 values"),
    (
        "conv2d",
        [(1, 4, 8, 8), (8, 4, 3, 3)],
        {"kernel_shape": (5, 5)},
        "conv2d: attribute 'kernel_shape' [5, 5] does not match the weight's [3, 3]",
    ),
    ("conv2d", [(4, 8, 8), (8, 4, 3, 3)], {}, "conv2d: input must have rank 4, got shape (4, 8, 8)"),
    ("conv2d", [(1, 4, 8, 8), (8, 4, 3, 3)], {"stride": (2, 2)}, "conv2d: unknown attribute 'stride'"),
    ("conv2d", [(1, 4, 8, 8), (8, 4, 3, 3)], {"group": "2"}, "conv2d: attribute 'group' must be an int"),
    ("conv2d", [(1, 4, 8, 8)], {}, "conv2d: expected 2 to 3 inputs (input, weight, bias), got 1"),
    (
        "conv_transpose2d",
        [(1, 4, 5, 5), (3, 2, 3, 3)],
        {},
        "conv_transpose2d: weight has 3 input channels but input has 4 channels",
    ),
    (
        "conv_transpose2d",
        [(1, 4, 5, 5), (4, 2, 3, 3)],
        {"strides": (2, 2), "output_padding": (2, 0)},
        "conv_transpose2d: attribute 'output_padding' [2, 0] must be smaller than the stride or the dilation",
    ),
    (
        "conv_transpose2d",
        [(1, 4, 1, 1), (4, 2, 1, 1)],
        {"pads": (1, 0, 1, 0)},
        "conv_transpose2d: output would be empty",
    ),
    ("max_pool2d", [(1, 2, 8, 8)], {}, "max_pool2d: attribute 'kernel_shape' is required"),
    (
        "max_pool2d",
        [(1, 2, 8, 8)],
        {"kernel_shape": (2, 2), "pads": (2, 0, 0, 0)},
        "max_pool2d: pads along H (2, 0) must be smaller than the window span 2",
    ),
    (
        "avg_pool2d",
        [(1, 2, 8, 8)],
        {"kernel_shape": (2, 2), "count_include_pad": 2},
        "avg_pool2d: attribute 'count_include_pad' must be one of 0, 1, got 2",
    ),
    ("global_avg_pool", [(4, 4)], {}, "global_avg_pool: input must have rank >= 3"),
    (
        "batch_norm",
        [(1, 3, 4, 4), (3,), (3,), (2,), (3,)],
        {},
        "batch_norm: mean has shape (2,) but the input has 3 channels",
    ),
    ("matmul", [(2, 5), (4, 3)], {}, "matmul: A has 5 columns but B has 4 rows"),
    ("attention", [(2, 3, 4), (2, 5, 6), (2, 6, 4)], {}, "attention: Q has 4 columns but K (transposed keys) has 5"),
    ("attention", [(2, 3, 4), (2, 4, 6), (2, 6, 4), (2, 6)], {}, "the mask of shape (2, 6) does not broadcast"),
    (
        "matmul",
        [(2, 2, 5), (3, 5, 3)],
        {},
        "matmul: shapes (2,) of A batch and (3,) of B batch do not broadcast",
    ),
    (
        "gemm",
        [(2, 5), (5, 3), (4, 3)],
        {},
        "gemm: C has shape (4, 3), which does not broadcast to the result (2, 3)",
    ),
    ("gemm", [(2, 5), (5, 3)], {"transA": 1}, "gemm: Aᵀ has 2 columns but B has 5 rows"),
    ("add", [(2, 3), (4,)], {}, "add: shapes (2, 3) of A and (4,) of B do not broadcast"),
    (
        "softmax",
        [(2, 3)],
        {"axis": 2},
        "softmax: attribute 'axis'=2 is out of range for rank 2 (expected -2..1)",
    ),
    ("reduce_sum", [(2, 3)], {"axes": (1, -1)}, "reduce_sum: attribute 'axes' [1, -1] names an axis twice"),
    (
        "concat",
        [(2, 3), (3, 3)],
        {"axis": 1},
        "concat: input 1 has shape (3, 3), which differs from input 0's",
    ),
    ("concat", [(2, 3)], {}, "concat: attribute 'axis' is required"),
    (
        "transpose",
        [(2, 3)],
        {"perm": (0, 0)},
        "transpose: attribute 'perm' [0, 0] is not a permutation of 0..1",
    ),
    (
        "reshape",
        [(2, 3, 4)],
        {"shape": (5, -1)},
        "reshape: cannot reshape 24 elements (input shape (2, 3, 4)) into [5, -1]",
    ),
    ("reshape", [(2, 3)], {"shape": (-1, -1)}, "reshape: attribute 'shape' [-1, -1] has more than one -1"),
    ("flatten", [(2, 3)], {"axis": 3}, "flatten: attribute 'axis'=3 is out of range for rank 2"),
    ("pad", [(2, 3)], {"pads": (1, 1)}, "pad: attribute 'pads' must have 4 values for rank 2"),
    (
        "pad",
        [(2, 3)],
        {"pads": (0, 3, 0, 0), "mode": "reflect"},
        "pad: mode 'reflect' needs pads smaller than each",
    ),
    (
        "pad",
        [(2, 3)],
        {"pads": (0, 0, 0, 0), "mode": "wrap"},
        "pad: attribute 'mode' must be one of constant, edge",
    ),
    ("relu", [(2, 0)], {}, "relu: input X has invalid shape (2, 0)"),
]


@pytest.mark.parametrize(("op", "shapes", "attrs", "message"), CASES, ids=[f"{c[0]}-{k}" for k, c in enumerate(CASES)])
def test_validation_error(op, shapes, attrs, message):
    with pytest.raises(OpError) as info:
        Workload.create(op, shapes, attrs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(f"{op}: ")


def test_unknown_op_lists_known_ones():
    with pytest.raises(OpError, match=r"conv3d: unknown op \(known ops: abs, add, and, attention, avg_pool2d"):
        get_op("conv3d")


def test_unsupported_dtype():
    with pytest.raises(OpError, match="relu: dtype 'float64' is not supported"):
        Workload.create("relu", [(2,)], dtype="float64")
