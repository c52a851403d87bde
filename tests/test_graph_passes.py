"""Each graph pass on its own (the optimized graph still computes what the model does), their effect on
ResNet-50, and memory planning by liveness."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgen.graph import memory, zoo
from kgen.graph.execute import evaluate
from kgen.graph.ir import Graph, Node, Value
from kgen.graph.onnx import from_model
from kgen.graph.passes import fold_batchnorm, fold_constants, fuse_epilogues, optimize, recognize
from kgen.graph.passes.fold_views import fold_views_into_transposes
from kgen.graph.passes.split_weights import split_wide_weights


@pytest.fixture(scope="module")
def resnet():
    return from_model(zoo.resnet50())


def same_outputs(a: Graph, b: Graph, atol=1e-4):
    rng = np.random.default_rng(1)
    feeds = {v.name: rng.standard_normal(v.shape).astype(np.float32) for v in a.inputs}
    want, got = evaluate(a, feeds), evaluate(b, feeds)
    for name in a.outputs:
        np.testing.assert_allclose(got[name], want[name], atol=atol, rtol=1e-4)


def test_fold_constants_evaluates_nodes_of_constants():
    rng = np.random.default_rng(0)
    constants = {"w": rng.standard_normal((4, 3)).astype(np.float32)}
    nodes = [
        Node("t", "transpose", ["w"], "wt", {"perm": (1, 0)}),
        Node("mm", "matmul", ["x", "wt"], "y", {}),
    ]
    values = {"x": Value("x", (2, 3)), "wt": Value("wt", (3, 4)), "y": Value("y", (2, 4))}
    graph = Graph([values["x"]], ["y"], values, constants, nodes)
    folded = fold_constants(graph)
    assert [n.op for n in folded.nodes] == ["matmul"]
    np.testing.assert_array_equal(folded.constants["wt"], constants["w"].T)
    same_outputs(graph, folded)


def test_batchnorm_folds_into_conv_conv_transpose_and_gemm():
    for model in (zoo.resnet50(size=32), zoo.dcgan_generator()):
        graph = from_model(model)
        folded = fold_batchnorm(graph)
        assert "batch_norm" not in folded.summary()
        same_outputs(graph, folded, atol=1e-3)


def test_epilogues_fuse_bias_activation_and_residual(resnet):
    fused = fuse_epilogues(fold_batchnorm(resnet))
    ops = fused.summary()
    assert ops["conv2d+add+relu"] == 16 and "relu" not in ops and "add" not in ops
    same_outputs(from_model(zoo.mobilenet_v2(size=32)), optimize(from_model(zoo.mobilenet_v2(size=32))), atol=1e-3)


def test_resnet50_node_counts(resnet):
    before = resnet.summary()
    after = optimize(resnet).summary()
    assert (before["batch_norm"], before["relu"], before["add"]) == (53, 49, 16)
    assert len(resnet.nodes) == 175
    assert sum(after.values()) == 57  # every BN folded; every relu and residual add fused
    assert after == {
        "conv2d": 4,  # the downsample convs: their output is the residual the other branch adds
        "conv2d+add+relu": 16,
        "conv2d+relu": 33,
        "flatten": 1,
        "gemm": 1,
        "global_avg_pool": 1,
        "max_pool2d": 1,
    }


def test_a_value_used_twice_is_not_fused():
    nodes = [
        Node("a", "relu", ["x"], "r", {}),
        Node("b", "neg", ["r"], "n", {}),
        Node("c", "add", ["r", "n"], "y", {}),
    ]
    values = {k: Value(k, (3,)) for k in ("x", "r", "n", "y")}
    graph = Graph([values["x"]], ["y"], values, {}, nodes)
    fused = fuse_epilogues(graph)
    assert [n.op for n in fused.nodes] == ["relu", "neg"]
    assert [e.op for e in fused.nodes[1].epilogue] == ["add"]
    same_outputs(graph, fused)


# -- memory planning -------------------------------------------------------------------------------------------

tenant_lists = st.lists(
    st.tuples(st.integers(1, 1000), st.integers(-1, 8), st.integers(0, 8)), min_size=1, max_size=12
).map(lambda ts: [memory.Tenant(f"t{k}", n, a, max(a, b)) for k, (n, a, b) in enumerate(ts)])


@settings(max_examples=200, deadline=None)
@given(tenant_lists)
def test_offsets_never_overlap_for_tenants_alive_together(tenants):
    offsets, peak = memory.plan_offsets(tenants)
    for a in tenants:
        assert offsets[a.name] % memory.ALIGN == 0 and offsets[a.name] + a.nbytes <= peak
        for b in tenants:
            if a is not b and a.overlaps(b):
                assert offsets[a.name] + a.nbytes <= offsets[b.name] or offsets[b.name] + b.nbytes <= offsets[a.name]


@settings(max_examples=200, deadline=None)
@given(tenant_lists)
def test_pooled_buffers_hold_one_live_tenant_at_a_time(tenants):
    slot_of, sizes = memory.plan_pool(tenants)
    for a in tenants:
        assert sizes[slot_of[a.name]] >= a.nbytes
        for b in tenants:
            if a is not b and a.overlaps(b):
                assert slot_of[a.name] != slot_of[b.name]


def test_lifetimes_keep_outputs_and_prepared_copies():
    steps = [(["x"], ["a"]), (["a"], ["b", "tmp"]), (["b"], ["y"])]
    sizes = dict.fromkeys(["x", "a", "b", "tmp", "y", "pack"], 4)
    life = {t.name: (t.first, t.last) for t in memory.lifetimes(steps, sizes, keep=["y"], always=["pack"])}
    assert life == {"x": (-1, 0), "a": (0, 1), "b": (1, 2), "tmp": (1, 1), "y": (2, 3), "pack": (-1, 3)}


# -- recognition of decomposed ops ------------------------------------------------------------------------------


def _chain(build, shape=(2, 3, 8), opset=14):
    """A model whose one output is ``build(b, "x")`` on an input of ``shape`` (zoo's builder: seeded constants)."""
    b = zoo._Builder(0)
    out = build(b, "x")
    return b.model("pattern", [("x", list(shape))], out, list(shape), opset=opset)


def _recognized(model):
    graph = from_model(model)
    recognized = recognize(graph)
    same_outputs(graph, recognized, atol=1e-5)
    return [n.op for n in recognized.nodes]


def _gelu_half_last(b, x):
    return b.gelu_erf(x)


def _gelu_half_first(b, x):
    half = b.node("Mul", [x, b.scalar(0.5)])
    scaled = b.node("Mul", [x, b.scalar(0.7071067811865476)])
    return b.node("Mul", [half, b.node("Add", [b.scalar(1.0), b.node("Erf", [scaled])])])


def _rms_div(b, x):
    mean_square = b.node("ReduceMean", [b.node("Mul", [x, x])], axes=[-1])
    normed = b.node("Div", [x, b.node("Sqrt", [b.node("Add", [mean_square, b.scalar(1e-6)])])])
    return b.node("Mul", [normed, b.const("w", np.linspace(0.5, 1.5, 8, dtype=np.float32))])


def _rms_reciprocal(b, x):
    mean_square = b.node("ReduceMean", [b.node("Pow", [x, b.scalar(2.0)])], axes=[2])
    inverse = b.node("Reciprocal", [b.node("Sqrt", [b.node("Add", [mean_square, b.scalar(1e-5)])])])
    return b.node("Mul", [x, inverse])


def _rms_rsqrt(b, x):
    """Llama's: x · (1 / sqrt(mean(x²) + eps)) (torch's rsqrt), then the weight times it."""
    mean_square = b.node("ReduceMean", [b.node("Pow", [x, b.scalar(2.0)])], axes=[-1])
    inverse = b.node("Div", [b.scalar(1.0), b.node("Sqrt", [b.node("Add", [mean_square, b.scalar(1e-6)])])])
    return b.node("Mul", [b.const("w", np.linspace(0.5, 1.5, 8, dtype=np.float32)), b.node("Mul", [x, inverse])])


@pytest.mark.parametrize(
    ("build", "ops"),
    [
        (_gelu_half_last, ["gelu"]),
        (_gelu_half_first, ["gelu"]),
        (lambda b, x: b.gelu_tanh(x), ["gelu"]),
        (lambda b, x: b.hard_swish_ppocr(x), ["hard_swish"]),
        (lambda b, x: b.node("Mul", [b.node("Sigmoid", [x]), x]), ["silu"]),
        (lambda b, x: b.layer_norm(x, 8, decomposed=True), ["layer_norm"]),
        (_rms_div, ["rms_norm"]),
        (_rms_reciprocal, ["rms_norm"]),
        (_rms_rsqrt, ["rms_norm"]),
    ],
)
def test_decomposed_forms_become_one_op(build, ops):
    assert _recognized(_chain(build)) == ops


def test_a_pattern_whose_inner_value_is_read_elsewhere_stays_as_written():
    def erf_read_twice(b, x):
        erf = b.node("Erf", [b.node("Div", [x, b.scalar(1.4142135)])])
        gelu = b.node("Mul", [b.node("Mul", [x, b.node("Add", [erf, b.scalar(1.0)])]), b.scalar(0.5)])
        return b.node("Add", [gelu, erf])

    def mean_over_a_middle_axis(b, x):
        centered = b.node("Sub", [x, b.node("ReduceMean", [x], axes=[1])])
        variance = b.node("ReduceMean", [b.node("Pow", [centered, b.scalar(2.0)])], axes=[1])
        return b.node("Div", [centered, b.node("Sqrt", [b.node("Add", [variance, b.scalar(1e-5)])])])

    assert "gelu" not in _recognized(_chain(erf_read_twice))
    assert "layer_norm" not in _recognized(_chain(mean_over_a_middle_axis))


def _attention(b, x, scale="div", mask="add", scores_read_twice=False, guard=False):
    """softmax(x · xᵀ (scaled) + mask) · x over a (2, 3, 8) input: 2 heads of 3 tokens, 8 values each. ``guard``:
    Where(IsNaN(p), 0, p) on the probabilities, as torch's exporter writes it, with the mask's first row all -inf."""
    scores = b.node("MatMul", [x, b.node("Transpose", [x], perm=[0, 2, 1])])
    if scale == "div":
        scores = b.node("Div", [scores, b.scalar(8**0.5)])
    elif scale == "mul":
        scores = b.node("Mul", [b.scalar(8**-0.5), scores])
    elif scale == "per_head":  # Swin-v2's learned temperature: one value per head, [heads, 1, 1]
        scores = b.node("Mul", [scores, b.const("temperature", np.array([[[0.3]], [[2.0]]], np.float32))])
    causal = np.tril(np.ones((3, 3), bool))
    if mask == "add":
        scores = b.node("Add", [b.const("mask", np.where(causal, 0, -1e4).astype(np.float32)), scores])
    elif mask == "where":
        scores = b.node("Where", [b.const("causal", causal), scores, b.scalar(-3.4028234663852886e38)])
    elif mask == "bias_and_mask":  # MPNet's: a constant relative-position bias, then a mask computed per key
        bias = b.node("Add", [scores, b.const("bias", np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3))])
        per_key = b.node("Transpose", [b.node("ReduceMean", [x], axes=[-1])], perm=[0, 2, 1])
        scores = b.node("Add", [bias, per_key])
    elif mask == "-inf":  # the first query sees no key
        scores = b.node("Add", [scores, b.const("mask", np.where(causal & (np.arange(3) > 0)[:, None], 0, -np.inf))])
    probs = b.node("Softmax", [scores], axis=-1)
    if guard:
        probs = b.node("Where", [b.node("IsNaN", [probs]), b.scalar(0.0), probs])
    out = b.node("MatMul", [probs, x])
    return b.node("Add", [out, b.node("MatMul", [scores, x])]) if scores_read_twice else out


