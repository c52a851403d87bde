"""A whole model as one program per backend: every node's kernels in run order over the model's storage.

The result has the shape of a ``CompiledProgram`` (``buffers``, ``kernels``, ``memory_bytes``, ``threads``,
``prepare``), so the page's launchers, which the tuner measures with, run a model exactly as they run one
kernel; beside it, which buffer holds each graph input, output and weight.

- Flat storage (every backend's but WebGL's textures): a view node (reshape, flatten) launches nothing; its
  output is its input's storage. A node's prepared copies (packed weights, padded images) persist; its other
  temporaries live for the node alone.
- wasm and js: one memory, weights and prepared copies at the bottom, activations above them at offsets planned
  by liveness; every node is rendered with those offsets as constants, and the memory covers every read's reach.
- webgpu: pooled buffers by liveness; bindings name the pooled buffer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kgen import backends
from kgen.build import space
from kgen.codegen import memory as codegen_memory
from kgen.codegen.program import CompiledKernel, CompiledProgram, RenderOptions
from kgen.descriptor.candidates import Candidate, candidates, offered, other_devices, own_temps
from kgen.descriptor.entries import io_entry, kernel_json, memory_report, node_json, single_entry
from kgen.descriptor.nodes import Choice, NodeCache, NodeProgram, choose, program_for
from kgen.descriptor.webgl import assemble_webgl
from kgen.graph import memory
from kgen.graph.ir import Graph
from kgen.records.store import RecordStore
from kgen.scheduling import ir
from kgen.scheduling.layout import PLANES
from kgen.scheduling.lower import PREPARED_PREFIXES
from kgen.scheduling.space import DEFAULT_LIMITS, Limits


@dataclass
class Assembly:
    backend: str
    program: dict[str, Any]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    weights: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    memory: dict[str, int]
    reused: int = 0
    text: str = ""  # the text of every kernel that ships a binary (wasm modules), in launch order
    candidates: list[dict[str, Any]] = field(default_factory=list)  # other configs per node (``offered``)
    singles: list[dict[str, Any]] = field(default_factory=list)  # threaded wasm: nodes' 1-thread kernels

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "program": self.program,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "weights": self.weights,
            "nodes": self.nodes,
            "memory": self.memory,
        }


@dataclass(frozen=True)
class Options:
    records: RecordStore | None = None
    devices: Mapping[str, str] = field(default_factory=dict)  # backend -> device class of the records
    threads: int = 1  # wasm: the threads every kernel's launch is split between
    relaxed_simd: bool = True  # wasm: whether kernels may use relaxed SIMD's fused multiply-add
    draw_buffers: int = max(PLANES)  # webgl: the render targets a kernel may write (WebGL2 guarantees 4)
    max_texture_size: int = DEFAULT_LIMITS["max_texture_size"]  # webgl: the largest texture side kernels may use
    candidates: int = 1  # flat storage: configs per node, the chosen one and others the page may try (``candidates``)


def _device(options: Options, backend: str) -> str | None:
    """The device class whose records serve ``backend``: the one given, else the one with most records."""
    if backend in options.devices:
        return options.devices[backend]
    if options.records is None:
        return None
    counts: dict[str, int] = {}
    for r in options.records.best():
        if r.backend == backend:
            counts[r.device_class] = counts.get(r.device_class, 0) + 1
    return max(counts, key=lambda d: (counts[d], d)) if counts else None


def _limits(backend: str, options: Options) -> Limits:
    if not backends.get(backend).threads:
        return DEFAULT_LIMITS
    return {**DEFAULT_LIMITS, "max_threads": options.threads, "relaxed_simd": int(options.relaxed_simd)}


def _adapt(backend: str, options: Options, choice: Choice) -> Choice:
    """A record's config for a wasm variant without relaxed SIMD: its fused multiply-adds as f32x4 mul + add."""
    if backends.get(backend).threads and not options.relaxed_simd and choice.config.get("vector") == "f32x4_fma":
        return replace(choice, config={**choice.config, "vector": "f32x4"})
    return choice


