"""An ONNX model as the network description bench/peers/tfjs_model.js builds from `tf` ops: the nodes in order
with their attributes, and the weights in TF.js's layouts (conv filters HWIO, depthwise [kH, kW, C, 1], transposed
conv [kH, kW, out, in]), so TF.js runs the same network with the same weights as kgen and ONNX Runtime, in the
form TF.js's converter would give it (batch norms after convs folded, ReLU / ReLU6 fused into ``tf.fused.conv2d``).
Covers the ops of kgen.graph.zoo's ResNet-50, MobileNet-v2 and v3-like nets and DCGAN generator, and of its BERT-like
encoders (MiniLM: token ids in, op for op in ONNX's own layouts); another op is a clear error."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

from kgen.errors import KgenError

PASS_THROUGH = {"Relu", "Tanh", "HardSwish", "GlobalAveragePool", "Flatten", "BatchNormalization"}
#: a token model's ops that take their operands as they are (numpy broadcasting, as tf's ops)
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "MatMul"}


class _Weights:
    """The weights of a description: each once, with its dims, dtype and offset (in values) in one float32 row."""

    def __init__(self) -> None:
        self.entries: dict[str, dict] = {}
        self.blobs: list[bytes] = []
        self.offset = 0

    def add(self, name: str, array: np.ndarray) -> str:
        if name not in self.entries:
            dtype = "int32" if np.issubdtype(array.dtype, np.integer) else "float32"
            a = np.array(array, dtype=np.float32, order="C")  # ids are small: exact as floats; a scalar stays one
            self.entries[name] = {"dims": list(a.shape), "offset": self.offset, "dtype": dtype}
            self.blobs.append(a.tobytes())
            self.offset += a.size
        return name


def describe(model: onnx.ModelProto) -> tuple[dict[str, Any], bytes]:
    """``network`` for a convolutional net of one float image, ``sequence_network`` for a transformer (token ids
    in, or matmuls on a sequence of patches)."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    images = all(i.type.tensor_type.elem_type == TensorProto.FLOAT for i in inputs)
    if images and not any(n.op_type in ("MatMul", "LayerNormalization") for n in model.graph.node):
        return network(model)
    return sequence_network(model)