@pytest.mark.parametrize(
    ("scale", "mask", "guard"),
    [
        *(("div", "add", False), ("mul", "where", False), (None, None, False), ("div", None, False)),
        *(("mul", "-inf", True), ("per_head", "add", False), ("div", "bias_and_mask", False)),
    ],
)
def test_attention_as_exporters_write_it_is_one_op(scale, mask, guard):
    """With torch's guard, a query that sees no key gives zeros in the op as in the chain (same_outputs); a scale
    per head moves onto Q (a Mul before the op); a bias and a mask become their sum (an Add before the op)."""
    ops = _recognized(_chain(lambda b, x: _attention(b, x, scale, mask, guard=guard)))
    extra = {"per_head": ["mul"], "bias_and_mask": ["reduce_mean", "transpose", "add"]}
    assert ops == ["transpose", *extra.get(scale, extra.get(mask, [])), "attention"]


def test_attention_of_shifted_windows_with_their_mask_on_a_view_of_the_scores_is_one_op():
    """Swin's: scores [windows, heads, N, N] plus a bias per head, viewed as [1, windows, heads, N, N] to add a
    mask per window, viewed back: one attention, the bias and the windows' mask one constant."""

    def swin(b, x):  # x: 2 windows of 2 heads, 3 tokens of 8 values
        scores = b.node("MatMul", [x, b.node("Transpose", [x], perm=[0, 1, 3, 2])])
        bias = b.const("bias", np.linspace(-1, 1, 18, dtype=np.float32).reshape(1, 2, 3, 3))
        grouped = b.node("Reshape", [b.node("Add", [scores, bias]), b.const("view", np.array([1, 2, 2, 3, 3]))])
        shifted = np.where(np.arange(18).reshape(1, 2, 1, 3, 3) % 4 == 0, -100.0, 0.0).astype(np.float32)
        masked = b.node("Add", [grouped, b.const("shifted", shifted)])
        probs = b.node("Softmax", [b.node("Reshape", [masked, b.const("back", np.array([2, 2, 3, 3]))])], axis=-1)
        return b.node("MatMul", [probs, x])

    assert _recognized(_chain(swin, (2, 2, 3, 8))) == ["transpose", "attention"]