def _packed(graph: Graph, node, backend: str, choice: Choice, limits: Limits) -> Choice:
    """A matmul reads its constant weight through the packed copy, whatever its record says. The tuner times a
    kernel with its weight in the core's cache, where packing gains nothing; in a model the other weights have
    evicted it since it was last read, and rows a whole weight row apart then load slower than one contiguous
    panel (MiniLM's 384x384 projections on wasm: 0.98 -> 0.88 ms). Convolutions keep their records' choice: they
    read their filters over far more rows, and ResNet-50 on wasm gained nothing."""
    if node.op not in ("matmul", "gemm") or choice.config.get("pack") != 0:
        return choice
    packed = {**choice.config, "pack": 1}
    knobs = space(graph.workload(node), backend)
    if knobs.violations({**knobs.default(), **packed}, limits):
        return choice
    return replace(choice, config=packed, note="its weight packed, as a model reads it from beyond the cache")


def _fixed(backend: str, options: Options) -> dict[str, Any]:
    return {"threads": options.threads} if backends.get(backend).threads else {}


def lower_nodes(
    graph: Graph, backend: str, options: Options, cache: NodeCache
) -> list[tuple[NodeProgram, list[Candidate], NodeProgram | None]]:
    """Every kernel node of ``graph`` lowered for ``backend`` (view nodes are left out on flat storage), with up to
    ``options.candidates - 1`` other configs of it, and on a threaded program its config on one thread (``_alone``)."""
    device = _device(options, backend)
    limits = _limits(backend, options)
    flat = backends.get(backend).storage != "textures"
    others = other_devices(options.records, backend, device) if options.candidates > 1 else []
    out = []
    for node in graph.nodes:
        if flat and node.is_view:
            continue
        # a record is checked with relaxed SIMD: _adapt makes its fused multiply-adds mul + add where it is off
        choice, fixed, one = _choose(graph, node, backend, options, device, {**limits, "relaxed_simd": 1})
        choice = _packed(graph, node, backend, _adapt(backend, options, choice), limits)
        np_ = program_for(graph, node, backend, choice, limits, cache, fixed)
        alts = candidates(graph, np_, backend, options.records, others, fixed, limits, cache, options.candidates - 1)
        alone = None
        if one is not None:
            one = _packed(graph, node, backend, _adapt(backend, options, one), limits)
            alone = program_for(graph, node, backend, one, limits, cache, {"threads": 1})
            if alone.choice.record is None or not _affordable_alone(graph, np_, alone):
                alone = None
        out.append((np_, alts, alone))
    return out


def _choose(
    graph: Graph, node, backend: str, options: Options, device: str | None, limits: Limits
) -> tuple[Choice, dict[str, Any], Choice | None]:
    """The node's config and the knobs held for it; on a threaded wasm program also its record on one thread where
    that config differs (the page runs it while it chooses one thread). A node whose exact record on one thread
    is faster than its exact record on the program's threads runs on one (a short kernel loses more to the
    workers' start than it gains), where that record is short enough that the workers still spin when it ends:
    after a longer one they sleep, and their wake-up costs the next node more than the node gained."""
    fixed = _fixed(backend, options)
    choice = choose(graph, node, backend, options.records, device, fixed, limits)
    if not backends.get(backend).threads or options.threads == 1:
        return choice, fixed, None
    alone = {"threads": 1}
    single = choose(graph, node, backend, options.records, device, alone, limits)

    def exact_ms(c: Choice, threads: int) -> float | None:
        ok = c.how == "exact" and c.record is not None and c.record.config.get("threads") == threads
        return c.record.median_ms if ok else None  # type: ignore[union-attr]

    many, one = exact_ms(choice, options.threads), exact_ms(single, 1)
    spin = backends.get(backend).worker_spin_ms
    if one is not None and many is not None and one < many and one <= spin:  # both measured, and the workers spin
        return single, alone, None
    measured_alone = single.record is not None and single.record.config.get("threads") == 1
    same = {**single.config, "threads": 0} == {**choice.config, "threads": 0}
    return choice, fixed, single if measured_alone and not same else None


