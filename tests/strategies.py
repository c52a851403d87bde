"""Hypothesis strategies: one per op, drawing valid (shapes, attributes) including odd sizes, strides > 1,
dilation, groups and padding on every side."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from kgen.ops import get_op
from kgen.ops.image import COORDINATES
from tests.browser_cases import UNSWEPT_REDUCTIONS

dims = st.integers(1, 6)
small_float = st.floats(-2.0, 2.0, allow_nan=False, width=32)


def shape_of(rank_min: int = 1, rank_max: int = 4, side_max: int = 6):
    return st.lists(st.integers(1, side_max), min_size=rank_min, max_size=rank_max).map(tuple)


@st.composite
def conv2d_case(draw):
    depthwise = draw(st.booleans())
    g = draw(st.integers(1, 4))
    cg = 1 if depthwise else draw(st.integers(1, 3))
    mg = draw(st.integers(1, 2 if depthwise else 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    h = draw(st.integers(max(1, span_h - pads[0] - pads[2]), span_h + 7))
    w = draw(st.integers(max(1, span_w - pads[1] - pads[3]), span_w + 7))
    n = draw(st.integers(1, 2))
    shapes = [(n, cg * g, h, w), (mg * g, cg, kh, kw)]
    if draw(st.booleans()):
        shapes.append((mg * g,))
    return shapes, {"strides": (sh, sw), "pads": pads, "dilations": (dh, dw), "group": g}


@st.composite
def conv_transpose2d_case(draw):
    g = draw(st.integers(1, 3))
    cg, mg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    oph = draw(st.integers(0, max(sh, dh) - 1))
    opw = draw(st.integers(0, max(sw, dw) - 1))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    assume(sh * (h - 1) + oph + (kh - 1) * dh + 1 - pads[0] - pads[2] >= 1)
    assume(sw * (w - 1) + opw + (kw - 1) * dw + 1 - pads[1] - pads[3] >= 1)
    shapes = [(draw(st.integers(1, 2)), cg * g, h, w), (cg * g, mg, kh, kw)]
    if draw(st.booleans()):
        shapes.append((mg * g,))
    attrs = {
        "strides": (sh, sw),
        "pads": pads,
        "dilations": (dh, dw),
        "group": g,
        "output_padding": (oph, opw),
    }
    return shapes, attrs


@st.composite
def pool_case(draw, avg: bool):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    pads = (
        draw(st.integers(0, span_h - 1)),
        draw(st.integers(0, span_w - 1)),
        draw(st.integers(0, span_h - 1)),
        draw(st.integers(0, span_w - 1)),
    )
    h = draw(st.integers(max(1, span_h - pads[0] - pads[2]), span_h + 7))
    w = draw(st.integers(max(1, span_w - pads[1] - pads[3]), span_w + 7))
    attrs = {
        "kernel_shape": (kh, kw),
        "strides": (sh, sw),
        "pads": pads,
        "dilations": (dh, dw),
        "ceil_mode": draw(st.integers(0, 1)),
    }
    if avg:
        attrs["count_include_pad"] = draw(st.integers(0, 1))
    return [(draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w)], attrs


@st.composite
def matmul_case(draw):
    batch_a, batch_b = draw(mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3)).input_shapes
    m, k, n = draw(dims), draw(dims), draw(dims)
    a = (k,) if draw(st.integers(0, 4)) == 0 else (*batch_a, m, k)
    b = (k,) if draw(st.integers(0, 4)) == 0 else (*batch_b, k, n)
    return [a, b], {}


@st.composite
def gemm_case(draw):
    m, k, n = draw(dims), draw(dims), draw(dims)
    ta, tb = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    shapes = [(k, m) if ta else (m, k), (n, k) if tb else (k, n)]
    c = draw(st.sampled_from([None, (m, n), (n,), (1, n), (m, 1), (1,)]))
    if c is not None:
        shapes.append(c)
    return shapes, {"transA": ta, "transB": tb, "alpha": draw(small_float), "beta": draw(small_float)}


@st.composite
def batch_norm_case(draw):
    shape = draw(shape_of(2, 4))
    c = (shape[1],)
    return [shape, c, c, c, c], {"epsilon": draw(st.floats(1e-6, 1e-2))}


@st.composite
def layer_norm_case(draw, bias: bool = True):
    shape = draw(shape_of())
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    normalized = shape[axis % len(shape) :]
    kept = normalized[len(normalized) - draw(st.integers(0, len(normalized))) :]
    params = [tuple(d if draw(st.booleans()) else 1 for d in kept) or (1,)]
    if bias and draw(st.booleans()):
        params.append(normalized)
    return [shape, *params], {"axis": axis, "epsilon": draw(st.floats(1e-6, 1e-2))}


@st.composite
def group_norm_case(draw, instance: bool):
    groups = draw(st.integers(1, 3))
    channels = groups * draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), channels, *draw(shape_of(1, 2, side_max=5)))
    attrs = {"epsilon": draw(st.floats(1e-6, 1e-2))}
    if not instance:
        attrs["num_groups"] = groups
    return [shape, (channels,), (channels,)], attrs


@st.composite
def unary_case(draw, op: str):
    attrs = {}
    if op == "leaky_relu":
        attrs["alpha"] = draw(st.floats(0.0, 1.0))
    if op in ("elu", "hard_sigmoid"):
        attrs["alpha"] = draw(st.floats(0.05, 2.0))
    if op == "hard_sigmoid":
        attrs["beta"] = draw(small_float)
    if op == "pow":
        attrs["exponent"] = draw(st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, -1.0, 0.5, -0.5, 1.5, -2.5]))
    if op == "gelu":
        attrs["approximate"] = draw(st.sampled_from(["none", "tanh"]))
    if op == "clip":
        lo, hi = draw(small_float), draw(small_float)
        attrs.update({"min": min(lo, hi), "max": max(lo, hi)} if draw(st.booleans()) else {"max": hi})
    return [draw(shape_of())], attrs


@st.composite
def binary_case(draw):
    shapes = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=4, max_side=5)).input_shapes
    return list(shapes), {}


@st.composite
def prelu_case(draw):
    """A slope that broadcasts to X: per channel (C, 1, 1) as exporters write it, or any suffix of X's shape."""
    x = draw(shape_of())
    kept = [d if draw(st.booleans()) else 1 for d in x[len(x) - draw(st.integers(0, len(x))) :]]
    return [x, tuple(kept) or (1,)], {}


