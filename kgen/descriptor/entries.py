"""The entries of a program file (``<variant>.json``): a graph input's or output's, a kernel's, a node's and the
memory plan's; shared by the flat assembly (``assemble``) and the textures' (``webgl``)."""

from __future__ import annotations

from typing import Any

from kgen.codegen.program import Binding, CompiledKernel, CompiledProgram
from kgen.descriptor.nodes import NodeProgram
from kgen.graph.ir import Graph


def io_entry(graph: Graph, name: str, buffer: str) -> dict[str, Any]:
    """A graph input's or output's entry in a program file: what the page sees, and the buffer that holds it."""
    v = graph.values[name]
    return {"name": name, "shape": list(v.shape), "dtype": v.dtype, "buffer": buffer}


def memory_report(planned: int, weights: int, activation_peak: int, tenants, persistent) -> dict[str, int]:
    """The plan's sizes: all it needs, the persistent part (weights, prepared copies), the activations' peak and
    what the activations would take unplanned."""
    return {
        "planned_bytes": planned,
        "weights_bytes": weights,
        "activation_peak_bytes": activation_peak,
        "activation_sum_bytes": sum(t.nbytes for t in tenants if t.name not in persistent),
    }


def kernel_json(k: CompiledKernel) -> dict[str, Any]:
    """A kernel's entry in a program file: its source, or where it has one its binary alone (a wasm module: its
    text, five times the bytes, is not what the page runs; `kgen convert` writes it beside, in ``<variant>.wat``)."""
    code = {"source": k.source} if k.binary is None else {"binary": k.binary}
    return {
        "name": k.name,
        **code,
        "workgroup": list(k.workgroup),
        "grid": list(k.grid),
        "bindings": [_binding_json(b) for b in k.bindings],
    }


def _binding_json(b: Binding) -> dict[str, Any]:
    return {"binding": b.binding, "buffer": b.buffer, "view": b.view, "access": b.access}


def node_json(np_: NodeProgram) -> dict[str, Any]:
    n = np_.node
    c = np_.choice
    return {
        "name": n.name,
        "op": n.op,
        "epilogue": [e.op for e in n.epilogue],
        "kernels": len(np_.program.launches),
        "flops": np_.flops,
        "how": c.how,
        "record": c.record.key if c.record else None,
        "gflops": round(c.record.gflops, 3) if c.record else None,
        "note": c.note,
        "config": np_.config,
    }


def single_entry(k: int, alone: NodeProgram, compiled: CompiledProgram) -> dict[str, Any]:
    """Node ``k``'s kernels on one thread, in a threaded program's ``<variant>.single.json``: its config, the
    kernels it runs once before it is used (``prepare``: its own packed weights) and the ones every run, which
    take the place of the node's run kernels (named ``n<k>_...``) while the page runs one thread."""
    n_prepare = len(alone.program.prepare)
    return {
        "node": k,
        "name": alone.node.name,
        "config": alone.config,
        "prepare": [kernel_json(x) for x in compiled.kernels[:n_prepare]],
        "kernels": [kernel_json(x) for x in compiled.kernels[n_prepare:]],
    }