def _alone_own(np_: NodeProgram, alone: NodeProgram) -> list[ir.Buffer]:
    """The temporaries of a node's 1-thread kernels that are storage of their own: every prepared copy (the page
    runs both programs in turn, so a packed weight of one layout must not overwrite the other's), and scratch where
    the chosen kernels have none of that name and size."""
    scratch = {(t.name, t.size) for t in np_.program.temps if not t.name.startswith(PREPARED_PREFIXES)}
    return [t for t in alone.program.temps if (t.name, t.size) not in scratch]


def _affordable_alone(graph: Graph, np_: NodeProgram, alone: NodeProgram) -> bool:
    """At most a copy of the node's weights and twice its output of storage of their own."""
    weights = sum(math.prod(graph.shape(t)) for t in np_.tensors if t in graph.constants)
    return sum(t.size for t in _alone_own(np_, alone)) <= weights + 2 * np_.program.output.size


def storage_roots(graph: Graph, backend: str) -> dict[str, str]:
    """The tensor whose storage each tensor uses: itself, or for a view's output on flat storage, the root of
    the view's input."""
    roots: dict[str, str] = {}
    for v in graph.activations():
        roots[v.name] = v.name
    for name in graph.constants:
        roots[name] = name
    if backends.get(backend).storage != "textures":
        for node in graph.nodes:
            if node.is_view:
                roots[node.output] = roots[node.inputs[0]]
    return roots


def _buffer_names(np_: NodeProgram, roots: Mapping[str, str], prefix: str) -> dict[str, str]:
    """Program buffer name -> model storage name."""
    p = np_.program
    names = {b.name: roots[t] for b, t in zip(p.inputs, np_.tensors, strict=True)}
    names[p.output.name] = roots[np_.node.output]
    for b in p.temps:
        names[b.name] = f"{prefix}.{b.name}"
    return names