def test_attention_whose_scores_are_read_elsewhere_or_left_unfused_stays_a_chain():
    assert "attention" not in _recognized(_chain(lambda b, x: _attention(b, x, scores_read_twice=True)))
    graph = from_model(_chain(_attention))
    assert "attention" not in [n.op for n in optimize(graph, unfused=["attention"]).nodes]
    assert "attention" in [n.op for n in optimize(graph).nodes]


def test_a_weight_larger_than_a_texture_is_split_into_row_blocks_that_are_views_of_it():
    """The MLP's gemms (64x128, 128x64 and 64x10 weights, each with a bias and an activation) as exported (transB,
    as PyTorch's Linear: rows of outputs, joined) and transposed (rows along the reduction: partial products)."""
    exported = optimize(from_model(zoo.mlp()))
    assert [n.attrs["transB"] for n in exported.nodes if n.op == "gemm"] == [1, 1, 1]
    flipped = dataclasses.replace(
        exported,
        nodes=[dataclasses.replace(n, attrs={**n.attrs, "transB": 0}) if n.op == "gemm" else n for n in exported.nodes],
        constants={k: np.ascontiguousarray(v.T) if v.ndim == 2 else v for k, v in exported.constants.items()},
    )
    for graph, joined in ((exported, True), (flipped, False)):
        first = graph.nodes[0]
        assert first.op == "gemm" and [e.op for e in first.epilogue] == ["relu"]
        split, views = split_wide_weights(graph, 3000)  # the 64x128 and 128x64 weights in blocks, not the 64x10
        same_outputs(graph, split)
        rows, row = graph.constants[first.inputs[1]].shape
        step = 3000 // row
        assert [v.offset for v in views.values() if v.tensor == first.inputs[1]] == list(
            range(0, rows * row, step * row)
        )
        for name, view in views.items():
            block = split.constants[name]
            whole = graph.constants[view.tensor].ravel()
            np.testing.assert_array_equal(block.ravel(), whole[view.offset : view.offset + block.size])
        assert first.inputs[1] not in split.constants  # no copy of it beside its blocks
        ops = [n.op for n in split.nodes]
        assert (ops.count("concat"), ops.count("slice")) == ((2, 0) if joined else (0, 3 + 3))
        assert split_wide_weights(graph, 128 * 64)[1] == {}  # weights that fit stay whole


