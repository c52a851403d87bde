"""Epilogue fusion: an elementwise node (activation, clip, bias or residual add, an unfolded batch norm) whose
operand is the only use of another node's result joins that node as an epilogue, so both are one kernel (the
partitioner compiles an epilogue into the producer's stage). Chains fuse one after another: conv + add + relu
is one node. The fused node runs where the elementwise node stood, after every operand it reads."""

from __future__ import annotations

import dataclasses

from kgen.graph.ir import Epilogue, Graph, Node
from kgen.ops import get_op

EPILOGUE_FAMILIES = ("elementwise",)
EPILOGUE_OPS = ("batch_norm",)
NO_EPILOGUE = ("attention",)  # its fused kernel (kgen.scheduling.templates.attention) has none


def _fusable(node: Node) -> bool:
    op = get_op(node.op)
    return op.family in EPILOGUE_FAMILIES or node.op in EPILOGUE_OPS


def fuse_epilogues(graph: Graph) -> Graph:
    uses = graph.read_counts()
    nodes: list[Node] = []
    index: dict[str, int] = {}  # output -> position in nodes
    for node in graph.nodes:
        target = None
        if _fusable(node):
            out_shape = graph.shape(node.output)
            for position, name in enumerate(node.inputs):
                k = index.get(name)
                if k is None or nodes[k] is None or uses.get(name) != 1 or name in graph.outputs:
                    continue
                producer = nodes[k]
                if producer.is_view or producer.op in NO_EPILOGUE or graph.shape(name) != out_shape:
                    continue
                if target is None or k > target[0]:
                    target = (k, position)
        if target is None:
            index[node.output] = len(nodes)
            nodes.append(node)
            continue
        k, position = target
        producer = nodes[k]
        others = tuple(i for p, i in enumerate(node.inputs) if p != position)
        step = Epilogue(node.op, dict(node.attrs), others, position, node.name)
        fused = dataclasses.replace(producer, output=node.output, epilogue=[*producer.epilogue, step])
        nodes[k] = None  # type: ignore[call-overload]
        index[node.output] = len(nodes)
        nodes.append(fused)
    return dataclasses.replace(graph, nodes=[n for n in nodes if n is not None])