def assemble(graph: Graph, backend: str, options: Options, cache: NodeCache | None = None) -> Assembly:
    spec = backends.get(backend)
    cache = cache or NodeCache()
    hits = cache.hits
    if spec.storage == "textures":
        program, inputs, outputs, weights, nodes, report = assemble_webgl(
            graph, options.records, _device(options, backend), cache, options.draw_buffers, options.max_texture_size
        )
        return Assembly(backend, program, inputs, outputs, weights, nodes, report, reused=cache.hits - hits)
    lowered = lower_nodes(graph, backend, options, cache)
    roots = storage_roots(graph, backend)
    sizes: dict[str, int] = {}  # storage -> elements
    persistent: set[str] = set()
    steps: list[tuple[list[str], list[str]]] = []
    mapping: list[dict[str, str]] = []
    alt_mapping: list[list[dict[str, str]]] = []  # per node, each candidate's buffer -> storage
    alone_mapping: list[dict[str, str] | None] = []  # per node, its 1-thread kernels' buffer -> storage
    for k, (np_, alts, alone) in enumerate(lowered):
        names = _buffer_names(np_, roots, f"n{k}")
        mapping.append(names)
        # a candidate shares the node's inputs, output and same-named temporaries; the rest is its own storage
        alt_names = [{**names, **{t: f"n{k}.alt.{t}.{n}" for t, n in own_temps(np_, c.program).items()}} for c in alts]
        alt_mapping.append(alt_names)
        own = {t.name: f"n{k}.one.{t.name}" for t in _alone_own(np_, alone)} if alone is not None else None
        alone_names = {**names, **own} if own is not None else None
        alone_mapping.append(alone_names)
        reads: list[str] = []
        writes: list[str] = []
        others = [(c.program.program, a) for c, a in zip(alts, alt_names, strict=True)]
        if alone is not None and alone_names is not None:
            others.append((alone.program, alone_names))
        for program, m in [(np_.program, names), *others]:
            for b in (*program.inputs, *program.temps, program.output):
                sizes[m[b.name]] = max(sizes.get(m[b.name], 0), b.size)
            persistent |= {m[b.name] for b in program.temps if b.name.startswith(PREPARED_PREFIXES)}
            persistent |= {m[b.name] for b, t in zip(program.inputs, np_.tensors, strict=True) if t in graph.constants}
            reads += [m[b.name] for b in program.inputs]
            writes += [m[b.name] for b in (*program.temps, program.output)]
        steps.append((reads, writes))
    for name in [*(v.name for v in graph.kernel_inputs), *graph.outputs]:
        sizes.setdefault(roots[name], math.prod(graph.shape(name)))
    outputs = {roots[o] for o in graph.outputs}
    tenants = memory.lifetimes(steps, {n: 4 * s for n, s in sizes.items()}, keep=outputs, always=persistent)
    if spec.storage == "buffers":
        slot_of, slot_bytes = memory.plan_pool(tenants)
        slot_elems = [-(-b // 16) * 4 for b in slot_bytes]
        buffer_of = {n: f"b{slot_of[n]}" for n in sizes}
        buffers = [{"name": f"b{s}", "dtype": "float32", "size": e, "role": "temp"} for s, e in enumerate(slot_elems)]
        planned = sum(4 * e for e in slot_elems)
        activation_peak = planned - sum(4 * sizes[n] for n in persistent)  # persistent tenants: slots of their own
        program: dict[str, Any] = {"backend": backend, "buffers": buffers}

        def render(k: int, np_: NodeProgram, names: dict[str, str]) -> CompiledProgram:
            compiled = spec.render(np_.program, RenderOptions())
            kernels = [
                replace(
                    kernel,
                    name=f"n{k}_{kernel.name}",
                    bindings=tuple(replace(b, buffer=buffer_of[names[b.buffer]]) for b in kernel.bindings),
                )
                for kernel in compiled.kernels
            ]
            return replace(compiled, kernels=tuple(kernels))
    else:
        every = [
            (c.program if c else np_, m)
            for (np_, alts, _), names, alt_names in zip(lowered, mapping, alt_mapping, strict=True)
            for c, m in [(None, names), *zip(alts, alt_names, strict=True)]
        ]
        alones = zip((alone for _, _, alone in lowered), alone_mapping, strict=True)
        every += [(alone, m) for alone, m in alones if alone is not None and m is not None]
        offsets, spans, activation_peak = _place_flat(tenants, persistent, every, sizes)
        placed, end = codegen_memory.fit(offsets, spans)
        pages = max(1, -(-end // codegen_memory.PAGE))
        memory_bytes = pages * codegen_memory.PAGE if spec.storage == "linear" else end
        buffer_of = {n: n for n in sizes}
        buffers = [
            {"name": n, "dtype": "float32", "size": sizes[n], "role": "temp", "offset": placed[n]}
            for n in sorted(sizes)
        ]
        planned = memory_bytes
        program = {"backend": backend, "buffers": buffers, "memory_bytes": memory_bytes}
        threads = options.threads if spec.threads else 1

        def render(k: int, np_: NodeProgram, names: dict[str, str]) -> CompiledProgram:
            placement = ({b: placed[m] for b, m in names.items()}, memory_bytes)
            compiled = spec.render(np_.program, RenderOptions(threads, placement))
            return replace(
                compiled, kernels=tuple(replace(kernel, name=f"n{k}_{kernel.name}") for kernel in compiled.kernels)
            )

    kernels_prepare: list[CompiledKernel] = []
    kernels_run: list[CompiledKernel] = []
    kernel_threads: dict[str, int] = {}  # wasm: the threads each kernel's node was configured with
    offers: list[dict[str, Any]] = []
    singles: list[dict[str, Any]] = []
    for k, ((np_, alts, alone), names, alt_names) in enumerate(zip(lowered, mapping, alt_mapping, strict=True)):
        named = render(k, np_, names).kernels
        n_prepare = len(np_.program.prepare)
        kernels_prepare += named[:n_prepare]
        first = len(kernels_run)
        kernels_run += named[n_prepare:]
        kernel_threads.update(dict.fromkeys((kernel.name for kernel in named), np_.config.get("threads")))
        output = buffer_of[names[np_.program.output.name]]
        rendered = [(c, render(k, c.program, m)) for c, m in zip(alts, alt_names, strict=True)]
        offer = offered(graph, k, np_, first, output, rendered)
        if offer:
            offers.append(offer)
        alone_names = alone_mapping[k]
        if alone is not None and alone_names is not None:
            singles.append(single_entry(k, alone, render(k, alone, alone_names)))
    if spec.threads:
        program["threads"] = options.threads
        program["relaxed_simd"] = any("relaxed_madd" in k.source for k in kernels_run + kernels_prepare)
    kernels = [*kernels_prepare, *kernels_run]
    program["kernels"] = [kernel_json(k) for k in kernels]
    program["prepare"] = len(kernels_prepare)
    if spec.threads and options.threads > 1:  # a node tuned fastest on one thread runs on one
        for entry in program["kernels"]:
            entry["threads"] = kernel_threads[entry["name"]]
        for offer in offers:
            for option in offer["options"]:
                for entry in (*option["prepare"], *option["kernels"]):
                    entry["threads"] = option["config"].get("threads")
    for offer in offers:  # their kernels' places in the program, after its prepare kernels
        offer["first"] += len(kernels_prepare)
        offer["end"] += len(kernels_prepare)
    report = memory_report(planned, sum(4 * sizes[n] for n in persistent), activation_peak, tenants, persistent)
    return Assembly(
        backend,
        program,
        inputs=[io_entry(graph, v.name, buffer_of[roots[v.name]]) for v in graph.kernel_inputs],
        outputs=[io_entry(graph, o, buffer_of[roots[o]]) for o in graph.outputs],
        weights=[
            {"tensor": name, "buffer": buffer_of[roots[name]], "shape": list(graph.shape(name))}
            for name in sorted({t for np_, _, _ in lowered for t in np_.tensors if t in graph.constants})
        ],
        nodes=[node_json(np_) for np_, _, _ in lowered],
        memory=report,
        candidates=offers,
        singles=singles,
        reused=cache.hits - hits,
        text="".join(f";; kernel {k.name}\n{k.source}\n" for k in kernels if k.binary is not None),
    )


def _place_flat(tenants, persistent, programs, sizes):
    """Offsets in one memory: persistent storage (weights, prepared copies) in a row at the bottom, activations
    above it, planned by liveness (their peak: the bytes that plan needs); and each storage's reach (elements)
    over every kernel that touches it."""
    offsets: dict[str, int] = {}
    cursor = 0
    for n in sorted(persistent):
        offsets[n] = cursor
        cursor = -(-(cursor + 4 * sizes[n]) // memory.ALIGN) * memory.ALIGN
    active, activation_peak = memory.plan_offsets([t for t in tenants if t.name not in persistent])
    offsets.update({n: cursor + o for n, o in active.items()})
    spans = {n: (0, sizes[n] - 1) for n in sizes}
    for np_, names in programs:  # every node's program and its candidates': each must read within the memory
        for b, (lo, hi) in codegen_memory.reaches(np_.program).items():
            m = names[b]
            spans[m] = (min(spans[m][0], lo), max(spans[m][1], hi))
    return offsets, spans, activation_peak