def test_the_reshapes_around_attentions_transposes_fold_into_permutes_that_compute_the_same():
    """BERT's heads are split from each projection by a reshape and a transpose, and merged back by a transpose
    and a reshape: on textures each is a copy, so each transpose takes the reshapes beside it in (a permute); a
    reshape read twice, or one beside no transpose, stays."""
    model = zoo.bert()
    graph = optimize(from_model(model))
    folded = fold_views_into_transposes(graph)
    feeds = zoo.seeded_inputs(model)
    np.testing.assert_array_equal(evaluate(folded, feeds)[graph.outputs[0]], evaluate(graph, feeds)[graph.outputs[0]])
    before, after = graph.summary(), folded.summary()
    assert before.get("transpose", 0) >= 4 and "permute" not in before
    assert after["permute"] == before["transpose"] and "transpose" not in after
    assert after["reshape"] == before["reshape"] - before["transpose"] == 1  # the mask's unsqueeze stays
    split = next(n for n in folded.nodes if n.op == "permute" and len(n.attrs["view"]) > len(graph.shape(n.inputs[0])))
    assert split.attrs["perm"] == (0, 2, 1, 3) and graph.producer()[split.inputs[0]].op == "matmul"
    assert fold_views_into_transposes(folded) is folded  # nothing left to fold
