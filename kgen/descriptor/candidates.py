"""Other configs of a node's kernel, shipped beside its program for the page to try (``kgen convert --candidates``).

A candidate runs in place of the chosen kernels: it reads the node's inputs and writes its output. A temporary of
the chosen config's name and size is shared; any other is storage the node's candidates share in the memory plan
(by name and size), and a candidate's prepare kernels (packing weights, filling a padded image's border) ship
with it, to run when it is swapped in. A candidate whose storage of its own would hold more than twice the node's
output (a weight packed for a small layer: the plan would grow by the model's weights), or where it is scratch,
more than that and the node's input, is left out.

The candidates of a node, best first and distinct from the chosen config and from each other:
- the records of the other device classes for its workload (exact, else the nearest shape): a visitor of that
  class runs them from the first run;
- the template default, then the template's seed configs, spread (each next one the seed that differs in most knobs
  from those before it), then configs drawn from its space.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kgen.build import space
from kgen.codegen.program import CompiledProgram
from kgen.descriptor.entries import kernel_json
from kgen.descriptor.nodes import Choice, NodeCache, NodeProgram, choose, kernel_name
from kgen.errors import KgenError
from kgen.graph.ir import Graph
from kgen.records.store import RecordStore
from kgen.scheduling.lower import PREPARED_PREFIXES
from kgen.scheduling.space import Config, Limits

SAMPLED = 16  # configs drawn from a template's space, the last source of candidates


@dataclass(frozen=True)
class Candidate:
    program: NodeProgram
    device: str | None  # the device class whose record this is, or None (a template default or seed)


def other_devices(store: RecordStore | None, backend: str, chosen: str | None) -> list[str]:
    """The device classes with records for ``backend`` other than the one whose records a conversion takes."""
    if store is None:
        return []
    return sorted({r.device_class for r in store.best() if r.backend == backend and r.device_class != chosen})


def _choices(
    graph: Graph,
    np_: NodeProgram,
    backend: str,
    store: RecordStore | None,
    others: list[str],
    fixed: Mapping[str, Any],
    limits: Limits,
) -> Iterator[tuple[Choice, str | None]]:
    for other in others:
        choice = choose(graph, np_.node, backend, store, other, fixed, limits)
        if choice.record is not None:
            yield choice, other
    yield Choice(dict(fixed), "default"), None
    sp = space(graph.workload(np_.node), backend)
    for seed in spread(sp.seed_configs(limits), [np_.config, {**sp.default(), **fixed}]):
        yield Choice({**seed, **fixed}, "seed"), None
    for config in sp.sample(SAMPLED, seed=0, limits=limits):  # where the seeds run out (WebGPU's convs have none)
        yield Choice({**config, **fixed}, "sampled"), None


def _differ(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
    return sum(a.get(k) != b.get(k) for k in a.keys() | b.keys())


def spread(configs: list[Config], taken: list[Config]) -> Iterator[Config]:
    """``configs`` in the order that takes next the one differing in most knobs from the nearest of ``taken`` and
    of those before it (ties in their order): a template's seeds vary the tile axis last, so the first few were
    all on one axis, and MobileNet-v2's 1x1 convs on 112x112, tiled best along channels, had no such candidate."""
    left = list(configs)
    nearest = [min(_differ(c, t) for t in taken) for c in left]  # kept as each next one is taken
    while left:
        i = max(range(len(left)), key=lambda j: (nearest[j], -j))
        chosen = left.pop(i)
        del nearest[i]
        nearest = [min(d, _differ(c, chosen)) for d, c in zip(nearest, left, strict=True)]
        yield chosen


def own_temps(chosen: NodeProgram, alt: NodeProgram) -> dict[str, int]:
    """The temporaries of ``alt`` (name: elements) that the chosen program has none of the same name and size for:
    storage that the node's candidates share by name and size (one is in use at a time, and a page runs a
    candidate's prepare kernels again when it swaps it in)."""
    shared = {(t.name, t.size) for t in chosen.program.temps}
    return {t.name: t.size for t in alt.program.temps if (t.name, t.size) not in shared}


def _affordable(graph: Graph, chosen: NodeProgram, alt: NodeProgram) -> bool:
    """Storage of its own of at most twice the node's output, and where it is scratch, which lives only while the
    node runs (a strided conv's compact copy of its input), the size of the node's input besides: prepared copies
    live as long as the model."""
    own = own_temps(chosen, alt)
    prepared = sum(n for t, n in own.items() if t.startswith(PREPARED_PREFIXES))
    p = chosen.program
    image = max((b.size for b, t in zip(p.inputs, chosen.tensors, strict=True) if t not in graph.constants), default=0)
    return prepared <= 2 * p.output.size and sum(own.values()) <= 2 * p.output.size + image


def candidates(
    graph: Graph,
    np_: NodeProgram,
    backend: str,
    store: RecordStore | None,
    others: list[str],
    fixed: Mapping[str, Any],
    limits: Limits,
    cache: NodeCache,
    count: int,
) -> list[Candidate]:
    """Up to ``count`` configs of ``np_``'s node other than its own, each with storage of its own of at most twice
    the node's output; the first from the records of the device classes ``others``."""
    if count <= 0:
        return []
    seen = {json.dumps(np_.config, sort_keys=True)}
    out: list[Candidate] = []
    name = kernel_name(np_.node)
    for choice, other in _choices(graph, np_, backend, store, others, fixed, limits):
        if len(out) >= count:
            break
        try:
            program, config = cache.lower(graph, np_.node, backend, choice.config, name, limits)
        except KgenError:
            continue  # a record of another shape, or a seed, that cannot serve this node
        key = json.dumps(config, sort_keys=True)
        alt = NodeProgram(np_.node, np_.tensors, program, config, choice, np_.flops)
        if key in seen or not _affordable(graph, np_, alt):
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
) -> dict[str, Any] | None:
    """Node ``k``'s entry in the candidates file (None without candidates): which run kernels its options replace
    (``first`` .. ``end``, counted among the run kernels), the buffer its output is read from to check a candidate
    against the chosen kernels, the workload a measurement is a record of, and each candidate's config, where it
    came from, and kernels: the ones it runs once before it is used (``prepare``) and the ones every run."""
    options = []
    for c, compiled in rendered:
        n_prepare = len(c.program.program.prepare)
        options.append(
            {
                "config": c.program.config,
                "how": c.program.choice.how,
                "device": c.device,
                "digest": compiled.digest,
                "prepare": [kernel_json(x) for x in compiled.kernels[:n_prepare]],
                "kernels": [kernel_json(x) for x in compiled.kernels[n_prepare:]],
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
