"""A default workload per op, used when the command line gives no shape (realistic, modest sizes)."""

from __future__ import annotations

from typing import Any

from kgen.ops.registry import all_ops

_UNARY = ([(1, 64, 56, 56)], {})
_BINARY = ([(1, 64, 56, 56), (1, 64, 1, 1)], {})

EXAMPLES: dict[str, tuple[list[tuple[int, ...]], dict[str, Any]]] = {
    # ResNet-50's second-stage 3x3 convolution
    "conv2d": ([(1, 64, 56, 56), (64, 64, 3, 3), (64,)], {"pads": (1, 1, 1, 1)}),
    "conv_transpose2d": ([(1, 64, 14, 14), (64, 32, 4, 4)], {"strides": (2, 2), "pads": (1, 1, 1, 1)}),
    "max_pool2d": ([(1, 64, 112, 112)], {"kernel_shape": (3, 3), "strides": (2, 2), "pads": (1, 1, 1, 1)}),
    "avg_pool2d": ([(1, 64, 56, 56)], {"kernel_shape": (3, 3), "strides": (1, 1), "pads": (1, 1, 1, 1)}),
    "global_avg_pool": ([(1, 2048, 7, 7)], {}),
    "batch_norm": ([(1, 64, 56, 56), (64,), (64,), (64,), (64,)], {}),
    "layer_norm": ([(1, 128, 384), (384,), (384,)], {}),  # MiniLM-L6's hidden states at sequence 128
    "rms_norm": ([(1, 128, 384), (384,)], {}),
    "instance_norm": ([(1, 64, 56, 56), (64,), (64,)], {}),
    "group_norm": ([(1, 64, 56, 56), (64,), (64,)], {"num_groups": 32}),
    "matmul": ([(256, 256), (256, 256)], {}),
    "gemm": ([(1, 2048), (1000, 2048), (1000,)], {"transB": 1}),
    "softmax": ([(1, 1000)], {"axis": -1}),
    # one layer of MiniLM-L6's heads at sequence 128 (12 heads of 32), with BERT's additive padding mask; the
    # scale as the graph holds it, 1 / sqrt(32) through float32
    "attention": (
        [(1, 12, 128, 32), (1, 12, 32, 128), (1, 12, 128, 32), (1, 1, 1, 128)],
        {"scale": 0.1767766983220412},
    ),
    "reduce_sum": ([(1, 64, 56, 56)], {"axes": (2, 3)}),
    "reduce_mean": ([(1, 64, 56, 56)], {"axes": (2, 3)}),
    "reduce_max": ([(1, 64, 56, 56)], {"axes": (1,)}),
    "reduce_min": ([(1, 64, 56, 56)], {"axes": (1,)}),
    **{op: ([(1, 64, 56, 56)], {"axes": (1,)}) for op in ("reduce_sum_square", "reduce_l1")},
    "reduce_l2": ([(1, 3, 49, 32)], {"axes": (-1,)}),  # Swin-v2's cosine attention: each head's query norms
    "cumsum": ([(1, 128)], {"axis": 1}),  # RoBERTa's position ids, counted over the attention mask
    "concat": ([(1, 64, 28, 28), (1, 32, 28, 28)], {"axis": 1}),
    "transpose": ([(1, 64, 56, 56)], {"perm": (0, 2, 3, 1)}),
    "reshape": ([(1, 2048, 1, 1)], {"shape": (1, -1)}),
    "permute": ([(1, 128, 384)], {"view": (1, 128, 12, 32), "perm": (0, 2, 1, 3), "shape": (1, 12, 128, 32)}),
    "flatten": ([(1, 2048, 7, 7)], {"axis": 1}),
    "pad": ([(1, 64, 56, 56)], {"pads": (0, 0, 1, 1, 0, 0, 1, 1)}),
    "slice": ([(1, 116, 28, 28)], {"starts": (58,), "ends": (116,), "axes": (1,)}),  # ShuffleNet-v2's split
    "expand": ([(1, 1, 384)], {"shape": (1, 128, 384)}),
    "tile": ([(1, 1, 384)], {"repeats": (1, 128, 1)}),
    "lrn": ([(1, 96, 55, 55)], {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 2.0}),  # AlexNet's
    "resize": ([(1, 64, 28, 28)], {"scales": (2, 2), "mode": "linear"}),
    **{
        op: _UNARY
        for op in ("relu", "sigmoid", "tanh", "exp", "neg", "abs", "sqrt", "log", "reciprocal", "erf", "hard_swish")
    },
    **{op: _UNARY for op in ("elu", "softplus", "hard_sigmoid", "silu", "floor", "ceil", "trunc", "not")},
    **{op: _BINARY for op in ("mod", "equal", "less", "less_or_equal", "greater", "greater_or_equal", "and", "or")},
    # a causal mask choosing between attention scores and a large negative value (GPT-2's)
    "where": ([(1, 1, 128, 128), (1, 12, 128, 128), (1,)], {}),
    "pow": ([(1, 64, 56, 56)], {"exponent": 2.0}),
    **{op: ([(1, 128, 64)], {}) for op in ("sin", "cos")},  # a rotary embedding's angles: positions x frequencies
    "gelu": ([(1, 197, 768)], {}),  # ViT-Base's MLP
    "prelu": ([(1, 64, 56, 56), (64, 1, 1)], {}),
    "leaky_relu": ([(1, 64, 56, 56)], {"alpha": 0.1}),
    "clip": ([(1, 64, 56, 56)], {"min": 0.0, "max": 6.0}),
    **{op: _BINARY for op in ("add", "sub", "mul", "div", "max", "min")},
}

assert sorted(EXAMPLES) == sorted(op.name for op in all_ops()), "every op needs an example workload"


def resnet50_convs() -> list[tuple[list[tuple[int, ...]], dict[str, Any]]]:
    """The distinct conv2d layers of ResNet-50 v1.5 at batch 1, 224x224 (stride on the 3x3 convolutions)."""
    layers = [(3, 64, 224, 7, 2)]  # (in channels, out channels, input size, kernel, stride)
    c_in, size = 64, 56
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        out = width * 4
        layers += [(c_in, width, size, 1, 1), (width, width, size, 3, stride)]
        size //= stride
        layers += [(width, out, size, 1, 1), (c_in, out, size * stride, 1, stride), (out, width, size, 1, 1)]
        if stride != 1:
            layers.append((width, width, size, 3, 1))
        c_in = out
    seen, convs = set(), []
    for c, m, s, k, st in layers:
        if (c, m, s, k, st) in seen:
            continue
        seen.add((c, m, s, k, st))
        pad = k // 2
        convs.append(([(1, c, s, s), (m, c, k, k)], {"strides": (st, st), "pads": (pad, pad, pad, pad)}))
    return convs