def network(model: onnx.ModelProto) -> tuple[dict[str, Any], bytes]:
    """(the description, the weights' bytes): {"inputs": [{name, dims (NHWC for an image), dtype}], "output": name,
    "output_nchw": the ONNX output shape when the network's output is NHWC (else None), "nodes": [{op, inputs,
    output, attrs}], "weights": {name: {dims, offset (in values), dtype}}}, and every weight's values in a row of
    float32."""
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    (inp,) = [i for i in graph.input if i.name not in inits]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    store = _Weights()
    weight = store.add
    nodes = []

    folded, fused = _conv_fusions(graph, inits)
    skipped = {name for names in fused.values() for name in names[1:]}
    renamed = {names[-1]: names[0] for names in fused.values()}  # a fused chain's output is its conv's
    for node in graph.node:
        if node.output[0] in skipped:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        op, ins, where = node.op_type, list(node.input), f"node {node.name or node.output[0]} ({node.op_type})"
        out: dict[str, Any] = {}
        ins = [renamed.get(i, i) for i in ins]
        if op == "Conv":
            w, bias = folded.get(node.output[0], (inits[ins[1]], inits[ins[2]] if len(ins) > 2 else None))
            if bias is not None:
                ins = [ins[0], ins[1], f"{node.output[0]}_bias"]
                inits[ins[2]] = bias
            group = attrs.get("group", 1)
            depthwise = group > 1
            if depthwise and not (group == w.shape[0] and w.shape[1] == 1):
                raise KgenError(f"{where}: grouped convs other than depthwise have no tf translation here")
            if any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise KgenError(f"{where}: dilated convs have no tf translation here")
            ins[1] = weight(ins[1], w.transpose(2, 3, 0, 1) if depthwise else w.transpose(2, 3, 1, 0))
            if len(ins) > 2:
                ins[2] = weight(ins[2], inits[ins[2]])
            out = {"strides": list(attrs.get("strides", [1, 1])), "pads": list(attrs.get("pads", [0] * 4))}
            out["depthwise"] = depthwise
            out["activation"] = fused_activation(fused.get(node.output[0], []), graph)
        elif op == "ConvTranspose":
            w = inits[ins[1]]
            k, strides, pads = w.shape[2], list(attrs.get("strides", [1, 1])), list(attrs.get("pads", [0] * 4))
            if attrs.get("group", 1) != 1 or len(set(pads)) != 1 or 2 * pads[0] != k - strides[0]:
                raise KgenError(f"{where}: only TF.js's 'same' transposed convs (output = input x stride)")
            ins[1] = weight(ins[1], w.transpose(2, 3, 1, 0))
            if len(ins) > 2:
                ins[2] = weight(ins[2], inits[ins[2]])
            out = {"strides": strides, "channels": int(w.shape[1])}
        elif op == "BatchNormalization":
            for i in range(1, 5):
                ins[i] = weight(ins[i], inits[ins[i]])
            out = {"epsilon": float(attrs.get("epsilon", 1e-5))}
        elif op == "Clip":
            out = {"min": float(inits[ins[1]]), "max": float(inits[ins[2]])} if len(ins) == 3 else {}
            out = out or {"min": float(attrs.get("min", -np.inf)), "max": float(attrs.get("max", np.inf))}
            ins = ins[:1]
        elif op == "MaxPool":
            out = {"kernel": list(attrs["kernel_shape"]), "strides": list(attrs.get("strides", [1, 1]))}
            out["pads"] = list(attrs.get("pads", [0] * 4))
        elif op == "Gemm":
            out = _gemm(attrs, where)
            ins[1] = weight(ins[1], inits[ins[1]])
            if len(ins) > 2:
                ins[2] = weight(ins[2], inits[ins[2]])
        elif op == "Reshape":
            shape = [int(v) for v in inits[ins[1]]]
            if len(shape) != 4:
                raise KgenError(f"{where}: only a reshape to an NCHW image has a tf translation here")
            out, ins = {"shape": shape, "image": True}, ins[:1]
        elif op in ("Add", "Sub", "Mul", "Div"):  # an image and a scalar, or two images (NHWC both)
            for i, name in enumerate(ins):
                if name in inits and inits[name].size != 1:
                    raise KgenError(f"{where}: only a scalar constant operand has a tf translation here")
                if name in inits:
                    ins[i] = weight(name, inits[name].reshape(()))
        elif op == "HardSigmoid":
            out = {"alpha": float(attrs.get("alpha", 0.2)), "beta": float(attrs.get("beta", 0.5))}
        elif op == "Dropout":  # inference: the identity
            ins = ins[:1]
        elif op not in PASS_THROUGH:
            raise KgenError(f"{where}: no tf translation of ONNX op {op}")
        nodes.append({"op": op, "inputs": ins, "output": node.output[0], "attrs": out})
    (output,) = graph.output
    out_dims = [d.dim_value for d in output.type.tensor_type.shape.dim]
    image = len(dims) == 4
    description = {
        "inputs": [
            {"name": inp.name, "dims": [dims[0], dims[2], dims[3], dims[1]] if image else dims, "dtype": "float32"}
        ],
        "output": renamed.get(output.name, output.name),
        "output_nchw": out_dims if len(out_dims) == 4 else None,
        "nodes": nodes,
        "weights": store.entries,
    }
    return description, b"".join(store.blobs)


def sequence_network(model: onnx.ModelProto) -> tuple[dict[str, Any], bytes]:
    """The description of a model of token ids (int64 ids and masks in, as int32), op for op in ONNX's own
    layouts: a reshape or unsqueeze to its output's shape (ONNX's shape inference), the other ops with their
    attributes, a constant operand a weight."""
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inferred = shape_inference.infer_shapes(model).graph
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.value_info, *inferred.output, *inferred.input]
    }
    store = _Weights()
    nodes = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        op, ins, where = node.op_type, list(node.input), f"node {node.name or node.output[0]} ({node.op_type})"
        out: dict[str, Any] = {}
        if op in ("Reshape", "Unsqueeze"):
            op, ins, out = "Reshape", ins[:1], {"shape": shapes[node.output[0]]}
        elif op == "Transpose":
            out = {"perm": list(attrs["perm"])}
        elif op == "ReduceMean":
            out = {"axes": list(attrs["axes"]), "keepdims": bool(attrs.get("keepdims", 1))}
        elif op == "Softmax":
            out = {"axis": int(attrs.get("axis", -1))}
        elif op == "Cast":
            out = {"dtype": _dtype(attrs["to"])}
        elif op == "Gather":
            out = {"axis": int(attrs.get("axis", 0))}
        elif op == "Conv":  # a ViT's patches: NCHW in and out, the filter HWIO
            if attrs.get("group", 1) != 1 or any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise KgenError(f"{where}: only plain convs have a tf translation here")
            out = {"nchw": True, "strides": list(attrs.get("strides", [1, 1]))}
            out["pads"] = list(attrs.get("pads", [0] * 4))
            ins[1] = store.add(ins[1], inits[ins[1]].transpose(2, 3, 1, 0))
        elif op == "Concat":
            out = {"axis": int(attrs["axis"])}
        elif op == "LayerNormalization":
            if attrs.get("axis", -1) != -1:
                raise KgenError(f"{where}: only a LayerNormalization over the last axis has a tf translation here")
            out = {"epsilon": float(attrs.get("epsilon", 1e-5))}
        elif op == "Gemm":
            out = _gemm(attrs, where)
        elif op in ("Dropout", "Identity"):  # inference: the identity
            op, ins = "Dropout", ins[:1]
        elif op not in ELEMENTWISE:
            raise KgenError(f"{where}: no tf translation of ONNX op {op}")
        ins = [store.add(i, inits[i]) if i in inits else i for i in ins]
        nodes.append({"op": op, "inputs": ins, "output": node.output[0], "attrs": out})
    (output,) = graph.output
    inputs = [
        {"name": i.name, "dims": shapes[i.name], "dtype": _dtype(i.type.tensor_type.elem_type)}
        for i in graph.input
        if i.name not in inits
    ]
    description = {"inputs": inputs, "output": output.name, "output_nchw": None, "nodes": nodes}
    description["weights"] = store.entries
    return description, b"".join(store.blobs)