@st.composite
def where_case(draw):
    shapes = draw(mutually_broadcastable_shapes(num_shapes=3, min_dims=1, max_dims=4, max_side=5)).input_shapes
    return list(shapes), {}


@st.composite
def softmax_case(draw):
    shape = draw(shape_of())
    return [shape], {"axis": draw(st.integers(-len(shape), len(shape) - 1))}


@st.composite
def reduce_case(draw):
    shape = draw(shape_of())
    rank = len(shape)
    axes = None
    if draw(st.booleans()):
        chosen = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
        axes = tuple(a - rank if draw(st.booleans()) else a for a in chosen)
    attrs = {"keepdims": draw(st.integers(0, 1))}
    if axes is not None:
        attrs["axes"] = axes
    return [shape], attrs


@st.composite
def cumsum_case(draw):
    shape = draw(shape_of())
    attrs = {
        "axis": draw(st.integers(-len(shape), len(shape) - 1)),
        "exclusive": draw(st.integers(0, 1)),
        "reverse": draw(st.integers(0, 1)),
    }
    return [shape], attrs


@st.composite
def attention_case(draw):
    """Q, Kᵀ, V of any batch rank, and a mask that broadcasts (BERT's [B, 1, 1, T], a causal [1, 1, S, T])."""
    batch = draw(shape_of(0, 2, 3))
    s, t, d, dv = draw(dims), draw(st.integers(1, 11)), draw(dims), draw(st.integers(1, 9))
    shapes = [(*batch, s, d), (*batch, d, t), (*batch, t, dv)]
    if draw(st.booleans()):
        full = (*batch, s, t)
        shapes.append(tuple(1 if draw(st.booleans()) else n for n in full)[draw(st.integers(0, len(full) - 1)) :])
    return shapes, {"scale": draw(st.sampled_from([1.0, 0.125, 0.5]))}


