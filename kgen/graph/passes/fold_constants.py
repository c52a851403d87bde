"""Constant folding: a node whose inputs are all constants becomes a constant (its numpy reference's value)."""

from __future__ import annotations

from kgen.graph.execute import node_value
from kgen.graph.ir import Graph


def fold_constants(graph: Graph) -> Graph:
    constants = dict(graph.constants)
    nodes = []
    for node in graph.nodes:
        if node.output not in graph.outputs and all(i in constants for i in node.all_inputs):
            constants[node.output] = node_value(node, constants).astype("float32")
        else:
            nodes.append(node)
    return graph.with_nodes(nodes, constants)
