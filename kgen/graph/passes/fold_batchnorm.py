"""BatchNormalization folded into the Conv, ConvTranspose or Gemm that produces its input: the per-channel
scale s = gamma / sqrt(var + eps) multiplies the weights of each output channel, and the bias becomes
(b - mean) * s + beta. Only where the producer feeds nothing else and its weights are constants."""

from __future__ import annotations

import dataclasses

import numpy as np

from kgen.graph.ir import Graph, Node

FOLDABLE = ("conv2d", "conv_transpose2d", "gemm")


def _scaled(node: Node, weight: np.ndarray, s: np.ndarray) -> np.ndarray | None:
    """The weight with output channel c multiplied by s[c], or None where the layout is not foldable."""
    if node.op == "conv2d":
        return weight * s.reshape(-1, 1, 1, 1)
    if node.op == "conv_transpose2d":
        g = node.attrs["group"]
        c, mg = weight.shape[:2]
        return (weight.reshape(g, c // g, mg, *weight.shape[2:]) * s.reshape(g, 1, mg, 1, 1)).reshape(weight.shape)
    if node.attrs["transA"]:
        return None
    scaled = node.attrs["alpha"] * weight
    return scaled * s.reshape(-1, 1) if node.attrs["transB"] else scaled * s.reshape(1, -1)


def fold_batchnorm(graph: Graph) -> Graph:
    consumers = graph.consumers()
    producer = graph.producer()
    constants = dict(graph.constants)
    replaced: dict[int, Node] = {}  # id(bn node) -> the folded producer, emitted in its place
    dropped: set[int] = set()
    for bn in graph.nodes:
        if bn.op != "batch_norm" or bn.epilogue or not all(p in constants for p in bn.inputs[1:]):
            continue
        prev = producer.get(bn.inputs[0])
        if (
            prev is None
            or prev.op not in FOLDABLE
            or prev.epilogue
            or id(prev) in dropped
            or len(consumers.get(prev.output, [])) != 1
            or prev.output in graph.outputs
            or prev.inputs[1] not in constants
            or (len(prev.inputs) > 2 and prev.inputs[2] not in constants)
        ):
            continue
        if prev.op == "gemm" and len(graph.shape(prev.output)) != 2:
            continue
        gamma, beta, mean, var = (constants[p].astype(np.float64) for p in bn.inputs[1:])
        s = gamma / np.sqrt(var + bn.attrs["epsilon"])
        weight = _scaled(prev, constants[prev.inputs[1]].astype(np.float64), s)
        if weight is None:
            continue
        channels = graph.shape(prev.output)[1]
        if len(prev.inputs) > 2:
            bias = constants[prev.inputs[2]].astype(np.float64)
            if prev.op == "gemm":
                bias = np.broadcast_to(bias * prev.attrs["beta"], graph.shape(prev.output))[0]
        else:
            bias = np.zeros(channels)
        w_name, b_name = f"{prev.inputs[1]}__bn_{bn.name}", f"{bn.output}__bias"
        constants[w_name] = weight.astype(np.float32)
        constants[b_name] = ((bias - mean) * s + beta).astype(np.float32)
        attrs = dict(prev.attrs)
        if prev.op == "gemm":
            attrs.update(alpha=1.0, beta=1.0)
        folded = dataclasses.replace(prev, inputs=[prev.inputs[0], w_name, b_name], output=bn.output, attrs=attrs)
        replaced[id(bn)] = folded
        dropped.add(id(prev))
    nodes = [replaced.get(id(n), n) for n in graph.nodes if id(n) not in dropped]
    return graph.with_nodes(nodes, constants)