@st.composite
def concat_case(draw):
    base = list(draw(shape_of(1, 3)))
    axis = draw(st.integers(0, len(base) - 1))
    shapes = []
    for _ in range(draw(st.integers(1, 4))):
        s = list(base)
        s[axis] = draw(dims)
        shapes.append(tuple(s))
    return shapes, {"axis": axis - len(base) if draw(st.booleans()) else axis}


@st.composite
def transpose_case(draw):
    shape = draw(shape_of())
    perm = draw(st.permutations(range(len(shape)))) if draw(st.booleans()) else None
    return [shape], ({"perm": tuple(perm)} if perm is not None else {})


def _regrouped(draw, total: int) -> list[int]:
    """A shape of ``total`` values: up to 4 dimensions, drawn from its divisors."""
    target, left = [], total
    for _ in range(draw(st.integers(0, 3))):
        divisors = [d for d in range(1, left + 1) if left % d == 0]
        d = draw(st.sampled_from(divisors))
        target.append(d)
        left //= d
    target.append(left)
    return draw(st.permutations(target))


@st.composite
def reshape_case(draw):
    shape = draw(shape_of())
    target = _regrouped(draw, math.prod(shape))
    target = [0 if k < len(shape) and d == shape[k] and draw(st.booleans()) else d for k, d in enumerate(target)]
    if draw(st.booleans()):
        free = [k for k, d in enumerate(target) if d != 0]
        if free:
            target[draw(st.sampled_from(free))] = -1
    return [shape], {"shape": tuple(target)}


@st.composite
def permute_case(draw):
    shape = draw(shape_of())
    view = tuple(_regrouped(draw, math.prod(shape)))
    perm = tuple(draw(st.permutations(range(len(view)))))
    return [shape], {"view": view, "perm": perm, "shape": tuple(_regrouped(draw, math.prod(shape)))}


@st.composite
def flatten_case(draw):
    shape = draw(shape_of())
    return [shape], {"axis": draw(st.integers(-len(shape), len(shape)))}


@st.composite
def pad_case(draw):
    shape = draw(shape_of(1, 3, side_max=5))
    mode = draw(st.sampled_from(["constant", "edge", "reflect"]))
    if mode == "reflect":
        pads = [draw(st.integers(-1, d - 1)) for d in shape] + [draw(st.integers(-1, d - 1)) for d in shape]
    else:
        pads = [draw(st.integers(-2, 3)) for _ in range(2 * len(shape))]
    rank = len(shape)
    assume(all(shape[k] + pads[k] + pads[k + rank] >= 1 for k in range(rank)))
    attrs = {"pads": tuple(pads), "mode": mode}
    if mode == "constant":
        attrs["value"] = draw(small_float)
    return [shape], attrs


@st.composite
def slice_case(draw):
    shape = draw(shape_of())
    axes = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
    starts, ends, steps = [], [], []
    for a in axes:
        d = shape[a]
        step = draw(st.sampled_from([1, 1, 2, 3, -1, -2]))
        start = draw(st.integers(-d, d - 1))
        first = start % d
        if step > 0:
            end = draw(st.sampled_from([d, 2**63 - 1, first + 1, -1 if first < d - 1 else d]))
        else:
            end = draw(st.sampled_from([-(2**63), -d - 1, first - 1 if first > 0 else -d - 1]))
        starts.append(start)
        ends.append(end)
        steps.append(step)
    attrs = {"starts": tuple(starts), "ends": tuple(ends)}
    if draw(st.booleans()) or axes != list(range(len(axes))):
        attrs["axes"] = tuple(a - len(shape) if draw(st.booleans()) else a for a in axes)
    if draw(st.booleans()) or any(s != 1 for s in steps):
        attrs["steps"] = tuple(steps)
    return [shape], attrs


@st.composite
def expand_case(draw):
    x, target = draw(mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=4, max_side=5)).input_shapes
    return [x], {"shape": target}


@st.composite
def tile_case(draw):
    shape = draw(shape_of(1, 4, side_max=4))
    return [shape], {"repeats": tuple(draw(st.integers(1, 3)) for _ in shape)}


@st.composite
def lrn_case(draw):
    shape = draw(shape_of(3, 4))
    attrs = {"size": draw(st.integers(1, 5)), "alpha": draw(st.floats(1e-4, 0.5)), "beta": draw(st.floats(0.25, 1.0))}
    return [shape], {**attrs, "bias": draw(st.floats(0.5, 3.0))}


