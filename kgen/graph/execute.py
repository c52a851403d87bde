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


def sample_feeds(graph: Graph, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Seeded values for every graph input that the model takes: standard normal floats, token ids within the
    rows of the tables they pick from, 0 or 1 for other integers and booleans."""
    rows = {g.indices: graph.constants[g.table].shape[0] for g in graph.gathers}
    return {
        v.name: rng.standard_normal(v.shape).astype(np.float32)
        if v.dtype == "float32"
        else rng.integers(0, rows.get(v.name, 2), v.shape).astype(np.int32 if v.dtype == "int32" else np.bool_)
        for v in graph.inputs
    }


def evaluate(graph: Graph, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every graph output, by name."""
    values: dict[str, np.ndarray] = {**graph.constants, **feeds}
    for g in graph.gathers:
        rows = np.take(graph.constants[g.table], np.asarray(feeds[g.indices]).astype(np.int64), axis=0)
        values[g.output] = rows.reshape(graph.values[g.output].shape)  # the ids may come through a view
    for node in graph.nodes:
        values[node.output] = node_value(node, values)
    return {o: values[o] for o in graph.outputs}
