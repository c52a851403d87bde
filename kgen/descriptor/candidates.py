"""Other configs of a node's kernel, shipped beside its program for the page to try (``kgen convert --candidates``).

A candidate runs in place of the chosen kernel over the same storage: it reads the node's inputs and writes its
output and the same temporaries, and its prepare kernels (packed weights, padding) are the chosen one's. So a
page swaps it in between two runs with nothing else changed; a config that needs other storage is left out.

The candidates of a node, best first and distinct from the chosen config and from each other:
- the records of the other device classes for its workload (exact, else the nearest shape): a visitor of that
  class runs them from the first run;
- the template default, then the template's seed configs, then configs drawn from its space.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kgen.build import space
from kgen.codegen.program import CompiledKernel, CompiledProgram
from kgen.descriptor.entries import kernel_json
from kgen.descriptor.nodes import Choice, NodeCache, NodeProgram, choose, kernel_name
from kgen.errors import KgenError
from kgen.graph.ir import Graph
from kgen.records.store import RecordStore
from kgen.scheduling.space import Limits

SAMPLED = 16  # configs drawn from a template's space, the last source of candidates


@dataclass(frozen=True)
class Candidate:
    program: NodeProgram
    device: str | None  # the device class whose record this is, or None (a template default or seed)


def _device_classes(store: RecordStore | None, backend: str, chosen: str | None) -> list[str]:
    if store is None:
        return []
    return sorted({r.device_class for r in store.best() if r.backend == backend and r.device_class != chosen})


def _choices(
    graph: Graph,
    np_: NodeProgram,
    backend: str,
    store: RecordStore | None,
    device: str | None,
    fixed: Mapping[str, Any],
    limits: Limits,
) -> Iterator[tuple[Choice, str | None]]:
    for other in _device_classes(store, backend, device):
        choice = choose(graph, np_.node, backend, store, other, fixed, limits)
        if choice.record is not None:
            yield choice, other
    yield Choice(dict(fixed), "default"), None
    sp = space(graph.workload(np_.node), backend)
    for seed in sp.seed_configs(limits):
        yield Choice({**seed, **fixed}, "seed"), None
    for config in sp.sample(SAMPLED, seed=0, limits=limits):  # where the seeds run out (WebGPU's convs have none)
        yield Choice({**config, **fixed}, "sampled"), None


def _same_storage(a: NodeProgram, b: NodeProgram) -> bool:
    """Whether ``b`` reads and writes what ``a`` does: the same temporaries and prepare kernels' shapes."""
    pa, pb = a.program, b.program
    temps = [(t.name, t.size) for t in pa.temps] == [(t.name, t.size) for t in pb.temps]
    return temps and len(pa.prepare) == len(pb.prepare)


def candidates(
    graph: Graph,
    np_: NodeProgram,
    backend: str,
    store: RecordStore | None,
    device: str | None,
    fixed: Mapping[str, Any],
    limits: Limits,
    cache: NodeCache,
    count: int,
) -> list[Candidate]:
    """Up to ``count`` configs of ``np_``'s node other than its own that run over the same storage."""
    if count <= 0:
        return []
    seen = {json.dumps(np_.config, sort_keys=True)}
    out: list[Candidate] = []
    name = kernel_name(np_.node)
    for choice, other in _choices(graph, np_, backend, store, device, fixed, limits):
        if len(out) >= count:
            break
        try:
            program, config = cache.lower(graph, np_.node, backend, choice.config, name, limits)
        except KgenError:
            continue  # a record of another shape, or a seed, that cannot serve this node
        key = json.dumps(config, sort_keys=True)
        alt = NodeProgram(np_.node, np_.tensors, program, config, choice, np_.flops)
        if key in seen or not _same_storage(np_, alt):
            continue
        seen.add(key)
        out.append(Candidate(alt, other))
    return out


def offered(
    graph: Graph,
    k: int,
    np_: NodeProgram,
    first: int,
    output: str,
    rendered: list[tuple[Candidate, CompiledProgram]],
    prepare: Sequence[CompiledKernel],
) -> dict[str, Any] | None:
    """Node ``k``'s entry in the candidates file, or None where no ``rendered`` candidate has the chosen config's
    prepare kernels and as many run kernels: which run kernels it replaces (``first`` .. ``end``, counted among the
    run kernels), the buffer its output is read from to check a candidate against the chosen kernel, the workload a
    measurement is a record of, and each candidate's config, where it came from and kernels."""
    options = []
    for c, compiled in rendered:
        same_prepare = [x.source for x in compiled.kernels[: len(prepare)]] == [x.source for x in prepare]
        if not same_prepare or len(compiled.kernels) != len(prepare) + len(np_.program.kernels):
            continue  # a page swaps a node's run kernels one for one
        options.append(
            {
                "config": c.program.config,
                "how": c.program.choice.how,
                "device": c.device,
                "digest": compiled.digest,
                "kernels": [kernel_json(x) for x in compiled.kernels[len(prepare) :]],
            }
        )
    if not options:
        return None
    workload = graph.workload(np_.node)
    return {
        "node": k,
        "name": np_.node.name,
        "first": first,
        "end": first + len(np_.program.kernels),
        "output": output,
        "output_size": np_.program.output.size,
        "workload": json.loads(workload.to_json()),
        "key": workload.key,
        "flops": np_.flops,
        "config": np_.config,
        "options": options,
    }