@st.composite
def resize_case(draw):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(3, 5)), draw(st.integers(3, 5)))
    attrs = {
        "scales": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "divisors": (draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        "mode": draw(st.sampled_from(["nearest", "linear", "cubic"])),
        "coordinate_transformation_mode": draw(st.sampled_from(COORDINATES)),
        "nearest_mode": draw(st.sampled_from(["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])),
    }
    return [shape], attrs


BINARY_OPS = (
    *("add", "sub", "mul", "div", "max", "min"),
    *("equal", "less", "less_or_equal", "greater", "greater_or_equal", "and", "or"),
)
UNARY_OPS = (
    *("relu", "leaky_relu", "sigmoid", "tanh", "clip", "exp", "neg", "abs", "sqrt", "log", "reciprocal", "pow"),
    *("erf", "gelu", "hard_sigmoid", "hard_swish", "elu", "softplus", "silu", "floor", "ceil", "trunc", "not"),
    *("sin", "cos"),
)
CASES = {
    "conv2d": conv2d_case(),
    "conv_transpose2d": conv_transpose2d_case(),
    "max_pool2d": pool_case(avg=False),
    "avg_pool2d": pool_case(avg=True),
    "global_avg_pool": shape_of(3, 5).map(lambda s: ([s], {})),
    "batch_norm": batch_norm_case(),
    "layer_norm": layer_norm_case(),
    "rms_norm": layer_norm_case(bias=False),
    "instance_norm": group_norm_case(instance=True),
    "group_norm": group_norm_case(instance=False),
    "matmul": matmul_case(),
    "gemm": gemm_case(),
    "softmax": softmax_case(),
    "attention": attention_case(),
    "reduce_sum": reduce_case(),
    "reduce_mean": reduce_case(),
    "reduce_max": reduce_case(),
    "reduce_min": reduce_case(),
    **{op: reduce_case() for op in ("reduce_sum_square", "reduce_l1", "reduce_l2")},
    "cumsum": cumsum_case(),
    "concat": concat_case(),
    "transpose": transpose_case(),
    "reshape": reshape_case(),
    "permute": permute_case(),
    "flatten": flatten_case(),
    "pad": pad_case(),
    "slice": slice_case(),
    "expand": expand_case(),
    "tile": tile_case(),
    "lrn": lrn_case(),
    "resize": resize_case(),
    **{op: unary_case(op) for op in UNARY_OPS},
    "prelu": prelu_case(),
    **{op: binary_case() for op in BINARY_OPS},
    "mod": st.tuples(binary_case(), st.sampled_from([0, 1])).map(lambda c: (c[0][0], {"fmod": c[1]})),
    "where": where_case(),
}


# ops of the elementwise family share one template whose knobs do not depend on the expression: the kernel tests
# that draw configs give each a third of the draws of the other ops (they still draw hundreds of that template's)
ELEMENTWISE = tuple(sorted(op for op in CASES if get_op(op).family == "elementwise"))
#: ops drawn fewer times: the elementwise ops, and the reductions that differ from reduce_sum and reduce_max only in
#: the expression each value or the result goes through (the same template and loops, which those two's draws cover)
LIGHT_OPS = (*ELEMENTWISE, *UNSWEPT_REDUCTIONS)
OTHER_OPS = tuple(sorted(op for op in CASES if op not in LIGHT_OPS))


@st.composite
def configs(draw, sp, limits):
    """A config of ``sp`` with every knob drawn from its values, valid under ``limits``: each knob is free, so a
    failure shrinks to the knob that matters (not a seed into ``Space.sample``)."""
    for _ in range(60):
        config = {k.name: draw(st.sampled_from(k.values), label=k.name) for k in sp.knobs}
        if not sp.violations(config, limits):
            return config
    assume(False)
    return None


def with_infinities(arrays, rng, share=0.15):
    """The first input with about ``share`` of its values set to +inf or -inf: what a padded max (whose padding is
    -inf), a clip or a softmax must carry through as numpy does."""
    x = arrays[0].copy()
    picks = rng.random(x.shape) < share
    x[picks] = np.where(rng.random(int(picks.sum())) < 0.5, np.inf, -np.inf)
    return [x, *arrays[1:]]
