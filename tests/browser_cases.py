"""Fixed workloads for browser tests: one with odd sizes and one with even sizes per op."""

from kgen.ops import get_op

UNARY = {
    "relu": {},
    "leaky_relu": {"alpha": 0.2},
    "sigmoid": {},
    "tanh": {},
    "clip": {"min": -0.5, "max": 0.7},
    "exp": {},
    "neg": {},
    "abs": {},
    "sqrt": {},
    "log": {},
    "reciprocal": {},
    "pow": {"exponent": 3.0},
    "erf": {},
    "gelu": {},
    "hard_sigmoid": {"alpha": 0.25, "beta": 0.4},
    "hard_swish": {},
    "elu": {"alpha": 0.7},
    "softplus": {},
    "silu": {},
    "floor": {},
    "ceil": {},
    "trunc": {},
    "not": {},
    "sin": {},
    "cos": {},
}
BINARY = ("add", "sub", "mul", "div", "max", "min", "equal", "less", "less_or_equal", "greater", "greater_or_equal")
BINARY += ("and", "or")

# the elementwise ops that the browser tests also build in every WebGL layout and plane count and every wasm variant
# (one of each arity); the others share their template, whose layouts and variants do not depend on the
# expression, and are built with the default and sampled configs
SWEPT_ELEMENTWISE = ("relu", "add", "prelu", "where")
# so are the reductions that differ from reduce_sum and reduce_max only in the expression around the sum
UNSWEPT_REDUCTIONS = ("reduce_mean", "reduce_min", "reduce_sum_square", "reduce_l1", "reduce_l2")


def swept(op: str) -> bool:
    """Whether the browser tests build ``op`` in every layout, plane count and variant."""
    if op in UNSWEPT_REDUCTIONS:
        return False
    return get_op(op).family != "elementwise" or op in SWEPT_ELEMENTWISE


def cases_of(op: str) -> list[tuple[list[tuple[int, ...]], dict]]:
    """The workloads the browser tests build ``op`` for: both where it is swept, else the first (odd sizes: whole
    vectors and a ragged tail), since only its expression differs from a swept op's."""
    return CASES[op] if swept(op) else CASES[op][:1]


