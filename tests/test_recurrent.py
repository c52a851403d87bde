"""LSTM and GRU unrolled by the frontend (kgen/graph/recurrent.py): every direction, layout, reset form and
initial state against onnxruntime (layout 0) or ONNX's reference evaluator (layout 1, which onnxruntime refuses),
and what is not supported is a one-line error naming the node."""

import itertools

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from kgen.graph import zoo
from kgen.graph.execute import evaluate
from kgen.graph.ir import GraphError
from kgen.graph.onnx import from_model
from kgen.graph.passes import optimize

RNG = np.random.default_rng(0)
STEPS, BATCH, IN, HIDDEN = 5, 2, 3, 4


def recurrent(kind, direction="forward", layout=0, initial=False, outputs=("Y", "Y_h", "Y_c"), **attrs):
    gates, dirs = (4 if kind == "LSTM" else 3), (2 if direction == "bidirectional" else 1)
    weights = {
        "W": RNG.standard_normal((dirs, gates * HIDDEN, IN)),
        "R": RNG.standard_normal((dirs, gates * HIDDEN, HIDDEN)),
        "B": RNG.standard_normal((dirs, 2 * gates * HIDDEN)),
    }
    x_shape = [STEPS, BATCH, IN] if layout == 0 else [BATCH, STEPS, IN]
    state = [dirs, BATCH, HIDDEN] if layout == 0 else [BATCH, dirs, HIDDEN]
    inputs, graph_inputs = ["x", "W", "R", "B", ""], [("x", x_shape)]
    if initial:
        names = ["h0", "c0"] if kind == "LSTM" else ["h0"]
        inputs += names
        graph_inputs += [(n, state) for n in names]
    outputs = outputs if kind == "LSTM" else outputs[:2]
    node = helper.make_node(kind, inputs, list(outputs), name="rnn", hidden_size=HIDDEN, direction=direction, **attrs)
    if layout:
        node.attribute.append(helper.make_attribute("layout", layout))
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in graph_inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs if o],
        [numpy_helper.from_array((0.5 * v).astype(np.float32), k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


CASES = [
    (kind, direction, layout, reset, initial)
    for kind, direction, layout, reset, initial in itertools.product(
        ("LSTM", "GRU"), ("forward", "reverse", "bidirectional"), (0, 1), (0, 1), (False, True)
    )
    if kind == "GRU" or not reset
]


@pytest.mark.parametrize(("kind", "direction", "layout", "reset", "initial"), CASES)
def test_unrolled_matches_the_reference(kind, direction, layout, reset, initial):
    attrs = {"linear_before_reset": reset} if kind == "GRU" else {}
    model = recurrent(kind, direction, layout, initial, **attrs)
    graph = optimize(from_model(model))
    feeds = {v.name: RNG.standard_normal(v.shape).astype(np.float32) for v in graph.inputs}
    wants = zoo.onnxruntime_outputs(model, feeds) if layout == 0 else ReferenceEvaluator(model).run(None, feeds)
    got = evaluate(graph, feeds)
    for name, want in zip(graph.outputs, wants, strict=True):
        np.testing.assert_allclose(got[name].reshape(want.shape), want, atol=2e-5)


def test_only_the_outputs_read_are_computed():
    everything = from_model(recurrent("LSTM", outputs=("Y", "Y_h", "Y_c")))
    last_only = from_model(recurrent("LSTM", outputs=("", "Y_h")))
    assert len(last_only.nodes) < len(everything.nodes)
    assert "concat" not in {n.op for n in last_only.nodes}


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"activations": ["Relu", "Tanh", "Tanh"]}, "activations other than the defaults"),
        ({"clip": 3.0}, "activations other than the defaults, and clip, are not supported"),
        ({"input_forget": 1}, "input_forget and peepholes"),
    ],
)
def test_what_is_not_supported_names_the_node(attrs, message):
    with pytest.raises(GraphError, match=rf"node 'rnn' \(LSTM\): {message}"):
        from_model(recurrent("LSTM", **attrs))
