"""The ONNX frontend: every translated form gives onnxruntime's result (graphs run with the ops' numpy
references), and what kgen cannot run is a one-line error naming the node."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from kgen.graph import zoo
from kgen.graph.execute import evaluate
from kgen.graph.ir import GraphError
from kgen.graph.onnx import from_model, load
from kgen.graph.passes import optimize

RNG = np.random.default_rng(0)


def one_node(op, inputs, out_shape, attrs=None, consts=None, opset=13, extra_inputs=()):
    """A model of one node: ``inputs`` [(name, shape)] are graph inputs, ``consts`` {name: array} initializers."""
    consts = consts or {}
    names = [n for n, _ in inputs] + list(consts) + list(extra_inputs)
    node = helper.make_node(op, names, ["y"], name="the_node", **(attrs or {}))
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in consts.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def check_matches_ort(model, atol=1e-4):
    graph = from_model(model)
    feeds = {v.name: RNG.standard_normal(v.shape).astype(np.float32) for v in graph.inputs}
    (want,) = zoo.onnxruntime_outputs(model, feeds)
    got = evaluate(graph, feeds)[graph.outputs[0]]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=atol, rtol=1e-4)
    return graph


X = ("x", [1, 3, 9, 11])
W = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)


@pytest.mark.parametrize("mode", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_auto_pad(mode):
    check_matches_ort(one_node("Conv", [X], None, {"auto_pad": mode, "strides": [2, 2]}, {"w": W}))


@pytest.mark.parametrize("mode", ["SAME_UPPER", "VALID"])
def test_pool_auto_pad_and_ceil_mode(mode):
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": mode}
    check_matches_ort(one_node("MaxPool", [X], None, attrs))
    check_matches_ort(
        one_node("AveragePool", [X], None, {"kernel_shape": [3, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1})
    )
    check_matches_ort(
        one_node("AveragePool", [X], None, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1})
    )


def test_conv_transpose_output_shape():
    w = RNG.standard_normal((3, 2, 4, 4)).astype(np.float32)
    attrs = {"strides": [2, 2], "output_shape": [19, 22]}
    graph = check_matches_ort(one_node("ConvTranspose", [X], [1, 2, 19, 22], attrs, {"w": w}))
    assert graph.shape(graph.outputs[0]) == (1, 2, 19, 22)


def test_one_d_conv_and_pools_run_as_2d():
    x = ("x", [1, 3, 17])
    w = RNG.standard_normal((4, 3, 5)).astype(np.float32)
    graph = check_matches_ort(one_node("Conv", [x], None, {"pads": [2, 1], "strides": [2]}, {"w": w}))
    assert any(n.op == "conv2d" for n in graph.nodes)
    check_matches_ort(one_node("MaxPool", [x], None, {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}))


def test_pad_with_axes_and_constant_inputs():
    consts = {"pads": np.array([1, 2, 0, 3], np.int64), "value": np.array(0.5, np.float32), "axes": np.array([2, 3])}
    check_matches_ort(one_node("Pad", [X], None, {"mode": "constant"}, consts, opset=18))
    check_matches_ort(one_node("Pad", [X], None, {"mode": "reflect", "pads": [0, 0, 1, 1, 0, 0, 1, 1]}, opset=10))


def test_clip_bounds_as_inputs_and_attributes():
    consts = {"lo": np.array(-0.3, np.float32), "hi": np.array(0.4, np.float32)}
    check_matches_ort(one_node("Clip", [X], None, None, consts, opset=13))
    check_matches_ort(one_node("Clip", [X], None, {"min": -0.2, "max": 0.1}, opset=7))
    graph = from_model(one_node("Clip", [X], None, None, {"lo": np.array(0.0, np.float32)}, opset=13))
    assert graph.nodes[0].attrs["max"] == float("inf")


def test_nary_sum_max_min_chain_binary_ops():
    inputs = [("a", [2, 3]), ("b", [2, 3]), ("c", [1, 3])]
    for op in ("Sum", "Max", "Min"):
        graph = check_matches_ort(one_node(op, inputs, [2, 3]))
        assert len(graph.nodes) == 2


def test_reshape_squeeze_unsqueeze_and_reduce_operands():
    check_matches_ort(one_node("Reshape", [X], None, consts={"s": np.array([0, -1, 11], np.int64)}))
    check_matches_ort(one_node("Unsqueeze", [X], None, consts={"axes": np.array([0, 3], np.int64)}))
    check_matches_ort(one_node("Squeeze", [("x", [1, 3, 1, 5])], None, consts={"axes": np.array([2], np.int64)}))
    check_matches_ort(one_node("ReduceMean", [X], None, {"keepdims": 0}, {"axes": np.array([2, 3])}, opset=18))
    check_matches_ort(one_node("ReduceMean", [X], None, {"axes": [1]}, opset=13))


def test_softmax_before_opset_13_coerces_to_2d():
    check_matches_ort(one_node("Softmax", [("x", [2, 3, 4])], None, {"axis": 1}, opset=11))
    check_matches_ort(one_node("Softmax", [("x", [2, 3, 4])], None, {"axis": 1}, opset=13))


def test_shape_arithmetic_is_folded():
    """Flatten the PyTorch way: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Constant", [], ["i0"], value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["s", "i0"], ["n"], axis=0),
        helper.make_node("Constant", [], ["ax"], value=numpy_helper.from_array(np.array([0], np.int64))),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Constant", [], ["m1"], value=numpy_helper.from_array(np.array([-1], np.int64))),
        helper.make_node("Concat", ["n1", "m1"], ["shape"], axis=0),
        helper.make_node("Cast", ["shape"], ["shape64"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["x", "shape64"], ["r"]),
        helper.make_node("Identity", ["r"], ["i"]),
        helper.make_node("Dropout", ["i"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    converted = check_matches_ort(model)
    assert [n.op for n in converted.nodes] == ["reshape"]


@pytest.mark.parametrize("name", ["mlp", "dcgan", "mobilenet_v2", "mobilenet_v3", "convnext", "vit", "vit_opset14"])
def test_zoo_models_match_onnxruntime(name):
    check_matches_ort(zoo.MODELS[name](), atol=1e-3)


@pytest.mark.parametrize(
    ("name", "params", "ops"),
    [
        ("minilm", 22.4e6, {"layer_norm": 13, "gelu": 6}),
        ("deit_small", 22.1e6, {"layer_norm": 25, "gelu": 12}),
        ("mobilenet_v3_large", 5.5e6, {"hard_swish": 21}),  # the stem, 9 blocks' two, the last conv, the head
    ],
)
def test_the_transformers_benchmark_models_have_their_real_shapes(name, params, ops):
    """The benchmark's MiniLM-L6-, DeiT-small- and MobileNet-v3-large-like models (run in bench/, too large to
    run here) convert, with the parameter counts of the models they stand for."""
    graph = optimize(from_model(zoo.MODELS[name]()))
    assert sum(a.size for a in graph.constants.values()) == pytest.approx(params, rel=0.01)
    found = [n.op for n in graph.nodes] + [e.op for n in graph.nodes for e in n.epilogue]
    assert {op: found.count(op) for op in ops} == ops


def test_initializers_listed_as_inputs_are_constants():
    graph = from_model(zoo.mlp())
    assert [v.name for v in graph.inputs] == ["x"]
    assert len(graph.constants) == 6


# -- the ops of today's models -------------------------------------------------------------------------------


def graph_of(nodes, inputs, outputs, consts=None, opset=18):
    """A model of ``nodes``: ``inputs`` and ``outputs`` [(name, shape)], ``consts`` {name: array}."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in (consts or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize(
    ("op", "attrs", "opset"),
    [
        ("Erf", {}, 13),
        ("Gelu", {}, 20),
        ("Gelu", {"approximate": "tanh"}, 20),
        ("Sqrt", {}, 13),
        ("Log", {}, 13),
        ("Abs", {}, 13),
        ("Reciprocal", {}, 13),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 13),
        ("HardSwish", {}, 14),
        ("Elu", {"alpha": 0.5}, 13),
        ("Softplus", {}, 13),
        ("Sin", {}, 13),
        ("Cos", {}, 13),
    ],
)
def test_unary_ops_match_onnxruntime(op, attrs, opset):
    model = one_node(op, [("x", [2, 3, 5])], None, attrs, opset=opset)
    graph = from_model(model)
    feeds = {"x": RNG.uniform(0.5, 2.0, (2, 3, 5)).astype(np.float32) * (1 if op in ("Sqrt", "Log") else -1.5)}
    (want,) = zoo.onnxruntime_outputs(model, feeds)
    np.testing.assert_allclose(evaluate(graph, feeds)[graph.outputs[0]], want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("exponent", [2.0, 3.0, 0.5, -1.0, 1.5])
def test_pow_by_a_constant(exponent):
    x = ("x", [2, 3, 4])
    graph = from_model(one_node("Pow", [x], None, None, {"e": np.array(exponent, np.float32)}))
    assert [(n.op, n.attrs["exponent"]) for n in graph.nodes] == [("pow", exponent)]
    feeds = {"x": RNG.uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32)}
    if exponent in (2.0, 3.0):
        feeds["x"] *= RNG.choice([-1.0, 1.0], (2, 3, 4)).astype(np.float32)  # whole powers of negative bases
    (want,) = zoo.onnxruntime_outputs(one_node("Pow", [x], None, None, {"e": np.array(exponent, np.float32)}), feeds)
    np.testing.assert_allclose(evaluate(graph, feeds)[graph.outputs[0]], want, rtol=1e-5)
    with pytest.raises(GraphError, match=r"\(Pow\): input 1 \(exponent\) must be a constant"):
        from_model(one_node("Pow", [x, ("e", [1])], None))


@pytest.mark.parametrize("op", ["ReduceL2", "ReduceL1", "ReduceSumSquare"])
def test_norm_reductions_match_onnxruntime(op):
    axes = {"a": np.array([-1], np.int64)}
    graph = check_matches_ort(one_node(op, [("x", [2, 3, 7])], None, {"keepdims": 1}, axes, opset=18))
    assert [n.op for n in graph.nodes] == [
        {"ReduceL2": "reduce_l2", "ReduceL1": "reduce_l1"}.get(op, "reduce_sum_square")
    ]


@pytest.mark.parametrize(
    ("equation", "shapes", "ops"),
    [
        ("bghid,bghjd->bghij", [(1, 2, 3, 5, 4), (1, 2, 3, 6, 4)], ["transpose", "matmul"]),  # MaxViT's Q Kᵀ
        ("bghij,bghjd->bghid", [(1, 2, 3, 5, 6), (1, 2, 3, 6, 4)], ["matmul"]),
        ("B G H I D, B G H J D -> B G H I J", [(1, 2, 3, 5, 4), (1, 2, 3, 6, 4)], ["transpose", "matmul"]),
        ("ij,jk", [(3, 4), (4, 5)], ["matmul"]),  # implicit output
        ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)], ["matmul"]),
        ("bij,bkj->bki", [(2, 3, 4), (2, 5, 4)], None),
        ("abc,cd->abd", [(2, 3, 4), (4, 5)], ["reshape", "matmul", "reshape"]),  # two row subscripts
        ("bi,bj->bij", [(2, 3), (2, 4)], None),  # an outer product per batch entry
        ("ij,ij->i", [(3, 4), (3, 4)], None),
        ("ij->ji", [(3, 4)], ["transpose"]),
        ("ijk->i", [(3, 4, 5)], ["reduce_sum"]),
        ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], ["matmul", "matmul"]),
        ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)], None),  # a bilinear form
    ],
)
def test_einsum_is_transposes_and_matmuls_that_match_numpy(equation, shapes, ops):
    names = [f"x{k}" for k in range(len(shapes))]
    feeds = {n: RNG.standard_normal(s).astype(np.float32) for n, s in zip(names, shapes, strict=True)}
    want = np.einsum(equation.replace(" ", "").lower(), *feeds.values())
    node = helper.make_node("Einsum", names, ["y"], equation=equation)
    graph = from_model(graph_of([node], list(zip(names, shapes, strict=True)), [("y", list(want.shape))], opset=12))
    if ops is not None:
        assert [n.op for n in graph.nodes] == ops
    got = evaluate(graph, feeds)[graph.outputs[0]]
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("equation", "message"),
    [("ii->i", "subscript 'i' repeats in operand 0"), ("ij,jk->iz", "output subscript 'z' is in no operand")],
)
def test_einsum_it_cannot_write_is_a_one_line_error(equation, message):
    shapes = [(3, 3)] if equation == "ii->i" else [(3, 4), (4, 5)]
    names = [f"x{k}" for k in range(len(shapes))]
    node = helper.make_node("Einsum", names, ["y"], equation=equation, name="e")
    model = graph_of([node], list(zip(names, shapes, strict=True)), [("y", None)], opset=12)
    with pytest.raises(GraphError, match=rf"node 'e' \(Einsum\): equation '{equation}': {message}"):
        from_model(model)


def test_prelu_slope_per_channel_in_either_form():
    x = ("x", [1, 4, 5, 6])
    check_matches_ort(one_node("PRelu", [x], None, None, {"s": RNG.uniform(0, 1, (4, 1, 1)).astype(np.float32)}))
    graph = from_model(one_node("PRelu", [x], None, None, {"s": RNG.uniform(0, 1, 4).astype(np.float32)}))
    assert graph.constants[graph.nodes[0].inputs[1]].shape == (4, 1, 1)  # as older exporters write it: (C,)


def test_a_rank_0_constant_operand_broadcasts_as_one_value():
    graph = check_matches_ort(one_node("Div", [("x", [2, 5])], None, None, {"s": np.array(8.0, np.float32)}))
    assert graph.constants[graph.nodes[0].inputs[1]].shape == (1,)
    sqrt = helper.make_node("Sqrt", ["c"], ["root"])  # a scale of 1 / sqrt(64), folded at conversion
    div = helper.make_node("Div", ["x", "root"], ["y"])
    model = graph_of([sqrt, div], [("x", [2, 5])], [("y", [2, 5])], {"c": np.array(64.0, np.float32)})
    assert [n.op for n in check_matches_ort(model).nodes] == ["div"]


def test_arithmetic_on_rank_0_constants_keeps_rank_0():
    """DINOv2's patch grid: Pow(256, 0.5), cast and unsqueezed into a shape beside rank-1 constants (it came out
    rank 1, and the Concat of the shape refused it)."""
    nodes = [
        helper.make_node("Pow", ["n", "half"], ["side"]),
        helper.make_node("Cast", ["side"], ["side_i"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["side_i", "axis"], ["side_1"]),
        helper.make_node("Concat", ["lead", "side_1", "side_1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    consts = {
        "n": np.array(16.0, np.float32),
        "half": np.array(0.5, np.float32),
        "axis": np.array([0], np.int64),
        "lead": np.array([1, 2], np.int64),
    }
    graph = check_matches_ort(graph_of(nodes, [("x", [2, 16])], [("y", [1, 2, 4, 4])], consts, opset=13))
    assert graph.values[graph.outputs[0]].shape == (1, 2, 4, 4)


def test_normalizations_match_onnxruntime():
    x = ("x", [2, 6, 4, 5])
    per = {"g": RNG.uniform(0.5, 1.5, 5).astype(np.float32), "b": RNG.standard_normal(5).astype(np.float32)}
    check_matches_ort(one_node("LayerNormalization", [x], None, {"epsilon": 1e-3}, per, opset=17))
    norm = {"g": RNG.uniform(0.5, 1.5, (4, 5)).astype(np.float32)}
    check_matches_ort(one_node("LayerNormalization", [x], None, {"axis": 2}, norm, opset=17))
    channel = {"g": RNG.uniform(0.5, 1.5, 6).astype(np.float32), "b": RNG.standard_normal(6).astype(np.float32)}
    check_matches_ort(one_node("InstanceNormalization", [x], None, {"epsilon": 1e-4}, channel))
    group = {"g": RNG.uniform(0.5, 1.5, 3).astype(np.float32), "b": RNG.standard_normal(3).astype(np.float32)}
    graph = from_model(one_node("GroupNormalization", [x], None, {"num_groups": 3}, group, opset=18))
    feeds = {"x": RNG.standard_normal((2, 6, 4, 5)).astype(np.float32)}
    flat = feeds["x"].reshape(2, 3, -1)
    normed = ((flat - flat.mean(-1, keepdims=True)) / np.sqrt(flat.var(-1, keepdims=True) + 1e-5)).reshape(2, 6, 4, 5)
    want = normed * np.repeat(group["g"], 2)[:, None, None] + np.repeat(group["b"], 2)[:, None, None]
    np.testing.assert_allclose(evaluate(graph, feeds)[graph.outputs[0]], want, atol=1e-5)
    stats = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y", "mean"], name="ln")
    model = graph_of([stats], [x], [("y", [2, 6, 4, 5]), ("mean", None)], per, opset=17)
    with pytest.raises(GraphError, match=r"node 'ln' \(LayerNormalization\): its Mean and InvStdDev outputs"):
        from_model(model)


def test_slice_split_expand_tile_of_computed_tensors():
    x = ("x", [4, 6, 5])
    ends = np.array([-(2**63), 2**63 - 1], np.int64)
    consts = {"s": np.array([-1, 1], np.int64), "e": ends, "a": np.array([0, 2], np.int64), "t": np.array([-1, 2])}
    assert [n.op for n in check_matches_ort(one_node("Slice", [x], None, None, consts)).nodes] == ["slice"]
    split = helper.make_node("Split", ["x", "sizes"], ["p", "q"], axis=1)
    outs = [("p", [4, 2, 5]), ("q", [4, 4, 5])]
    graph = check_matches_ort(graph_of([split], [x], outs[:1], {"sizes": np.array([2, 4], np.int64)}, opset=13))
    assert [n.op for n in graph.nodes] == ["slice"]  # the unread part is not computed
    model = graph_of([helper.make_node("Split", ["x"], ["p", "q", "r"], axis=2, num_outputs=3)], [x], [("r", None)])
    assert check_matches_ort(model).shape("r") == (4, 6, 1)  # 5 in parts of 2, 2, 1
    check_matches_ort(
        graph_of([helper.make_node("Split", ["x"], ["p", "q"], split=[3, 1])], [x], [("q", None)], opset=11)
    )
    check_matches_ort(one_node("Expand", [("x", [3, 1])], None, None, {"shape": np.array([2, 1, 4], np.int64)}))
    check_matches_ort(one_node("Tile", [("x", [2, 3])], None, None, {"r": np.array([3, 2], np.int64)}))


def test_an_empty_slice_of_a_computed_tensor_is_dropped_from_its_concat():
    """Phi-3's rotary embedding covers the whole head: the pass-through part, x[..., 64:], has no elements and is
    concatenated after the rotated part. Any other use of it is a one-line error."""
    x = ("x", [1, 2, 4])
    ends = {"s": np.array([4], np.int64), "e": np.array([2**63 - 1], np.int64), "a": np.array([-1], np.int64)}
    nodes = [
        helper.make_node("Neg", ["x"], ["rotated"]),
        helper.make_node("Slice", ["x", "s", "e", "a"], ["rest"]),
        helper.make_node("Concat", ["rotated", "rest"], ["y"], axis=-1),
    ]
    graph = check_matches_ort(graph_of(nodes, [x], [("y", [1, 2, 4])], ends))
    assert [n.op for n in graph.nodes] == ["neg"]
    nodes[-1] = helper.make_node("Add", ["rotated", "rest"], ["y"], name="uses_it")
    with pytest.raises(GraphError, match=r"node 'uses_it' \(Add\): input '\S+' has no elements \(shape \(1, 2, 0\)\)"):
        from_model(graph_of(nodes, [x], [("y", [1, 2, 4])], ends))


@pytest.mark.parametrize(
    ("indices", "ops"),
    [
        (np.array(2, np.int64), ["slice", "reshape"]),  # a class token: x[:, 2]
        (np.array([1, 3, 5], np.int64), ["slice"]),  # steps evenly
        (np.array([-1, 0], np.int64), ["slice"]),
        (np.array([[4, 0], [0, 2]], np.int64), ["slice", "slice", "slice", "slice", "concat", "reshape"]),
    ],
)
def test_gather_with_constant_indices_of_a_computed_tensor(indices, ops):
    graph = check_matches_ort(one_node("Gather", [("x", [2, 6, 3])], None, {"axis": 1}, {"i": indices}))
    assert [n.op for n in graph.nodes] == ops
    with pytest.raises(GraphError, match=r"indices \[6\] fall outside axis 1 of size 6"):
        from_model(one_node("Gather", [("x", [2, 6, 3])], None, {"axis": 1}, {"i": np.array([6], np.int64)}))


def test_a_dropouts_unread_mask_goes_and_an_output_keeps_its_name_through_identity():
    relu = helper.make_node("Relu", ["x"], ["r"])
    drop = helper.make_node("Dropout", ["r"], ["d", "mask"])
    ident = helper.make_node("Identity", ["d"], ["y"])
    graph = check_matches_ort(graph_of([relu, drop, ident], [("x", [2, 3])], [("y", [2, 3])]))
    assert graph.outputs == ["y"] and [n.output for n in graph.nodes] == ["y"]
    used = graph_of([relu, drop, ident], [("x", [2, 3])], [("y", [2, 3]), ("mask", None)])
    with pytest.raises(GraphError, match="its mask output is used"):
        from_model(used)
    copy = helper.make_node("Identity", ["r"], ["y"])
    both = graph_of([relu, copy], [("x", [2, 3])], [("r", [2, 3]), ("y", [2, 3])])  # two outputs, one tensor
    assert from_model(both).outputs == ["r", "r"]


def check_int_inputs(model, feeds, atol=1e-6):
    """``model`` run by kgen's graph (integers and booleans carried in float32) against onnxruntime."""
    graph = from_model(model)
    wants = zoo.onnxruntime_outputs(model, feeds)
    got = evaluate(graph, {k: v.astype(np.float32) for k, v in feeds.items()})
    for name, want in zip(graph.outputs, wants, strict=True):
        np.testing.assert_allclose(got[name], want.astype(np.float32), atol=atol)
    return graph


def test_integer_and_boolean_inputs_with_comparisons_logic_where_and_casts():
    T = TensorProto
    nodes = [
        helper.make_node("Equal", ["ids", "zero"], ["pad"]),
        helper.make_node("Not", ["pad"], ["real"]),
        helper.make_node("And", ["real", "flag"], ["both"]),
        helper.make_node("Or", ["both", "pad"], ["either"]),
        helper.make_node("Cast", ["either"], ["either_f"], to=T.FLOAT),
        helper.make_node("Less", ["x", "zero_f"], ["negative"]),
        helper.make_node("Where", ["negative", "x", "either_f"], ["picked"]),
        helper.make_node("Mod", ["ids", "three"], ["rest"]),
        helper.make_node("Div", ["ids", "two"], ["half"]),  # integer division truncates
        helper.make_node("Cast", ["x"], ["x_int"], to=T.INT64),  # toward zero
        helper.make_node("Cast", ["x_int"], ["x_bool"], to=T.BOOL),
        helper.make_node("GreaterOrEqual", ["half", "rest"], ["ge"]),
    ]
    shape = [2, 5]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("ids", T.INT64, shape),
            helper.make_tensor_value_info("flag", T.BOOL, shape),
            helper.make_tensor_value_info("x", T.FLOAT, shape),
        ],
        [
            helper.make_tensor_value_info(n, t, shape)
            for n, t in (("picked", T.FLOAT), ("rest", T.INT64), ("half", T.INT64), ("x_bool", T.BOOL), ("ge", T.BOOL))
        ],
        [
            numpy_helper.from_array(np.array(0, np.int64), "zero"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"),
            numpy_helper.from_array(np.array(3, np.int64), "three"),
            numpy_helper.from_array(np.array(-2, np.int64), "two"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    feeds = {
        "ids": RNG.integers(-7, 8, shape).astype(np.int64),
        "flag": RNG.integers(0, 2, shape).astype(bool),
        "x": (RNG.standard_normal(shape) * 3).astype(np.float32),
    }
    converted = check_int_inputs(model, feeds)
    assert [v.dtype for v in converted.inputs] == ["int32", "bool", "float32"]
    assert [converted.values[o].dtype for o in converted.outputs] == ["float32", "int32", "int32", "bool", "bool"]


def test_shape_arithmetic_with_comparisons_and_where_is_folded():
    # Reshape's target as newer exporters compute it: Where(Equal(shape, -1), 1, shape)
    nodes = [
        helper.make_node("Equal", ["target", "minus_one"], ["unknown"]),
        helper.make_node("Where", ["unknown", "one", "target"], ["fixed"]),
        helper.make_node("Reshape", ["x", "fixed"], ["y"]),
    ]
    consts = {"target": np.array([2, -1], np.int64), "minus_one": np.array(-1, np.int64), "one": np.array(1, np.int64)}
    model = graph_of(nodes, [("x", [2, 1])], [("y", [2, 1])], consts, opset=13)
    assert [n.op for n in check_matches_ort(model).nodes] == ["reshape"]


def test_an_embedding_lookup_of_token_ids_is_a_host_gather_and_other_computed_indices_a_one_hot_product():
    table = RNG.standard_normal((10, 4)).astype(np.float32)
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 3])

    def model_of(nodes, out_shape, inputs=(ids,)):
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)
        consts = [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array(1, np.int64), "one")]
        graph = helper.make_graph(nodes, "g", list(inputs), [out], consts)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])

    lookup = model_of(
        [helper.make_node("Gather", ["table", "ids"], ["rows"]), helper.make_node("Relu", ["rows"], ["y"])], [2, 3, 4]
    )
    feeds = {"ids": RNG.integers(-10, 10, (2, 3)).astype(np.int64)}
    graph = check_int_inputs(lookup, feeds)
    assert [(g.table, g.indices) for g in graph.gathers] == [("table", "ids")]
    assert [v.name for v in graph.kernel_inputs] == ["rows"]  # the ids only feed the gather
    # indices computed in the graph (negative ones count from the end), from a constant table and along axis 1 of
    # a computed tensor
    shifted = helper.make_node("Sub", ["ids", "one"], ["shifted"])
    computed = model_of([shifted, helper.make_node("Gather", ["table", "shifted"], ["y"])], [2, 3, 4])
    feeds = {"ids": RNG.integers(-9, 11, (2, 3)).astype(np.int64)}
    graph = check_int_inputs(computed, feeds)
    assert not graph.gathers and "matmul" in [n.op for n in graph.nodes]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 11, 5])
    nodes = [
        shifted,
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Gather", ["r", "shifted"], ["y"], axis=1),
    ]
    feeds["x"] = RNG.standard_normal((4, 11, 5)).astype(np.float32)
    check_int_inputs(model_of(nodes, [4, 2, 3, 5], inputs=(ids, x)), feeds)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_elements_with_computed_indices(axis):
    """Computed data and a constant table, indices computed from an integer input (negative ones included), data
    larger than the indices off the axis; and RoBERTa's case, a constant of zeros, which folds."""
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 3, 2])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 3])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "w")]
    table = RNG.standard_normal((3, 4, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Sub", ["ids", "one"], ["shifted"]),
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("GatherElements", ["r", "shifted"], ["y"], axis=axis),
        helper.make_node("GatherElements", ["table", "shifted"], ["z"], axis=axis),
        helper.make_node("GatherElements", ["blank", "shifted"], ["zeros"], axis=axis),
        helper.make_node("Add", ["z", "zeros"], ["w"]),
    ]
    consts = {"one": np.array(1, np.int64), "table": table, "blank": np.zeros((3, 4, 3), np.float32)}
    graph = helper.make_graph(nodes, "g", [ids, x], outs, [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    size = (3, 4, 3)[axis]
    feeds = {"ids": RNG.integers(1 - size, size + 1, (2, 3, 2)), "x": RNG.standard_normal((3, 4, 3))}
    converted = check_int_inputs(model, {k: v.astype(np.int64 if k == "ids" else np.float32) for k, v in feeds.items()})
    assert [n.op for n in converted.nodes].count("reduce_sum") == 2  # the zeros were folded


def test_a_concat_of_many_inputs_is_chained_in_groups_a_webgpu_kernel_can_bind():
    inputs = [(f"x{k}", [2, 1, 3]) for k in range(12)]
    node = helper.make_node("Concat", [n for n, _ in inputs], ["y"], axis=1)
    graph = check_matches_ort(graph_of([node], inputs, [("y", [2, 12, 3])], opset=13))
    assert [len(n.inputs) for n in graph.nodes] == [7, 5, 2]


def test_an_if_whose_condition_the_input_shapes_fix_is_its_branch():
    def branch(name, op):
        node = helper.make_node(op, ["x"], [f"{name}_y"])
        return helper.make_graph(
            [node], name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)]
        )

    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["batch"]),
        helper.make_node("Equal", ["batch", "one"], ["single"]),
        helper.make_node(
            "If",
            ["single"],
            ["y"],
            name="branching",
            then_branch=branch("then", "Relu"),
            else_branch=branch("else", "Neg"),
        ),
    ]
    consts = {"zero": np.array(0, np.int64), "one": np.array(1, np.int64)}
    for batch, op in ((1, "relu"), (2, "neg")):
        model = graph_of(nodes, [("x", [batch, 3])], [("y", [batch, 3])], consts, opset=13)
        assert [n.op for n in check_matches_ort(model).nodes] == [op]
    computed = [
        helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
        helper.make_node("Greater", ["total", "zero_f"], ["positive"]),
        nodes[3],
    ]
    computed[2].input[0] = "positive"
    model = graph_of(computed, [("x", [2, 3])], [("y", [2, 3])], {"zero_f": np.array(0.0, np.float32)}, opset=13)
    with pytest.raises(GraphError, match=r"node 'branching' \(If\): its condition is computed from the inputs' values"):
        from_model(model)


