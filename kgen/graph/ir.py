"""The model IR: a graph of kgen ops over named tensors, constants carrying their data.

A node is one kgen op (``kgen.ops``) with normalized attributes; after epilogue fusion it may also carry an
epilogue, a chain of elementwise ops applied to its result inside the same kernel. A view (reshape) node whose
output can share its input's storage is marked ``alias``: it launches nothing on backends with flat buffers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kgen.errors import KgenError
from kgen.ops import Workload


class GraphError(KgenError):
    """A model the converter cannot take: the message names the node, its op type and what is wrong."""


@dataclass(frozen=True)
class Value:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class Epilogue:
    """One elementwise op applied to the running result: ``position`` is where that result goes among the op's
    inputs, ``inputs`` are the other operands (graph tensors) in order."""

    op: str
    attrs: dict[str, Any]
    inputs: tuple[str, ...]
    position: int = 0
    source: str = ""  # the ONNX node it came from


@dataclass(frozen=True)
class Gather:
    """Rows of a constant table picked by an integer graph input (an embedding lookup of token ids), done by the
    runtime on the host when the inputs are set: the ids are checked there against the table's rows, and the
    kernels read ``output`` as one more input. Its shape is the ids' (or a view's of them) and a row's."""

    output: str
    table: str
    indices: str


@dataclass
class Node:
    name: str  # the ONNX node's name (or a generated one)
    op: str  # a kgen op
    inputs: list[str]
    output: str
    attrs: dict[str, Any]
    onnx_op: str = ""
    epilogue: list[Epilogue] = field(default_factory=list)

    @property
    def all_inputs(self) -> list[str]:
        """Every tensor the node's kernel reads: the op's inputs, then each epilogue's operands."""
        return [*self.inputs, *(i for e in self.epilogue for i in e.inputs)]

    @property
    def distinct_inputs(self) -> tuple[str, ...]:
        """``all_inputs`` once each, in order: the tensors a node's program takes as in0, in1, ..."""
        return tuple(dict.fromkeys(self.all_inputs))

    @property
    def is_view(self) -> bool:
        return self.op in VIEW_OPS and not self.epilogue

    def describe(self) -> str:
        return f"node '{self.name}' ({self.onnx_op or self.op})"


#: ops that only reinterpret a row-major tensor's shape
VIEW_OPS = ("reshape", "flatten")


@dataclass
class Graph:
    inputs: list[Value]
    outputs: list[str]
    values: dict[str, Value]
    constants: dict[str, np.ndarray]
    nodes: list[Node]
    name: str = "model"
    opset: int = 0
    gathers: list[Gather] = field(default_factory=list)
    #: the dynamic dimensions of the inputs that the conversion fixed ("input.dimension" -> size)
    fixed: dict[str, int] = field(default_factory=dict)

    @property
    def kernel_inputs(self) -> list[Value]:
        """What the kernels read from outside: the graph's inputs (but those only a host gather reads), then each
        host gather's rows."""
        gathered = {g.indices for g in self.gathers} - {i for n in self.nodes for i in n.all_inputs}
        return [*(v for v in self.inputs if v.name not in gathered), *(self.values[g.output] for g in self.gathers)]

    def reads(self) -> set[str]:
        """Every tensor a node or a host gather reads."""
        return {i for n in self.nodes for i in n.all_inputs} | {g.table for g in self.gathers}

    def read_counts(self) -> dict[str, int]:
        """How many reads of each tensor the nodes' kernels make (an operand read twice counts twice)."""
        counts: dict[str, int] = {}
        for n in self.nodes:
            for i in n.all_inputs:
                counts[i] = counts.get(i, 0) + 1
        return counts

    def with_nodes(self, nodes: list[Node], constants: dict[str, np.ndarray]) -> Graph:
        """This graph with ``nodes``, keeping those of ``constants`` that they (or a host gather) read."""
        pruned = dataclasses.replace(self, nodes=nodes)
        return dataclasses.replace(pruned, constants={k: v for k, v in constants.items() if k in pruned.reads()})

    def producer(self) -> dict[str, Node]:
        return {n.output: n for n in self.nodes}

    def consumers(self) -> dict[str, list[Node]]:
        users: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.distinct_inputs:
                users.setdefault(i, []).append(n)
        return users

    def shape(self, name: str) -> tuple[int, ...]:
        if name in self.constants:
            return tuple(self.constants[name].shape)
        return self.values[name].shape

    def workload(self, node: Node) -> Workload:
        """The node's main op as a workload: the key its tuning records are found by."""
        return Workload.create(node.op, [self.shape(i) for i in node.inputs], node.attrs)

    def activations(self) -> Iterator[Value]:
        """Every non-constant tensor: the kernels' inputs and every node's output."""
        yield from self.kernel_inputs
        for n in self.nodes:
            yield self.values[n.output]

    def check(self) -> None:
        """Every tensor a node reads is defined before it; every output is defined."""
        defined = {v.name for v in self.kernel_inputs} | set(self.constants)
        for n in self.nodes:
            for i in n.all_inputs:
                if i not in defined:
                    raise GraphError(f"{n.describe()}: input '{i}' is not defined before the node")
            defined.add(n.output)
        for o in self.outputs:
            if o not in defined:
                raise GraphError(f"graph output '{o}' is not produced by any node")

    def summary(self) -> dict[str, int]:
        ops: dict[str, int] = {}
        for n in self.nodes:
            key = n.op + "".join(f"+{e.op}" for e in n.epilogue)
            ops[key] = ops.get(key, 0) + 1
        return dict(sorted(ops.items()))
