"""Fold the reshapes around a transpose into it: one ``permute`` node (the input read in the reshape's shape, the
axes permuted, the result in the next reshape's shape) where there were up to three. For textures (WebGL), where a
reshape is a copy like a transpose: attention's heads are split from a matmul's output by a reshape and a
transpose, and merged back by a transpose and a reshape (MiniLM on WebGL: 48 copy kernels, 27 ms of 509 on
SwiftShader, become 24). On flat storage a reshape costs nothing and this pass is not run."""

from __future__ import annotations

import dataclasses

from kgen.graph.ir import Graph, Node


def fold_views_into_transposes(graph: Graph) -> Graph:
    uses = graph.read_counts()
    producer = graph.producer()
    consumers = graph.consumers()
    kept = set(graph.outputs)

    def only_use(tensor: str) -> bool:
        return uses.get(tensor) == 1 and tensor not in kept

    folded: dict[str, Node] = {}  # the transpose's name -> its permute
    gone: set[str] = set()  # names of the views folded in
    for node in graph.nodes:
        if node.op != "transpose" or node.epilogue:
            continue
        source = node.inputs[0]
        before = producer.get(source)
        if before is not None and before.is_view and only_use(source) and before.name not in gone:
            source = before.inputs[0]
            gone.add(before.name)
        output = node.output
        after = consumers.get(output, [])
        if len(after) == 1 and after[0].is_view and only_use(output):
            output = after[0].output
            gone.add(after[0].name)
        if source == node.inputs[0] and output == node.output:
            continue
        view = graph.shape(node.inputs[0])
        perm = node.attrs["perm"] or tuple(reversed(range(len(view))))
        attrs = {"view": tuple(view), "perm": tuple(perm), "shape": tuple(graph.shape(output))}
        folded[node.name] = dataclasses.replace(node, op="permute", inputs=[source], output=output, attrs=attrs)
    if not folded:
        return graph
    nodes = [folded.get(n.name, n) for n in graph.nodes if n.name not in gone]
    return dataclasses.replace(graph, nodes=nodes)