@pytest.mark.parametrize(("axis", "exclusive", "reverse"), [(1, 0, 0), (-1, 1, 0), (0, 0, 1), (2, 1, 1)])
def test_cumsum(axis, exclusive, reverse):
    attrs = {"exclusive": exclusive, "reverse": reverse}
    model = one_node("CumSum", [("x", [3, 4, 5])], None, attrs, {"axis": np.array(axis, np.int64)})
    graph = check_matches_ort(model)
    assert [n.op for n in graph.nodes] == ["cumsum"]


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize(("axis", "keepdims", "last"), [(1, 1, 0), (-1, 0, 0), (0, 1, 1), (2, 0, 1)])
def test_argmax_and_argmin_with_ties(op, axis, keepdims, last):
    attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": last}
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    converted = check_int_inputs(model, {"x": RNG.integers(-2, 3, (3, 4, 5)).astype(np.float32)})
    assert converted.values[converted.outputs[0]].dtype == "int32"


def test_gathers_and_scatters_of_constants_fold_and_is_nan_compares_a_value_with_itself():
    data = np.arange(12, dtype=np.int64).reshape(3, 4)
    nodes = [
        helper.make_node("GatherElements", ["data", "pick"], ["picked"], axis=1),
        helper.make_node("GatherND", ["data", "where"], ["found"]),
        helper.make_node("ScatterND", ["picked", "where_one", "update"], ["written"]),
        helper.make_node("Cast", ["written"], ["written_f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["x", "written_f"], ["shifted"]),
        helper.make_node("Div", ["shifted", "x"], ["ratio"]),  # 0 / 0 is NaN where x is 0
        helper.make_node("IsNaN", ["ratio"], ["nan"]),
        helper.make_node("Where", ["nan", "zero", "ratio"], ["y"]),
    ]
    consts = {
        "data": data,
        "pick": np.array([[3, 0], [1, 1], [2, 0]], np.int64),
        "where": np.array([[0, 1], [2, 3]], np.int64),
        "where_one": np.array([[1, 0]], np.int64),
        "update": np.array([7], np.int64),
        "zero": np.array(0.0, np.float32),
    }
    model = graph_of(nodes, [("x", [3, 2])], [("y", [3, 2])], consts, opset=13)
    graph = from_model(model)
    x = np.array([[1.0, 0.0], [2.0, -1.0], [0.0, 3.0]], np.float32)
    (want,) = zoo.onnxruntime_outputs(model, {"x": x})
    np.testing.assert_allclose(evaluate(graph, {"x": x})[graph.outputs[0]], want)
    assert {n.op for n in graph.nodes} == {"add", "div", "equal", "not", "where"}


def test_a_constant_table_gathered_by_indices_that_arithmetic_on_constants_folded():
    """T5's relative-position buckets: indices from an Abs and a Where of integer constants (folded by the ops'
    references, in float) pick rows of a constant table, folded too."""
    nodes = [
        helper.make_node("Abs", ["relative"], ["distance"]),
        helper.make_node("Less", ["distance", "b"], ["near"]),
        helper.make_node("Where", ["near", "distance", "b"], ["buckets"]),
        helper.make_node("Gather", ["table", "buckets"], ["bias"], axis=0),
        helper.make_node("Add", ["x", "bias"], ["y"]),
    ]
    consts = {
        "relative": np.array([[0, -3], [1, -1]], np.int64),
        "b": np.array([[2, 2], [2, 2]], np.int64),
        "table": RNG.standard_normal((4, 3)).astype(np.float32),
    }
    graph = check_matches_ort(graph_of(nodes, [("x", [2, 2, 3])], [("y", [2, 2, 3])], consts, opset=13))
    assert [n.op for n in graph.nodes] == ["add"]


def test_a_scatter_of_computed_values_into_a_box_is_a_pad_and_a_where():
    """BART's decoder ids: zeros with ids[:, 1:] = input_ids[:, :-1] (a ScatterND of a computed tensor), then
    ids[:, 0] = 2 (a constant one into the result). Indices that do not write a box are a one-line error."""
    row = np.arange(1, 6, dtype=np.int64)
    consts = {
        "zeros": np.zeros((2, 6), np.float32),
        "box": np.stack(np.meshgrid(np.arange(2), row, indexing="ij"), -1),
        "first": np.array([[0, 0], [1, 0]], np.int64),
        "start": np.array([2.0, 2.0], np.float32),
        "s": np.array([0], np.int64),
        "e": np.array([-1], np.int64),
        "a": np.array([1], np.int64),
    }
    nodes = [
        helper.make_node("Slice", ["x", "s", "e", "a"], ["shifted"]),
        helper.make_node("ScatterND", ["zeros", "box", "shifted"], ["placed"]),
        helper.make_node("ScatterND", ["placed", "first", "start"], ["y"], name="second"),
    ]
    graph = check_matches_ort(graph_of(nodes, [("x", [2, 6])], [("y", [2, 6])], consts, opset=13))
    assert [n.op for n in graph.nodes] == ["slice", "pad", "where", "where"]
    consts["first"] = np.array([[0, 0], [1, 2]], np.int64)
    with pytest.raises(GraphError, match=r"node 'second' \(ScatterND\): its indices do not write a box"):
        from_model(graph_of(nodes, [("x", [2, 6])], [("y", [2, 6])], consts, opset=13))


def test_a_host_gather_reads_token_ids_through_a_view_and_the_view_is_dropped():
    table = RNG.standard_normal((10, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Reshape", ["ids", "flat"], ["ids_flat"]),
        helper.make_node("Gather", ["table", "ids_flat"], ["rows"]),
        helper.make_node("Relu", ["rows"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6, 4])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.array([-1], np.int64), "flat")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    converted = check_int_inputs(model, {"ids": RNG.integers(0, 10, (2, 3)).astype(np.int64)})
    assert [n.op for n in converted.nodes] == ["relu"]
    assert [(g.indices, converted.shape(g.output)) for g in converted.gathers] == [("ids", (6, 4))]


# -- errors ---------------------------------------------------------------------------------------------------


def test_unsupported_op_names_the_node_and_op_type():
    model = one_node("Det", [("a", [3, 3])], [], opset=12)
    with pytest.raises(GraphError, match=r"node 'the_node' \(Det\): op type Det is not supported \(supported: "):
        from_model(model)


def test_unsupported_opset_and_attribute_value():
    with pytest.raises(GraphError, match="opset 6 is not supported"):
        from_model(one_node("Relu", [X], None, opset=6))
    with pytest.raises(GraphError, match=r"node 'the_node' \(Pad\): mode 'wrap' is not supported"):
        from_model(one_node("Pad", [X], None, {"mode": "wrap"}, {"pads": np.zeros(8, np.int64)}, opset=19))
    with pytest.raises(GraphError, match=r"node 'the_node' \(Conv\): conv2d: weight has 3 input channels"):
        from_model(one_node("Conv", [("x", [1, 5, 8, 8])], None, None, {"w": W}))


def test_dynamic_input_needs_input_shape():
    model = one_node("Relu", [("x", ["batch", 3, 8, 8])], None)
    with pytest.raises(
        GraphError, match=r"graph input 'x' has a dynamic shape \[batchx3x8x8\]: give it with --input-shape"
    ):
        from_model(model)
    graph = from_model(model, {"x": (2, 3, 8, 8)})
    assert graph.shape(graph.outputs[0]) == (2, 3, 8, 8)


def test_an_input_of_another_dtype_is_refused():
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [4])],
    )
    with pytest.raises(
        GraphError, match="graph input 'x' has dtype FLOAT16; kgen takes float32, int64, int32 and bool"
    ):
        from_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def test_truncated_and_non_onnx_files(tmp_path):
    path = zoo.save(zoo.mlp(), tmp_path / "mlp.onnx")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(GraphError, match=r"truncated\.onnx: not a valid ONNX file"):
        load(truncated)
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    with pytest.raises(GraphError, match=r"notes\.onnx: not"):
        load(text)
    with pytest.raises(GraphError, match=r"missing\.onnx: no such file"):
        load(tmp_path / "missing.onnx")


