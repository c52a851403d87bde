"""An ONNX model as the network description bench/peers/tfjs_model.js builds from `tf` ops: the nodes in order
with their attributes, and the weights in TF.js's layouts (conv filters HWIO, depthwise [kH, kW, C, 1], transposed
conv [kH, kW, out, in]), so TF.js runs the same network with the same weights as kgen and ONNX Runtime, in the
form TF.js's converter would give it (batch norms after convs folded, ReLU / ReLU6 fused into ``tf.fused.conv2d``).
Covers the ops of kgen.graph.zoo's ResNet-50, MobileNet-v2-like net and DCGAN generator; another op is a clear
error."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from kgen.errors import KgenError

PASS_THROUGH = {"Relu", "Tanh", "Add", "GlobalAveragePool", "Flatten", "BatchNormalization"}


def network(model: onnx.ModelProto) -> tuple[dict[str, Any], bytes]:
    """(the description, the weights' bytes): {"input": {name, dims (NHWC for an image)}, "output": name,
    "output_nchw": the ONNX output shape when the network's output is NHWC (else None), "nodes": [{op, inputs,
    output, attrs}], "weights": {name: {dims, offset (in floats)}}}, and every weight's float32 values in a row."""
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    (inp,) = [i for i in graph.input if i.name not in inits]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    weights: dict[str, dict] = {}
    blobs: list[bytes] = []
    offset = 0
    nodes = []

    def weight(name: str, array: np.ndarray) -> str:
        nonlocal offset
        a = np.ascontiguousarray(array, dtype=np.float32)
        weights[name] = {"dims": list(a.shape), "offset": offset}
        blobs.append(a.tobytes())
        offset += a.size
        return name

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
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
                raise KgenError(f"{where}: only Gemm with alpha = beta = 1 and no transA")
            ins[1] = weight(ins[1], inits[ins[1]])
            if len(ins) > 2:
                ins[2] = weight(ins[2], inits[ins[2]])
            out = {"transB": int(attrs.get("transB", 0))}
        elif op == "Reshape":
            shape = [int(v) for v in inits[ins[1]]]
            if len(shape) != 4:
                raise KgenError(f"{where}: only a reshape to an NCHW image has a tf translation here")
            out, ins = {"shape": shape}, ins[:1]
        elif op not in PASS_THROUGH:
            raise KgenError(f"{where}: no tf translation of ONNX op {op}")
        nodes.append({"op": op, "inputs": ins, "output": node.output[0], "attrs": out})
    (output,) = graph.output
    out_dims = [d.dim_value for d in output.type.tensor_type.shape.dim]
    image = len(dims) == 4
    description = {
        "input": {"name": inp.name, "dims": [dims[0], dims[2], dims[3], dims[1]] if image else dims},
        "output": renamed.get(output.name, output.name),
        "output_nchw": out_dims if len(out_dims) == 4 else None,
        "nodes": nodes,
        "weights": weights,
    }
    return description, b"".join(blobs)


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


def tfjs_input(net: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """The model's input in the network's layout (NHWC for an image)."""
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def onnx_output(net: dict[str, Any], values: list[float]) -> np.ndarray:
    """The network's output back in the ONNX model's layout."""
    y = np.asarray(values, np.float32)
    if net["output_nchw"]:
        n, c, h, w = net["output_nchw"]
        return y.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return y
