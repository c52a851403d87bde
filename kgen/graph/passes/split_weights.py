"""Split a matmul or gemm whose constant B operand holds more values than one texture into blocks of B's rows.
Each block is a contiguous range of the weight's values, so a page uploads it from the same weights (the weights
file holds no copy). Where B's rows run along the reduction (matmul; gemm without transB), each block multiplies
its slice of A and the next block's epilogue adds the partial product; where they are outputs (gemm with transB,
as PyTorch's Linear exports), each block computes its slice of the outputs, and a concat joins them. WebGL needs
this: VGG's first classifier weight (4096 x 25088) is 1.5 textures of 4096² RGBA texels."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kgen.graph.ir import Epilogue, Graph, Node, Value


@dataclass(frozen=True)
class View:
    """A constant that is a block of another's values: ``tensor``'s values from ``offset`` on."""

    tensor: str
    offset: int


class _Splitter:
    def __init__(self, graph: Graph, max_values: int) -> None:
        self.graph, self.max_values = graph, max_values
        self.constants, self.values = dict(graph.constants), dict(graph.values)
        self.views: dict[str, View] = {}
        self.nodes: list[Node] = []

    def view(self, tensor: str, start: int, end: int) -> str:
        """Rows ``start:end`` of a constant, as a view of it."""
        name = f"{tensor}__rows{start}"
        table = self.graph.constants[tensor]
        row = table.size // table.shape[0]
        self.constants[name], self.views[name] = table[start:end], View(tensor, start * row)
        return name

    def add(self, node: Node, name: str, op: str, inputs: list[str], output: str, shape, **fields) -> str:
        self.values[output] = Value(output, tuple(shape))
        self.nodes.append(dataclasses.replace(node, name=name, op=op, inputs=inputs, output=output, **fields))
        return output

    def cut(self, node: Node, x: str, axis: int, start: int, end: int) -> str:
        shape = list(self.graph.shape(x))
        attrs = {"starts": (start,), "ends": (end,), "axes": (axis,), "steps": None}
        shape[axis] = end - start
        return self.add(
            node, f"{node.name}__k{start}", "slice", [x], f"{node.output}__k{start}", shape, attrs=attrs, epilogue=[]
        )

    def split(self, node: Node) -> bool:
        weight = node.inputs[1] if node.op in ("matmul", "gemm") and len(node.inputs) >= 2 else ""
        table = self.graph.constants.get(weight)
        if table is None or table.ndim != 2 or table.size <= self.max_values or table.shape[1] > self.max_values:
            return False
        rows = self.max_values // table.shape[1]
        blocks = [(s, min(table.shape[0], s + rows)) for s in range(0, table.shape[0], rows)]
        if node.op == "gemm" and node.attrs["transB"]:
            return self.outputs(node, weight, blocks)
        self.reduction(node, weight, blocks)
        return True

    def reduction(self, node: Node, weight: str, blocks: list[tuple[int, int]]) -> None:
        """Blocks along the reduction: partial products summed by the next block's epilogue."""
        x, out_shape = node.inputs[0], self.graph.shape(node.output)
        axis = 0 if node.op == "gemm" and node.attrs["transA"] else len(self.graph.shape(x)) - 1
        partial = None
        for start, end in blocks:
            done = end == blocks[-1][1]
            extra = node.inputs[2:] if partial is None else []  # gemm's C, added once
            epilogue = [Epilogue("add", {}, (partial,))] if partial else []
            epilogue += node.epilogue if done else []
            out = node.output if done else f"{node.output}__sum{start}"
            inputs = [self.cut(node, x, axis, start, end), self.view(weight, start, end), *extra]
            partial = self.add(node, f"{node.name}__rows{start}", node.op, inputs, out, out_shape, epilogue=epilogue)

    def outputs(self, node: Node, weight: str, blocks: list[tuple[int, int]]) -> bool:
        """Blocks of outputs (gemm with transB), joined by a concat; C and the epilogue's operands must be constant
        along the outputs or a row of them (a bias), which each block reads its slice of."""
        (m, n), bias = self.graph.shape(node.output), node.inputs[2:]
        if any(self.graph.shape(i)[-1] != 1 for e in node.epilogue for i in e.inputs):
            return False
        sliced = bool(bias) and self.graph.shape(bias[0])[-1] != 1
        if sliced and (bias[0] not in self.graph.constants or self.graph.shape(bias[0]) not in ((n,), (1, n))):
            return False
        parts = []
        for start, end in blocks:
            c = [self.view_columns(bias[0], start, end)] if sliced else bias
            inputs = [node.inputs[0], self.view(weight, start, end), *c]
            out = f"{node.output}__cols{start}"
            parts.append(self.add(node, f"{node.name}__rows{start}", "gemm", inputs, out, (m, end - start)))
        self.add(node, f"{node.name}__join", "concat", parts, node.output, (m, n), attrs={"axis": 1}, epilogue=[])
        return True

    def view_columns(self, bias: str, start: int, end: int) -> str:
        """Elements ``start:end`` of a bias of shape (n,) or (1, n), as a view of it."""
        name = f"{bias}__cols{start}"
        values = self.graph.constants[bias]
        self.constants[name] = values[..., start:end]
        self.views[name] = View(bias, start)
        return name


def split_wide_weights(graph: Graph, max_values: int) -> tuple[Graph, dict[str, View]]:
    """The graph with each matmul or gemm on a 2-D constant B of more than ``max_values`` values split into blocks
    of B's rows of at most that many, and each block's constant as a view of the weight."""
    splitter = _Splitter(graph, max_values)
    for node in graph.nodes:
        if not splitter.split(node):
            splitter.nodes.append(node)
    split = dataclasses.replace(graph, values=splitter.values)
    return split.with_nodes(splitter.nodes, splitter.constants), splitter.views
