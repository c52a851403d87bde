"""Models built in code, with seeded random weights, as ONNX (nothing is downloaded): ResNet-50 v1 (torchvision's
structure), a MobileNet-v2-like net, a MobileNet-v3-like net, a ConvNeXt-like net, a small ViT, a conditional DCGAN
generator and a small MLP. They are exported in
different opsets and forms (Clip bounds as inputs, initializers listed as graph inputs) so the frontend's
variants are exercised."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base: str, array: np.ndarray) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], extra_outputs: int = 0, **attrs) -> str:
        """A node; ``extra_outputs`` declares outputs past the first (a Dropout's mask) that nothing reads."""
        out = self.name(op.lower())
        outputs = [out] + [self.name(f"{op.lower()}_unused") for _ in range(extra_outputs)]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=out, **attrs))
        return out

    def conv(
        self, x: str, c_in: int, c_out: int, k: int, stride: int = 1, group: int = 1, bias: bool = False, pad=None
    ) -> str:
        fan_in = c_in // group * k * k
        w = self.rng.standard_normal((c_out, c_in // group, k, k)) * np.sqrt(2.0 / fan_in)
        ins = [x, self.const("w", w.astype(np.float32))]
        if bias:
            ins.append(self.const("b", (0.1 * self.rng.standard_normal(c_out)).astype(np.float32)))
        pad = k // 2 if pad is None else pad
        return self.node("Conv", ins, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group)

    def linear(self, x: str, c_in: int, c_out: int) -> str:
        """PyTorch's nn.Linear on a tensor of any rank as torch.onnx.export writes it: MatMul, then Add."""
        w = self.rng.standard_normal((c_in, c_out)) * np.sqrt(1.0 / c_in)
        b = 0.1 * self.rng.standard_normal(c_out)
        y = self.node("MatMul", [x, self.const("linear_w", w.astype(np.float32))])
        return self.node("Add", [y, self.const("linear_b", b.astype(np.float32))])

    def layer_norm(self, x: str, c: int, decomposed: bool = False) -> str:
        """LayerNormalization over the last axis, or (``decomposed``) as exporters before opset 17 write it."""
        scale = self.const("ln_g", self.rng.uniform(0.8, 1.2, c).astype(np.float32))
        bias = self.const("ln_b", (0.1 * self.rng.standard_normal(c)).astype(np.float32))
        if not decomposed:
            return self.node("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-6)
        centered = self.node("Sub", [x, self.node("ReduceMean", [x], axes=[-1])])
        variance = self.node("ReduceMean", [self.node("Pow", [centered, self.scalar(2.0)])], axes=[-1])
        root = self.node("Sqrt", [self.node("Add", [variance, self.scalar(1e-6)])])
        return self.node("Add", [self.node("Mul", [self.node("Div", [centered, root]), scale]), bias])

    def scalar(self, value: float) -> str:
        """A rank-0 float constant, as exporters write a Python number."""
        return self.const("scalar", np.array(value, np.float32))

    def gelu_erf(self, x: str) -> str:
        """GELU as exporters before opset 20 write it: x · 0.5 · (1 + erf(x / sqrt(2)))."""
        e = self.node("Erf", [self.node("Div", [x, self.scalar(1.4142135381698608)])])
        return self.node("Mul", [self.node("Mul", [x, self.node("Add", [e, self.scalar(1.0)])]), self.scalar(0.5)])

    def gelu_tanh(self, x: str) -> str:
        """GELU's tanh form as GPT-2 writes it (gelu_new): 0.5 · x · (1 + tanh(sqrt(2 / pi) · (x + 0.044715 · x³)))."""
        cube = self.node("Mul", [self.node("Pow", [x, self.scalar(3.0)]), self.scalar(0.044715)])
        inner = self.node("Mul", [self.node("Add", [x, cube]), self.scalar(0.7978845608028654)])
        one_plus = self.node("Add", [self.node("Tanh", [inner]), self.scalar(1.0)])
        return self.node("Mul", [self.node("Mul", [x, self.scalar(0.5)]), one_plus])

    def hard_swish_ppocr(self, x: str) -> str:
        """PP-OCR's hard-swish: x · relu6(x + 3) / 6 with rank-0 constants."""
        shifted = self.node("Clip", [self.node("Add", [x, self.scalar(3.0)]), self.scalar(0.0), self.scalar(6.0)])
        return self.node("Div", [self.node("Mul", [x, shifted]), self.scalar(6.0)])

    def bn(self, x: str, c: int, gamma: float = 1.0) -> str:
        rng = self.rng
        params = [
            gamma * rng.uniform(0.8, 1.2, c),
            0.1 * rng.standard_normal(c),
            0.1 * rng.standard_normal(c),
            rng.uniform(0.8, 1.2, c),
        ]
        names = [
            self.const(n, p.astype(np.float32)) for n, p in zip(("gamma", "beta", "mean", "var"), params, strict=True)
        ]
        return self.node("BatchNormalization", [x, *names], epsilon=1e-5)

    def gemm(self, x: str, c_in: int, c_out: int, scale: float | None = None) -> str:
        w = self.rng.standard_normal((c_out, c_in)) * (scale or np.sqrt(2.0 / c_in))
        b = 0.1 * self.rng.standard_normal(c_out)
        return self.node(
            "Gemm", [x, self.const("fc_w", w.astype(np.float32)), self.const("fc_b", b.astype(np.float32))], transB=1
        )

    def model(
        self, name: str, inputs: list[tuple[str, list[int]]], output: str, out_shape: list[int], opset: int, **kw
    ) -> onnx.ModelProto:
        # an input named like a token id or a mask is int64, as Hugging Face's exports have them
        graph_inputs = [
            helper.make_tensor_value_info(
                n, TensorProto.INT64 if n.endswith(("_ids", "_mask")) else TensorProto.FLOAT, s
            )
            for n, s in inputs
        ]
        if kw.get("initializers_as_inputs"):
            graph_inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in self.inits]
        outputs = [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)]
        graph = helper.make_graph(self.nodes, name, graph_inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="kgen.zoo")
        model.ir_version = 7
        onnx.checker.check_model(model)
        return model


def resnet50(seed: int = 0, size: int = 224) -> onnx.ModelProto:
    """ResNet-50 v1 as torchvision builds it (stride on the 3x3 convolutions), BN unfolded, opset 13."""
    b = _Builder(seed)
    x = b.node("Relu", [b.bn(b.conv("input", 3, 64, 7, 2), 64)])
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c_in = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for k in range(blocks):
            s = stride if k == 0 else 1
            y = b.node("Relu", [b.bn(b.conv(x, c_in, width, 1), width)])
            y = b.node("Relu", [b.bn(b.conv(y, width, width, 3, s), width)])
            y = b.bn(b.conv(y, width, width * 4, 1), width * 4, gamma=0.5)
            skip = x if k else b.bn(b.conv(x, c_in, width * 4, 1, s), width * 4)
            x = b.node("Relu", [b.node("Add", [y, skip])])
            c_in = width * 4
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    x = b.gemm(x, 2048, 1000, scale=np.sqrt(1.0 / 2048))
    return b.model("resnet50", [("input", [1, 3, size, size])], x, [1, 1000], opset=13)


def mobilenet_v2(seed: int = 0, size: int = 224) -> onnx.ModelProto:
    """MobileNet-v2's structure (inverted residuals, depthwise 3x3, ReLU6 as Clip with bounds as inputs), opset 13."""
    b = _Builder(seed)
    low, high = b.const("relu6_min", np.float32(0.0)), b.const("relu6_max", np.float32(6.0))

    def relu6(v: str) -> str:
        return b.node("Clip", [v, low, high])

    x = relu6(b.bn(b.conv("input", 3, 32, 3, 2), 32))
    c_in = 32
    for t, c, n, s in (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ):
        for k in range(n):
            stride = s if k == 0 else 1
            hidden = c_in * t
            y = x if t == 1 else relu6(b.bn(b.conv(x, c_in, hidden, 1), hidden))
            y = relu6(b.bn(b.conv(y, hidden, hidden, 3, stride, group=hidden), hidden))
            y = b.bn(b.conv(y, hidden, c, 1), c, gamma=0.5)
            x = b.node("Add", [x, y]) if stride == 1 and c_in == c else y
            c_in = c
    x = relu6(b.bn(b.conv(x, c_in, 1280, 1), 1280))
    x = b.node("Flatten", [b.node("GlobalAveragePool", [x])], axis=1)
    x = b.gemm(x, 1280, 1000, scale=np.sqrt(1.0 / 1280))
    return b.model("mobilenet_v2", [("input", [1, 3, size, size])], x, [1, 1000], opset=13)


def dcgan_generator(seed: int = 0, weights: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """A conditional DCGAN generator: noise 100 + one-hot label 10 (one input of 110, as the seed page feeds it)
    -> Gemm -> BN -> ReLU -> reshape 128x7x7 -> ConvTranspose 4x4/2 + BN + ReLU -> ConvTranspose 4x4/2 -> Tanh:
    a 1x1x28x28 image in [-1, 1]. Opset 11. ``weights`` (the trained ones, by role name) replace the seeded ones."""
    b = _Builder(seed)
    rng = b.rng
    w = {
        "fc_w": rng.standard_normal((110, 128 * 49)) * np.sqrt(2.0 / 110),
        "fc_b": 0.1 * rng.standard_normal(128 * 49),
        "bn1": rng.uniform(0.8, 1.2, (4, 128 * 49)) * np.array([[1], [0.1], [0.1], [1]]),
        "up1_w": rng.standard_normal((128, 64, 4, 4)) * np.sqrt(2.0 / (128 * 4)),
        "bn2": rng.uniform(0.8, 1.2, (4, 64)) * np.array([[1], [0.1], [0.1], [1]]),
        "up2_w": rng.standard_normal((64, 1, 4, 4)) * np.sqrt(1.0 / (64 * 4)),
        "up2_b": np.zeros(1),
    }
    w.update(weights or {})

    def bn(x: str, role: str) -> str:
        names = [b.const(f"{role}_{n}", w[role][k].astype(np.float32)) for k, n in enumerate(("g", "b", "m", "v"))]
        return b.node("BatchNormalization", [x, *names], epsilon=1e-5)

    x = b.node(
        "Gemm", ["z", b.const("fc_w", w["fc_w"].astype(np.float32)), b.const("fc_b", w["fc_b"].astype(np.float32))]
    )
    x = b.node("Relu", [bn(x, "bn1")])
    x = b.node("Reshape", [x, b.const("shape", np.array([1, 128, 7, 7], np.int64))])
    x = b.node(
        "ConvTranspose",
        [x, b.const("up1_w", w["up1_w"].astype(np.float32))],
        kernel_shape=[4, 4],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
    )
    x = b.node("Relu", [bn(x, "bn2")])
    up2 = [b.const("up2_w", w["up2_w"].astype(np.float32)), b.const("up2_b", w["up2_b"].astype(np.float32))]
    x = b.node("ConvTranspose", [x, *up2], kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])
    x = b.node("Tanh", [x])
    return b.model("dcgan_generator", [("z", [1, 110])], x, [1, 1, 28, 28], opset=11)


def mlp(seed: int = 0) -> onnx.ModelProto:
    """An 8x8-digit classifier: 64 -> 128 -> 64 -> 10, softmax; opset 7, initializers also listed as inputs."""
    b = _Builder(seed)
    x = b.node("Relu", [b.gemm("x", 64, 128)])
    x = b.node("Relu", [b.gemm(x, 128, 64)])
    x = b.node("Softmax", [b.gemm(x, 64, 10)], axis=1)
    return b.model("mlp", [("x", [1, 64])], x, [1, 10], opset=7, initializers_as_inputs=True)


#: MobileNet-v3's inverted residual blocks: (expanded channels, out channels, kernel, stride, squeeze-excite,
#: activation); the small test net's four, and torchvision's mobilenet_v3_large's fifteen
MOBILENET_V3_BLOCKS = (
    (16, 16, 3, 2, True, "re"),
    (72, 24, 3, 2, False, "re"),
    (96, 40, 5, 2, True, "hs"),
    (240, 40, 5, 1, True, "hs"),
)
MOBILENET_V3_LARGE_BLOCKS = (
    (16, 16, 3, 1, False, "re"),
    (64, 24, 3, 2, False, "re"),
    (72, 24, 3, 1, False, "re"),
    (72, 40, 5, 2, True, "re"),
    (120, 40, 5, 1, True, "re"),
    (120, 40, 5, 1, True, "re"),
    (240, 80, 3, 2, False, "hs"),
    (200, 80, 3, 1, False, "hs"),
    (184, 80, 3, 1, False, "hs"),
    (184, 80, 3, 1, False, "hs"),
    (480, 112, 3, 1, True, "hs"),
    (672, 112, 3, 1, True, "hs"),
    (672, 160, 5, 2, True, "hs"),
    (960, 160, 5, 1, True, "hs"),
    (960, 160, 5, 1, True, "hs"),
)


def mobilenet_v3(seed: int = 0, size: int = 64, large: bool = False) -> onnx.ModelProto:
    """MobileNet-v3's building blocks as torchvision exports them (opset 14): HardSwish, squeeze-and-excite with
    HardSigmoid and a broadcast Mul, 5x5 depthwise convs, residuals; the stem's activation in PP-OCR's form
    (x · relu6(x + 3) / 6, rank-0 constants) and the classifier's hidden activation a PRelu, as detectors write
    them; the classifier's Dropout declares its mask. ``large``: torchvision's mobilenet_v3_large's blocks and
    head (960 channels, a 1280-wide HardSwish layer, 1000 classes) instead of the four blocks of the test net."""
    b = _Builder(seed)

    def act(v: str, kind: str) -> str:
        return b.node("HardSwish" if kind == "hs" else "Relu", [v])

    def squeeze_excite(v: str, c: int) -> str:
        s = b.node("GlobalAveragePool", [v])
        s = b.node("Relu", [b.conv(s, c, c // 4, 1, bias=True)])
        s = b.node("HardSigmoid", [b.conv(s, c // 4, c, 1, bias=True)], alpha=1.0 / 6.0, beta=0.5)
        return b.node("Mul", [v, s])

    x = b.hard_swish_ppocr(b.bn(b.conv("input", 3, 16, 3, 2), 16))
    c_in = 16
    for hidden, c, k, stride, se, kind in MOBILENET_V3_LARGE_BLOCKS if large else MOBILENET_V3_BLOCKS:
        y = x if hidden == c_in else act(b.bn(b.conv(x, c_in, hidden, 1), hidden), kind)
        y = act(b.bn(b.conv(y, hidden, hidden, k, stride, group=hidden), hidden), kind)
        if se:
            y = squeeze_excite(y, hidden)
        y = b.bn(b.conv(y, hidden, c, 1), c, gamma=0.5)
        x = b.node("Add", [x, y]) if stride == 1 and c_in == c else y
        c_in = c
    last, wide, classes = (960, 1280, 1000) if large else (240, 128, 10)
    x = b.node("HardSwish", [b.bn(b.conv(x, c_in, last, 1), last)])
    x = b.conv(b.node("GlobalAveragePool", [x]), last, wide, 1, bias=True)
    if large:
        x = b.node("Flatten", [b.node("HardSwish", [x])], axis=1)
    else:
        slope = b.const("prelu_slope", b.rng.uniform(0.05, 0.3, (wide, 1, 1)).astype(np.float32))
        x = b.node("Flatten", [b.node("PRelu", [x, slope])], axis=1)
    x = b.gemm(b.node("Dropout", [x], extra_outputs=1), wide, classes)
    return b.model("mobilenet_v3", [("input", [1, 3, size, size])], x, [1, classes], opset=14)


def convnext(seed: int = 0, size: int = 64) -> onnx.ModelProto:
    """ConvNeXt's structure as torchvision exports it (opset 17): a 4x4 patchify stem, blocks of a 7x7 depthwise
    conv, a channels-last LayerNormalization between Transposes, Linear (MatMul + Add on a 4-D tensor), GELU in
    its Erf form, Linear, a layer scale and a residual; a downsampling LayerNorm + 2x2 conv; the head's mean over
    H and W, LayerNorm and Gemm."""
    b = _Builder(seed)

    def channels_last(v: str) -> str:
        return b.node("Transpose", [v], perm=[0, 2, 3, 1])

    def channels_first(v: str) -> str:
        return b.node("Transpose", [v], perm=[0, 3, 1, 2])

    def block(v: str, c: int) -> str:
        y = channels_last(b.conv(v, c, c, 7, group=c, bias=True))
        y = b.linear(b.gelu_erf(b.linear(b.layer_norm(y, c), c, 4 * c)), 4 * c, c)
        y = b.node("Mul", [y, b.const("layer_scale", b.rng.uniform(0.1, 0.5, c).astype(np.float32))])
        return b.node("Add", [v, channels_first(y)])

    x = channels_first(b.layer_norm(channels_last(b.conv("input", 3, 32, 4, 4, bias=True, pad=0)), 32))
    x = block(block(x, 32), 32)
    x = b.conv(channels_first(b.layer_norm(channels_last(x), 32)), 32, 64, 2, 2, bias=True, pad=0)
    x = block(x, 64)
    x = b.layer_norm(b.node("ReduceMean", [x], axes=[-2, -1], keepdims=0), 64)
    x = b.gemm(x, 64, 10)
    return b.model("convnext", [("input", [1, 3, size, size])], x, [1, 10], opset=17)


def vit(
    seed: int = 0,
    size: int = 32,
    patch: int = 8,
    dim: int = 32,
    heads: int = 4,
    depth: int = 2,
    opset: int = 18,
    mlp: int = 2,
    classes: int = 10,
):
    """A Vision Transformer as timm exports it (opset 18): patch embedding conv, Reshape + Transpose to tokens, a
    class token Concat and position embedding Add, blocks of pre-LayerNorm multi-head attention (one qkv Linear,
    Reshape, Transpose, Gather of q, k and v, batched 4-D MatMuls, a scale by a rank-0 constant, Softmax) and an
    MLP with GELU in its Erf form; the class token taken by Gather, a Gemm head, and an Identity before the
    output. The first block scales q by Mul, the second the scores by Div, as exporters differ. Before opset 17
    its LayerNorms are decomposed, as exporters then write them. ``mlp``: the MLP's width over ``dim``."""
    b = _Builder(seed)
    tokens, head_dim = (size // patch) ** 2 + 1, dim // heads
    x = b.conv("input", 3, dim, patch, patch, bias=True, pad=0)
    x = b.node(
        "Transpose", [b.node("Reshape", [x, b.const("shape", np.array([1, dim, -1], np.int64))])], perm=[0, 2, 1]
    )
    cls = b.const("cls_token", (0.1 * b.rng.standard_normal((1, 1, dim))).astype(np.float32))
    x = b.node("Concat", [cls, x], axis=1)
    x = b.node("Add", [x, b.const("pos_embed", (0.1 * b.rng.standard_normal((1, tokens, dim))).astype(np.float32))])
    x = b.node("Dropout", [x], extra_outputs=1)
    for layer in range(depth):
        qkv = b.linear(b.layer_norm(x, dim, opset < 17), dim, 3 * dim)
        qkv = b.node("Reshape", [qkv, b.const("shape", np.array([1, tokens, 3, heads, head_dim], np.int64))])
        qkv = b.node("Transpose", [qkv], perm=[2, 0, 3, 1, 4])
        q, k, v = (b.node("Gather", [qkv, b.const("index", np.array(i, np.int64))], axis=0) for i in range(3))
        scale = b.scalar(head_dim**-0.5)
        if layer == 0:
            q = b.node("Mul", [q, scale])
        scores = b.node("MatMul", [q, b.node("Transpose", [k], perm=[0, 1, 3, 2])])
        if layer != 0:
            scores = b.node("Div", [scores, b.scalar(head_dim**0.5)])
        attended = b.node("MatMul", [b.node("Softmax", [scores], axis=-1), v])
        attended = b.node("Transpose", [attended], perm=[0, 2, 1, 3])
        attended = b.node("Reshape", [attended, b.const("shape", np.array([1, tokens, dim], np.int64))])
        x = b.node("Add", [x, b.linear(attended, dim, dim)])
        hidden = b.linear(b.gelu_erf(b.linear(b.layer_norm(x, dim, opset < 17), dim, mlp * dim)), mlp * dim, dim)
        x = b.node("Add", [x, hidden])
    x = b.node("Gather", [b.layer_norm(x, dim, opset < 17), b.const("index", np.array(0, np.int64))], axis=1)
    x = b.node("Identity", [b.gemm(x, dim, classes)])
    return b.model("vit", [("input", [1, 3, size, size])], x, [1, classes], opset=opset)


def _attention(b: _Builder, x: str, tokens: int, dim: int, heads: int, mask: str | None, causal: bool) -> str:
    """Multi-head self-attention as Hugging Face exports it: a qkv projection (one, Split, for a causal decoder as
    GPT-2 writes it; three otherwise, as BERT), heads by Reshape + Transpose, scores scaled by Div of a rank-0
    constant, the mask added or (causal) chosen by Where against a constant, Softmax, then heads merged."""
    head_dim = dim // heads
    if causal:
        qkv = b.linear(x, dim, 3 * dim)
        b.nodes.append(
            helper.make_node(
                "Split",
                [qkv, b.const("split", np.array([dim] * 3, np.int64))],
                parts := [b.name(p) for p in "qkv"],
                axis=2,
            )
        )
        q, k, v = parts
    else:
        q, k, v = (b.linear(x, dim, dim) for _ in range(3))
    split = b.const("heads", np.array([1, tokens, heads, head_dim], np.int64))
    q, v = (b.node("Transpose", [b.node("Reshape", [t, split])], perm=[0, 2, 1, 3]) for t in (q, v))
    k = b.node("Transpose", [b.node("Reshape", [k, split])], perm=[0, 2, 3, 1])
    scores = b.node("Div", [b.node("MatMul", [q, k]), b.scalar(head_dim**0.5)])
    if causal:
        lower = np.tril(np.ones((tokens, tokens), bool)).reshape(1, 1, tokens, tokens)
        scores = b.node("Where", [b.const("causal", lower), scores, b.scalar(-3.4028234663852886e38)])
    if mask is not None:
        scores = b.node("Add", [scores, mask])
    merged = b.node("Transpose", [b.node("MatMul", [b.node("Softmax", [scores], axis=-1), v])], perm=[0, 2, 1, 3])
    return b.linear(b.node("Reshape", [merged, b.const("merge", np.array([1, tokens, dim], np.int64))]), dim, dim)


def _embedding(b: _Builder, ids: str, rows: int, dim: int) -> tuple[str, np.ndarray]:
    """Gather(table, ids): the rows, and the table's values."""
    table = (0.5 * b.rng.standard_normal((rows, dim))).astype(np.float32)
    return b.node("Gather", [b.const("embedding", table), ids]), table


def bert(
    seed: int = 0,
    vocab: int = 100,
    tokens: int = 16,
    dim: int = 32,
    heads: int = 4,
    depth: int = 2,
    counted_positions: bool = False,
    ffn: int | None = None,
):
    """A BERT-like encoder as Hugging Face exports it at opset 14: int64 input_ids, token_type_ids and
    attention_mask; word and token-type embeddings by Gather on the ids, position embeddings by Gather on a
    constant; LayerNorm decomposed; the mask made additive (Unsqueeze, Cast, 1 - mask, times the lowest float);
    three projections for q, k and v; GELU in its Erf form. Its output is the last hidden state.

    ``counted_positions``: RoBERTa's position ids, counted from the ids in the graph: padding (id 1) keeps
    position 1, the others count up from 2 (Equal, Not, Cast, CumSum, Mul, Add, then Gather). ``ffn``: the
    feed-forward width (default twice ``dim``)."""
    b = _Builder(seed)
    x = b.node("Add", [_embedding(b, "input_ids", vocab, dim)[0], _embedding(b, "token_type_ids", 2, dim)[0]])
    if counted_positions:
        padding = b.const("padding_idx", np.array(1, np.int64))
        real = b.node("Cast", [b.node("Not", [b.node("Equal", ["input_ids", padding])])], to=TensorProto.INT32)
        counted = b.node("Mul", [b.node("CumSum", [real, b.const("axis", np.array(1, np.int64))]), real])
        positions = b.node("Add", [b.node("Cast", [counted], to=TensorProto.INT64), padding])
    else:
        positions = b.const("position_ids", np.arange(tokens, dtype=np.int64).reshape(1, tokens))
    x = b.layer_norm(b.node("Add", [x, _embedding(b, positions, tokens + 2, dim)[0]]), dim, decomposed=True)
    mask = b.node(
        "Cast",
        [b.node("Unsqueeze", ["attention_mask", b.const("axes", np.array([1, 2], np.int64))])],
        to=TensorProto.FLOAT,
    )
    mask = b.node("Mul", [b.node("Sub", [b.scalar(1.0), mask]), b.scalar(-3.4028234663852886e38)])
    for _ in range(depth):
        x = b.layer_norm(b.node("Add", [x, _attention(b, x, tokens, dim, heads, mask, causal=False)]), dim, True)
        wide = ffn or 2 * dim
        x = b.layer_norm(b.node("Add", [x, b.linear(b.gelu_erf(b.linear(x, dim, wide)), wide, dim)]), dim, True)
    inputs = [(n, [1, tokens]) for n in ("input_ids", "token_type_ids", "attention_mask")]
    return b.model("roberta" if counted_positions else "bert", inputs, x, [1, tokens, dim], opset=14)


def roberta(seed: int = 0, depth: int = 1):
    """A RoBERTa-like encoder: ``bert`` with its position ids counted from the token ids in the graph."""
    return bert(seed, depth=depth, counted_positions=True)


def gpt2(seed: int = 0, vocab: int = 100, tokens: int = 16, dim: int = 32, heads: int = 4, depth: int = 2):
    """A GPT-2-like decoder without a key/value cache as Hugging Face exports it (opset 17): int64 input_ids,
    token embeddings by Gather of a view of them, position embeddings on a constant Range; pre-LayerNorm blocks
    whose attention takes q, k and v from one projection by Split and masks the future with Where on a constant
    causal mask; GELU in its tanh form (gelu_new, with Pow 3); logits from the token embedding, tied."""
    b = _Builder(seed)
    ids = b.node("Reshape", ["input_ids", b.const("view", np.array([-1, tokens], np.int64))])  # as GPT-2's view
    tokens_in, table = _embedding(b, ids, vocab, dim)
    positions = b.node(
        "Unsqueeze",
        [
            b.node(
                "Range",
                [
                    b.const("start", np.array(0, np.int64)),
                    b.const("limit", np.array(tokens, np.int64)),
                    b.const("delta", np.array(1, np.int64)),
                ],
            ),
            b.const("axes", np.array([0], np.int64)),
        ],
    )
    x = b.node("Add", [tokens_in, _embedding(b, positions, 64, dim)[0]])
    for _ in range(depth):
        x = b.node("Add", [x, _attention(b, b.layer_norm(x, dim), tokens, dim, heads, None, causal=True)])
        h = b.linear(b.layer_norm(x, dim), dim, 4 * dim)
        h = b.gelu_tanh(h)
        x = b.node("Add", [x, b.linear(h, 4 * dim, dim)])
    tied = b.const("lm_head", np.ascontiguousarray(table.T))
    logits = b.node("MatMul", [b.layer_norm(x, dim), tied])
    return b.model("gpt2", [("input_ids", [1, tokens])], logits, [1, tokens, vocab], opset=17)


def llama(
    seed: int = 0, vocab: int = 100, tokens: int = 16, dim: int = 32, heads: int = 4, kv_heads: int = 2, depth: int = 2
):
    """A Llama-like decoder without a key/value cache as Hugging Face exports it (opset 17), Qwen2 and Mistral
    alike: int64 input_ids and position_ids; RMS norms with torch's rsqrt (1 / Sqrt) and a weight; rotary
    embeddings computed from the position ids in the graph (Cast, times the inverse frequencies, Concat, Cos, Sin)
    and applied to q and k with rotate_half (Slice, Neg, Concat); grouped-query attention, k and v repeated for
    their heads by Unsqueeze, Expand and Reshape; an additive causal mask; a SiLU-gated MLP; no biases."""
    b = _Builder(seed)
    head_dim, group = dim // heads, heads // kv_heads

    def proj(x: str, c_in: int, c_out: int) -> str:
        w = b.rng.standard_normal((c_in, c_out)) * np.sqrt(1.0 / c_in)
        return b.node("MatMul", [x, b.const("proj_w", w.astype(np.float32))])

    def rms(x: str) -> str:
        mean_square = b.node("ReduceMean", [b.node("Pow", [x, b.scalar(2.0)])], axes=[-1])
        inverse = b.node("Div", [b.scalar(1.0), b.node("Sqrt", [b.node("Add", [mean_square, b.scalar(1e-6)])])])
        weight = b.const("rms_w", b.rng.uniform(0.8, 1.2, dim).astype(np.float32))
        return b.node("Mul", [weight, b.node("Mul", [x, inverse])])

    def shape(*dims: int) -> str:
        return b.const("shape", np.array(dims, np.int64))

    def half(x: str, k: int) -> str:
        starts, ends = (0, head_dim // 2) if k == 0 else (head_dim // 2, head_dim)
        return b.node("Slice", [x, shape(starts), shape(ends), shape(-1)])

    def rotary(x: str, cos: str, sin: str) -> str:
        rotated = b.node("Concat", [b.node("Neg", [half(x, 1)]), half(x, 0)], axis=-1)
        return b.node("Add", [b.node("Mul", [x, cos]), b.node("Mul", [rotated, sin])])

    def split_heads(x: str, n: int) -> str:
        return b.node("Transpose", [b.node("Reshape", [x, shape(1, tokens, n, head_dim)])], perm=[0, 2, 1, 3])

    def repeated(x: str) -> str:
        wide = b.node("Expand", [b.node("Unsqueeze", [x, shape(2)]), shape(1, kv_heads, group, tokens, head_dim)])
        return b.node("Reshape", [wide, shape(1, heads, tokens, head_dim)])

    inverse_frequencies = 10000.0 ** (-np.arange(0, head_dim, 2, dtype=np.float32) / head_dim)
    positions = b.node("Unsqueeze", [b.node("Cast", ["position_ids"], to=TensorProto.FLOAT), shape(-1)])
    angles = b.node("Mul", [positions, b.const("inv_freq", inverse_frequencies.astype(np.float32))])
    angles = b.node("Unsqueeze", [b.node("Concat", [angles, angles], axis=-1), shape(1)])  # [1, 1, tokens, head]
    cos, sin = b.node("Cos", [angles]), b.node("Sin", [angles])
    future = np.triu(np.full((tokens, tokens), np.finfo(np.float32).min, np.float32), 1)
    causal = b.const("causal", future.reshape(1, 1, tokens, tokens))
    x = _embedding(b, "input_ids", vocab, dim)[0]
    for _ in range(depth):
        h = rms(x)
        q = rotary(split_heads(proj(h, dim, dim), heads), cos, sin)
        k = repeated(rotary(split_heads(proj(h, dim, kv_heads * head_dim), kv_heads), cos, sin))
        v = repeated(split_heads(proj(h, dim, kv_heads * head_dim), kv_heads))
        scores = b.node("MatMul", [q, b.node("Transpose", [k], perm=[0, 1, 3, 2])])
        scores = b.node("Add", [b.node("Mul", [scores, b.scalar(head_dim**-0.5)]), causal])
        attended = b.node("MatMul", [b.node("Softmax", [scores], axis=-1), v])
        merged = b.node("Reshape", [b.node("Transpose", [attended], perm=[0, 2, 1, 3]), shape(1, tokens, dim)])
        x = b.node("Add", [x, proj(merged, dim, dim)])
        h = rms(x)
        gate = proj(h, dim, 2 * dim)
        gated = b.node("Mul", [b.node("Mul", [gate, b.node("Sigmoid", [gate])]), proj(h, dim, 2 * dim)])
        x = b.node("Add", [x, proj(gated, 2 * dim, dim)])
    inputs = [("input_ids", [1, tokens]), ("position_ids", [1, tokens])]
    return b.model("llama", inputs, rms(x), [1, tokens, dim], opset=17)


def rnn_classifier(seed: int = 0, vocab: int = 50, tokens: int = 12, dim: int = 16, classes: int = 4):
    """A recurrent text classifier as PyTorch exports it (opset 14): int64 input_ids, an embedding by Gather,
    sequence first by Transpose, a GRU (linear_before_reset, as PyTorch's), its outputs' direction axis squeezed, a
    bidirectional LSTM whose last hidden states (Y_h of both directions) go through Transpose, Reshape, a Gemm and
    Softmax."""
    b = _Builder(seed)

    def weights(kind: str, gates: int, dirs: int, size: int) -> list[str]:
        scale = 1 / np.sqrt(size)
        shapes = {"W": (dirs, gates * dim, size), "R": (dirs, gates * dim, dim), "B": (dirs, 2 * gates * dim)}
        return [
            b.const(f"{kind}_{k}", (scale * b.rng.standard_normal(s)).astype(np.float32)) for k, s in shapes.items()
        ]

    x = b.node("Transpose", [_embedding(b, "input_ids", vocab, dim)[0]], perm=[1, 0, 2])
    gru_out = b.name("gru_y")
    b.nodes.append(
        helper.make_node("GRU", [x, *weights("gru", 3, 1, dim)], [gru_out], hidden_size=dim, linear_before_reset=1)
    )
    x = b.node("Squeeze", [gru_out, b.const("axes", np.array([1], np.int64))])
    last = b.name("lstm_h")
    lstm_inputs = [x, *weights("lstm", 4, 2, dim)]
    b.nodes.append(helper.make_node("LSTM", lstm_inputs, ["", last], hidden_size=dim, direction="bidirectional"))
    x = b.node(
        "Reshape", [b.node("Transpose", [last], perm=[1, 0, 2]), b.const("shape", np.array([1, 2 * dim], np.int64))]
    )
    x = b.node("Softmax", [b.gemm(x, 2 * dim, classes)], axis=-1)
    return b.model("rnn_classifier", [("input_ids", [1, tokens])], x, [1, classes], opset=14)


def minilm(seed: int = 0) -> onnx.ModelProto:
    """A MiniLM-L6-like sentence encoder (all-MiniLM-L6-v2's shape, Transformers.js's most used model): ``bert``
    with 6 layers, hidden 384, 12 heads, feed-forward 1536, BERT's 30522-token vocabulary, 128 tokens."""
    return bert(seed, vocab=30522, tokens=128, dim=384, heads=12, depth=6, ffn=1536)


def deit_small(seed: int = 0) -> onnx.ModelProto:
    """A DeiT-small-like ViT: ``vit`` at 224² in 16² patches, 12 layers, 384 wide, 6 heads, MLP 1536, 1000
    classes."""
    return vit(seed, size=224, patch=16, dim=384, heads=6, depth=12, mlp=4, classes=1000)


def mobilenet_v3_large(seed: int = 0) -> onnx.ModelProto:
    """A MobileNet-v3-large-like net at 224²: ``mobilenet_v3`` with torchvision's large blocks and head."""
    return mobilenet_v3(seed, size=224, large=True)


MODELS: dict[str, Callable[..., onnx.ModelProto]] = {
    "rnn_classifier": rnn_classifier,
    "bert": bert,
    "roberta": roberta,
    "minilm": minilm,
    "deit_small": deit_small,
    "mobilenet_v3_large": mobilenet_v3_large,
    "gpt2": gpt2,
    "llama": llama,
    "mobilenet_v3": mobilenet_v3,
    "convnext": convnext,
    "vit": vit,
    "vit_opset14": lambda seed=0: vit(seed, opset=14),
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "dcgan": dcgan_generator,
    "mlp": mlp,
}


def save(model: onnx.ModelProto, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def seeded_inputs(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Values for each graph input of ``model`` (not its initializers listed as inputs): standard-normal float32;
    for an int64 input, ids within the rows of every table it picks from by Gather, consecutive position ids, else
    (a mask) 0 or 1 with the last quarter 0, as padding."""
    rng = np.random.default_rng(seed)
    tables = {t.name: t.dims[0] for t in model.graph.initializer if t.dims}
    rows: dict[str, int] = {}
    for n in model.graph.node:
        if n.op_type == "Gather" and n.input[0] in tables:
            rows[n.input[1]] = min(rows.get(n.input[1], tables[n.input[0]]), tables[n.input[0]])
    feeds = {}
    for i in model.graph.input:
        if i.name in tables:
            continue
        shape = [d.dim_value for d in i.type.tensor_type.shape.dim]
        if i.type.tensor_type.elem_type == TensorProto.FLOAT:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
        elif i.name in rows:
            feeds[i.name] = rng.integers(0, rows[i.name], shape).astype(np.int64)
        elif i.name == "position_ids":  # consecutive, after a seeded number of earlier tokens
            feeds[i.name] = np.broadcast_to(rng.integers(0, 500) + np.arange(shape[-1]), shape).astype(np.int64)
        else:
            mask = np.ones(shape, np.int64)
            mask[..., shape[-1] - shape[-1] // 4 :] = 0
            feeds[i.name] = mask
    return feeds


def onnxruntime_outputs(model: onnx.ModelProto | Path | str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The reference executor's outputs: onnxruntime on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # no warnings about initializers listed as inputs
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"]).run(None, feeds)
