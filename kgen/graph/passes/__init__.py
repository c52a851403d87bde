"""Graph passes: each one small function from a graph to a graph (the input is not modified)."""

from __future__ import annotations

from collections.abc import Collection

from kgen.graph.ir import Graph
from kgen.graph.passes.fold_batchnorm import fold_batchnorm
from kgen.graph.passes.fold_constants import fold_constants
from kgen.graph.passes.fuse_epilogues import fuse_epilogues
from kgen.graph.passes.recognize import recognize

PIPELINE = (fold_constants, recognize, fold_batchnorm, fuse_epilogues)


def optimize(graph: Graph, unfused: Collection[str] = ()) -> Graph:
    """Every pass, in order; the patterns named in ``unfused`` (``recognize.OPTIONAL``) are left as they are."""
    for p in PIPELINE:
        graph = recognize(graph, unfused) if p is recognize else p(graph)
    return graph


__all__ = ["PIPELINE", "fold_batchnorm", "fold_constants", "fuse_epilogues", "optimize", "recognize"]