def _dtype(elem_type: int) -> str:
    """TF.js's dtype of an ONNX tensor type: float32, else int32 (ids, masks, indices)."""
    return "float32" if elem_type == TensorProto.FLOAT else "int32"


def _gemm(attrs: dict[str, Any], where: str) -> dict[str, Any]:
    """A Gemm's attributes as tf.matMul takes them; one that it cannot compute is refused."""
    if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
        raise KgenError(f"{where}: only Gemm with alpha = beta = 1 and no transA")
    return {"transB": int(attrs.get("transB", 0))}


def _consumers(graph) -> dict[str, list]:
    out: dict[str, list] = {}
    for node in graph.node:
        for i in node.input:
            out.setdefault(i, []).append(node)
    return out


def _conv_fusions(graph, inits) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, list[str]]]:
    """What TF.js's converter does to such a graph (TF.js's own best case): a BatchNormalization that is a
    Conv's only consumer folded into the conv's weights and bias, and a Relu or ReLU6 (Clip 0..6) after it fused
    as the conv's activation (``tf.fused.conv2d``). Returns ({conv output: (weight, bias)}, {conv output: [its
    output, the folded and fused nodes' outputs...]})."""
    consumers = _consumers(graph)
    folded, fused = {}, {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        chain, tail = [node.output[0]], node.output[0]
        w = inits[node.input[1]].astype(np.float64)
        b = inits[node.input[2]].astype(np.float64) if len(node.input) > 2 else np.zeros(w.shape[0])
        nxt = consumers.get(tail, [])
        if len(nxt) == 1 and nxt[0].op_type == "BatchNormalization":
            bn = nxt[0]
            eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
            gamma, beta, mean, var = (inits[n].astype(np.float64) for n in bn.input[1:5])
            scale = gamma / np.sqrt(var + eps)
            w, b = w * scale[:, None, None, None], (b - mean) * scale + beta
            folded[node.output[0]] = (w.astype(np.float32), b.astype(np.float32))
            tail = bn.output[0]
            chain.append(tail)
            nxt = consumers.get(tail, [])
        if len(nxt) == 1 and (nxt[0].op_type == "Relu" or _is_relu6(nxt[0], inits)):
            chain.append(nxt[0].output[0])
        if len(chain) > 1:
            fused[node.output[0]] = chain
    return folded, fused


def _is_relu6(node, inits) -> bool:
    if node.op_type != "Clip" or len(node.input) != 3:
        return False
    return float(inits.get(node.input[1], np.nan)) == 0.0 and float(inits.get(node.input[2], np.nan)) == 6.0


def fused_activation(chain: list[str], graph) -> str:
    """The activation a fused chain ends in: "relu", "relu6" or "linear"."""
    ops = {n.output[0]: n.op_type for n in graph.node}
    last = ops.get(chain[-1]) if chain else None
    return {"Relu": "relu", "Clip": "relu6"}.get(last, "linear")


def tfjs_inputs(net: dict[str, Any], feeds: dict[str, np.ndarray]) -> dict[str, list]:
    """The model's inputs in the network's layouts (NHWC for an image), as flat lists."""
    return {
        i["name"]: (x.transpose(0, 2, 3, 1) if x.ndim == 4 and list(x.shape) != i["dims"] else x).ravel().tolist()
        for i in net["inputs"]
        for x in [feeds[i["name"]]]
    }


def onnx_output(net: dict[str, Any], values: list[float]) -> np.ndarray:
    """The network's output back in the ONNX model's layout."""
    y = np.asarray(values, np.float32)
    if net["output_nchw"]:
        n, c, h, w = net["output_nchw"]
        return y.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return y