CASES: dict[str, list[tuple[list[tuple[int, ...]], dict]]] = {
    "conv2d": [
        ([(1, 3, 13, 11), (5, 3, 3, 3), (5,)], {"strides": (2, 2), "pads": (1, 0, 2, 1)}),
        ([(2, 8, 8, 8), (8, 4, 3, 3)], {"pads": (1, 1, 1, 1), "group": 2, "dilations": (2, 1)}),
        ([(1, 6, 9, 9), (6, 1, 3, 3), (6,)], {"pads": (1, 1, 1, 1), "group": 6}),  # depthwise
        ([(1, 16, 8, 8), (8, 16, 1, 1)], {}),  # 1x1: implicit GEMM territory
    ],
    "conv_transpose2d": [
        ([(1, 3, 5, 7), (3, 2, 3, 3), (2,)], {"strides": (2, 2), "pads": (1, 1, 1, 1), "output_padding": (1, 0)}),
        ([(1, 4, 4, 4), (4, 2, 4, 4)], {"strides": (2, 2), "pads": (1, 1, 1, 1), "group": 2}),
    ],
    "max_pool2d": [
        ([(1, 3, 11, 9)], {"kernel_shape": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1), "ceil_mode": 1}),
        ([(2, 4, 8, 8)], {"kernel_shape": (2, 2), "strides": (2, 2)}),
    ],
    "avg_pool2d": [
        ([(1, 3, 11, 9)], {"kernel_shape": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1)}),
        ([(2, 4, 8, 8)], {"kernel_shape": (3, 3), "pads": (1, 1, 1, 1), "count_include_pad": 1}),
    ],
    "global_avg_pool": [([(1, 5, 7, 3)], {}), ([(2, 8, 4, 4)], {})],
    "batch_norm": [([(1, 3, 5, 7), (3,), (3,), (3,), (3,)], {}), ([(2, 4, 4, 4), (4,), (4,), (4,), (4,)], {})],
    "layer_norm": [([(3, 5, 7), (7,), (7,)], {}), ([(2, 4, 8), (4, 1)], {"axis": 1, "epsilon": 1e-3})],
    "rms_norm": [([(3, 5, 7), (7,)], {}), ([(2, 4, 8), (4, 8)], {"axis": -2})],
    "instance_norm": [([(1, 3, 5, 7), (3,), (3,)], {}), ([(2, 4, 8), (4,), (4,)], {})],
    "group_norm": [([(1, 6, 5, 7), (6,), (6,)], {"num_groups": 3}), ([(2, 4, 4, 4), (4,), (4,)], {"num_groups": 1})],
    "matmul": [([(7, 13), (13, 5)], {}), ([(2, 8, 16), (16, 12)], {}), ([(5,), (3, 5, 7)], {})],
    "gemm": [([(5, 7), (9, 7), (9,)], {"transB": 1, "alpha": 0.5, "beta": 2.0}), ([(4, 8), (4, 8)], {"transA": 1})],
    "attention": [
        ([(2, 5, 3), (2, 3, 7), (2, 7, 6), (1, 5, 7)], {"scale": 0.5}),  # keys and rows that no tile divides
        ([(1, 2, 8, 8), (1, 2, 8, 16), (1, 2, 16, 8), (1, 1, 1, 16)], {"scale": 0.25}),
    ],
    "softmax": [([(3, 7)], {"axis": -1}), ([(2, 4, 8)], {"axis": 1})],
    "reduce_sum": [([(3, 5, 7)], {"axes": (0, 2)}), ([(4, 8)], {"keepdims": 0})],
    "reduce_mean": [([(3, 5, 7)], {"axes": (-1,)}), ([(4, 8)], {"axes": (0,), "keepdims": 0})],
    "reduce_max": [([(3, 5, 7)], {"axes": (1,)}), ([(4, 8)], {})],
    "reduce_min": [([(3, 5, 7)], {"axes": (0, 2)}), ([(4, 8)], {"keepdims": 0})],
    "reduce_sum_square": [([(3, 5, 7)], {"axes": (1,)}), ([(4, 8)], {"keepdims": 0})],
    "reduce_l1": [([(3, 5, 7)], {"axes": (0, 2)}), ([(4, 8)], {})],
    "reduce_l2": [([(3, 5, 7)], {"axes": (-1,)}), ([(2, 4, 8)], {"axes": (1, 2), "keepdims": 0})],
    "cumsum": [([(3, 5, 7)], {"axis": 1}), ([(4, 9)], {"axis": -1, "exclusive": 1, "reverse": 1})],
    "concat": [([(3, 5), (3, 2), (3, 1)], {"axis": 1}), ([(2, 4), (6, 4)], {"axis": 0})],
    "transpose": [([(3, 5, 7)], {"perm": (2, 0, 1)}), ([(4, 8)], {})],
    "reshape": [([(3, 5, 7)], {"shape": (7, -1)}), ([(4, 8)], {"shape": (2, 0, -1)})],
    "permute": [  # attention's heads split from a matmul's output, and merged back
        ([(1, 6, 20)], {"view": (1, 6, 4, 5), "perm": (0, 2, 1, 3), "shape": (1, 4, 6, 5)}),
        ([(2, 3, 6, 4)], {"view": (2, 3, 6, 4), "perm": (0, 2, 1, 3), "shape": (2, 6, 12)}),
    ],
    "flatten": [([(3, 5, 7)], {"axis": 2}), ([(2, 4, 8)], {"axis": 1})],
    "pad": [
        ([(3, 5, 7)], {"pads": (1, 0, 2, 0, 3, -1), "value": 1.5}),
        ([(4, 8)], {"pads": (2, 2, 2, 2), "mode": "reflect"}),
        ([(4, 6)], {"pads": (1, 3, 2, 0), "mode": "edge"}),
    ],
    "slice": [
        ([(3, 5, 7)], {"starts": (1, -2), "ends": (2**63 - 1, 0), "axes": (0, 2), "steps": (1, -2)}),
        ([(4, 8)], {"starts": (2,), "ends": (6,), "axes": (1,)}),
    ],
    "expand": [([(3, 1, 7)], {"shape": (2, 1, 5, 1)}), ([(4, 1)], {"shape": (4, 8)})],
    "tile": [([(3, 5, 7)], {"repeats": (1, 2, 1)}), ([(4, 8)], {"repeats": (2, 3)})],
    "lrn": [([(1, 7, 5, 3)], {"size": 3, "alpha": 0.1, "bias": 2.0}), ([(2, 8, 4, 4)], {"size": 4})],
    "resize": [
        ([(1, 3, 5, 7)], {"scales": (2, 3), "mode": "linear"}),
        ([(1, 2, 7, 5)], {"scales": (3, 1), "divisors": (7, 2), "mode": "cubic"}),  # DINOv2's 37 -> 16, in small
        (
            [(2, 2, 7, 8)],
            {"scales": (8, 1), "divisors": (7, 2), "mode": "nearest", "coordinate_transformation_mode": "asymmetric"},
        ),
    ],
    **{op: [([(3, 5, 7)], attrs), ([(2, 4, 8)], attrs)] for op, attrs in UNARY.items()},
    **{op: [([(3, 1, 7), (5, 1)], {}), ([(2, 4, 8), (8,)], {})] for op in BINARY},
    "mod": [([(3, 1, 7), (5, 1)], {}), ([(2, 4, 8), (8,)], {"fmod": 1})],
    "where": [([(3, 1, 7), (5, 1), (1,)], {}), ([(4, 8), (2, 4, 8), (8,)], {})],
    "prelu": [([(1, 3, 5, 7), (3, 1, 1)], {}), ([(2, 4, 8), (8,)], {})],
}
