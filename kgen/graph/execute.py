"""Run a ``Graph`` with the ops' numpy references: the oracle the passes are tested against (float64 inside)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from kgen.graph.ir import Graph, Node
from kgen.ops import get_op


def node_value(node: Node, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """The node's output: its op, then each epilogue op with the running result at its position."""
    result = get_op(node.op).reference([values[i] for i in node.inputs], node.attrs)
    for e in node.epilogue:
        args = [values[i] for i in e.inputs]
        args.insert(e.position, result)
        result = get_op(e.op).reference(args, e.attrs)
    return result


def evaluate(graph: Graph, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every graph output, by name."""
    values: dict[str, np.ndarray] = {**graph.constants, **feeds}
    for node in graph.nodes:
        values[node.output] = node_value(node, values)
    return {o: values[o] for o in graph.outputs}