def test_lrn_resize_and_upsample():
    check_matches_ort(
        one_node("LRN", [("x", [1, 7, 5, 5])], None, {"size": 3, "alpha": 0.01, "beta": 0.75, "bias": 2.0})
    )
    x = ("x", [1, 2, 3, 5])
    empty = np.zeros(0, np.float32)
    for attrs in (
        {"mode": "linear"},
        {"mode": "nearest"},
        {"mode": "linear", "coordinate_transformation_mode": "asymmetric"},
        {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
        {"mode": "nearest", "nearest_mode": "ceil"},
    ):
        consts = {"roi": empty, "scales": np.array([1, 1, 2, 3], np.float32)}
        check_matches_ort(one_node("Resize", [x], None, attrs, consts, opset=13))
    # rational factors, by sizes as exporters write them (MobileViT's 28 -> 32 is 8/7) and by scales
    for out, attrs in (
        ((6, 10), {"mode": "linear"}),
        ((8, 4), {"mode": "linear"}),
        ((2, 3), {"mode": "linear", "coordinate_transformation_mode": "align_corners"}),
        ((1, 7), {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}),
        ((5, 2), {"mode": "nearest", "coordinate_transformation_mode": "align_corners"}),
        ((7, 3), {"mode": "cubic"}),  # DINOv2's position embeddings, interpolated bicubically
        ((6, 8), {"mode": "cubic", "cubic_coeff_a": -0.5, "coordinate_transformation_mode": "align_corners"}),
    ):
        sizes = {"roi": empty, "scales": empty, "sizes": np.array([1, 2, *out], np.int64)}
        check_matches_ort(one_node("Resize", [x], None, attrs, sizes, opset=13))
    halves = {"roi": empty, "scales": np.array([1, 1, 0.5, 1.5], np.float32)}
    check_matches_ort(one_node("Resize", [("x", [1, 2, 8, 6])], None, {"mode": "linear"}, halves, opset=13))
    check_matches_ort(
        one_node("Upsample", [x], None, {"mode": "nearest"}, {"s": np.array([1, 1, 2, 2], np.float32)}, opset=9)
    )
    with pytest.raises(GraphError, match=r"scales \[1, 2, 2, 2\] are not supported \(supported: 1 on N and C\)"):
        from_model(one_node("Resize", [x], None, {}, {"roi": empty, "scales": np.array([1, 2, 2, 2], np.float32)}))
    with pytest.raises(GraphError, match=r"\(Resize\): exclude_outside 1 is not supported"):
        from_model(one_node("Resize", [x], None, {"mode": "cubic", "exclude_outside": 1}, halves, opset=13))
    with pytest.raises(GraphError, match=r"scale 0.3001 on H is not a positive fraction with a denominator <= 64"):
        from_model(one_node("Resize", [x], None, {}, {"roi": empty, "scales": np.array([1, 1, 0.3001, 1], np.float32)}))


def _attention_model(rank, mask_kind, causal, scale):
    """ONNX's Attention (opset 23) on 2 heads: Q, K, V [1, 2, 5, 4], [1, 2, 7, 4], [1, 2, 7, 3], or 3-D."""
    if rank == 4:
        shapes = {"q": [1, 2, 5, 4], "k": [1, 2, 7, 4], "v": [1, 2, 7, 3]}
    else:
        shapes = {"q": [1, 5, 8], "k": [1, 7, 8], "v": [1, 7, 6]}
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()]
    names, consts = ["q", "k", "v"], []
    if mask_kind == "bool":
        keep = np.ones((5, 7), bool)
        keep[:, 5:] = False
        consts.append(numpy_helper.from_array(keep, "mask"))
        names.append("mask")
    elif mask_kind == "float":
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, 5, 7]))
        names.append("mask")
    attrs = {"is_causal": causal} | ({"scale": scale} if scale else {})
    if rank == 3:
        attrs |= {"q_num_heads": 2, "kv_num_heads": 2}
    node = helper.make_node("Attention", names, ["y"], name="attn", **attrs)
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "g", inputs, [out], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize(
    ("rank", "mask_kind", "causal", "scale"),
    [(4, None, 0, None), (4, "bool", 0, 0.3), (4, "float", 1, None), (3, "float", 0, 0.5), (3, None, 1, None)],
)
def test_onnx_attention_is_the_attention_op(rank, mask_kind, causal, scale):
    graph = check_matches_ort(_attention_model(rank, mask_kind, causal, scale))
    assert "attention" in [n.op for n in optimize(graph).nodes]


def test_onnx_attention_with_a_key_value_cache_is_an_error_naming_it():
    model = _attention_model(4, None, 0, None)
    model.graph.node[0].input.extend(["", "past", "past"])
    model.graph.input.append(helper.make_tensor_value_info("past", TensorProto.FLOAT, [1, 2, 3, 4]))
    with pytest.raises(GraphError, match=r"node 'attn' \(Attention\): past_key and past_value"):
        from_model(model)


def test_onnx_rms_normalization_is_rms_norm():
    scale = {"scale": RNG.standard_normal(8).astype(np.float32)}
    model = one_node("RMSNormalization", [("x", [2, 3, 8])], None, {"epsilon": 1e-3}, scale, opset=23)
    model.ir_version = 10
    assert [n.op for n in check_matches_ort(model).nodes] == ["rms_norm"]
