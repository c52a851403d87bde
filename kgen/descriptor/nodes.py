"""One graph node as one program: its TE (the op, then its epilogue), the config chosen for it from the tuning
records (the exact workload, else the nearest tuned shape, else the template default) and its lowered IR.

Generating is deterministic, so equal (node TE, config) pairs are lowered once per conversion (``NodeCache``):
ResNet-50's repeated blocks cost one lowering each, and a model's variants share the programs they have in common.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kgen import backends
from kgen.build import space
from kgen.errors import KgenError
from kgen.graph.ir import Graph, Node
from kgen.ops import get_op
from kgen.records.store import Record, RecordStore
from kgen.scheduling import ir
from kgen.scheduling.lower import lower, main_stage
from kgen.scheduling.space import CONSTRAINT_ONLY_LIMITS, Limits
from kgen.te.tensor import Tensor, placeholder


@dataclass(frozen=True)
class Choice:
    config: dict[str, Any]
    how: str  # "exact" | "nearest" | "default"
    record: Record | None = None
    note: str = ""


@dataclass(frozen=True)
class NodeProgram:
    node: Node
    tensors: tuple[str, ...]  # the graph tensor of each program input in0, in1, ...
    program: ir.Program
    config: dict[str, Any]
    choice: Choice
    flops: int  # the main op's arithmetic (as a record's GFLOP/s counts it)


def node_te(graph: Graph, node: Node) -> tuple[list[Tensor], Tensor, tuple[str, ...]]:
    """Placeholders (one per distinct tensor the node reads), the node's output, and the tensors' names."""
    names = node.distinct_inputs
    opdef = get_op(node.op)
    weights = {
        name
        for k, name in enumerate(node.inputs)
        if k < len(opdef.inputs) and opdef.inputs[k].weight and name in graph.constants
    }
    # the op's own inputs are named as the op names them (input, weight, bias), so that knobs named after them
    # (WebGL's layout_input, layout_weight) are the knobs of the op's tuning records; an epilogue's are in<k>
    roles = {}
    for k, name in enumerate(node.inputs):
        roles.setdefault(name, opdef.input_name(k))
    ph = {
        n: placeholder(graph.shape(n), name=roles.get(n, f"in{k}"), constant=n in weights) for k, n in enumerate(names)
    }
    out = opdef.builder([ph[i] for i in node.inputs], node.attrs)
    for e in node.epilogue:
        args = [ph[i] for i in e.inputs]
        args.insert(e.position, out)
        step = get_op(e.op)
        out = step.builder(args, step.normalize_attrs(e.attrs))
    return [ph[n] for n in names], out, names


def kernel_name(node: Node) -> str:
    """The name a node's kernels are generated under: its ops (equal nodes lower to equal programs; the model
    program prefixes each kernel with its node's position)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join([node.op, *(e.op for e in node.epilogue)]))


class NodeCache:
    """Lowered programs by (node signature, config, backend): a repeated layer is generated once."""

    def __init__(self) -> None:
        self.programs: dict[str, tuple[ir.Program, dict[str, Any]]] = {}
        #: per program, the constraint-only limits it is known to be valid under (those it was lowered under first)
        self.valid_under: dict[str, set[tuple[Any, ...]]] = {}
        self.hits = 0

    def lower(
        self,
        graph: Graph,
        node: Node,
        backend: str,
        config: Mapping[str, Any],
        name: str,
        limits: Limits,
        input_planes: Mapping[int, tuple[int, int]] | None = None,
    ):
        signature = json.dumps(
            {
                "op": node.op,
                "attrs": _plain(node.attrs),
                "shapes": [graph.shape(i) for i in node.all_inputs],
                "const": [i in graph.constants for i in node.all_inputs],
                "same": [node.all_inputs.index(i) for i in node.all_inputs],
                "epilogue": [(e.op, _plain(e.attrs), e.position, len(e.inputs)) for e in node.epilogue],
                "config": dict(config),
                "backend": backend,
                "name": name,
                "limits": {k: v for k, v in limits.items() if k not in CONSTRAINT_ONLY_LIMITS},
                "input_planes": sorted((input_planes or {}).items()),
            },
            sort_keys=True,
            default=str,
        )
        key = hashlib.sha256(signature.encode()).hexdigest()
        checked = tuple(limits.get(k) for k in CONSTRAINT_ONLY_LIMITS)
        if key in self.programs:
            program, full = self.programs[key]
            if checked not in self.valid_under[key]:  # another variant's limits: its constraints, checked once
                sp = space(graph.workload(node), backend)  # the op's knobs: an epilogue's layouts are not in it
                own = {k: v for k, v in full.items() if k in sp.names}
                if broken := sp.violations({**sp.default(), **own}, limits):
                    raise KgenError(f"invalid config {json.dumps(dict(config), sort_keys=True)}: {'; '.join(broken)}")
                self.valid_under[key].add(checked)
            self.hits += 1
            return program, full
        inputs, out, _ = node_te(graph, node)
        result = lower(inputs, out, backends.get(backend).template, config, name, limits, input_planes)
        self.programs[key] = result
        self.valid_under[key] = {checked}
        return result


def _plain(attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()}


def choose(
    graph: Graph,
    node: Node,
    backend: str,
    store: RecordStore | None,
    device: str | None,
    fixed: Mapping[str, Any],
    limits: Limits,
) -> Choice:
    """The config for ``node`` from the records of its main op's workload: preferably one measured with the
    ``fixed`` knob values (a wasm model's thread count), else any, with ``fixed`` overriding its values. A record
    of another shape serves only where its config is valid for this one (knobs of a shape's own, such as
    ``wrap`` or a ``tile_a`` of half a short image, are not): else the next nearest, not the template default."""
    if store is None or device is None:
        return Choice(dict(fixed), "default", note="no records given" if store is None else "no records here")
    workload = graph.workload(node)
    sp = space(workload, backend)
    default = sp.default()

    def valid(config: Mapping[str, Any]) -> bool:
        return not sp.violations({**default, **config, **fixed}, limits)

    for match in (fixed, None):
        lookup = store.lookup(workload, backend, device, valid=valid, fixed=match)
        if lookup.config is not None:
            return Choice({**lookup.config, **fixed}, lookup.how, lookup.record)
    return Choice(dict(fixed), "default")


def program_for(
    graph: Graph,
    node: Node,
    backend: str,
    choice: Choice,
    limits: Limits,
    cache: NodeCache,
    fixed: Mapping[str, Any],
    input_planes: Mapping[int, tuple[int, int]] | None = None,
) -> NodeProgram:
    """The node lowered under ``choice``. A record's config that is not valid for this node (its epilogue, this
    device's limits) falls back to the template default; a default that cannot run here (a weight too large for a
    texture in the default layout) to the template's first seed that can. The choice says so. ``input_planes``:
    see ``kgen.scheduling.lower.lower``."""
    name = kernel_name(node)
    errors: list[KgenError] = []

    def attempts():
        """The choice, then (a record's) the template default, then the template's seeds: each after the one
        before failed, so that its note names that failure."""
        yield choice
        if choice.record is not None:
            yield Choice(dict(fixed), "default", note=f"the record's config is not valid here: {errors[-1]}")
        note = f"the template default is not valid here ({errors[-1]}): its first seed that is"
        for seed in space(graph.workload(node), backend).seed_configs(limits):
            yield Choice({**seed, **fixed}, "default", note=note)

    for attempt in attempts():
        try:
            program, config = cache.lower(graph, node, backend, attempt.config, name, limits, input_planes)
            break
        except KgenError as err:
            errors.append(err)
    else:  # the default's failure: that of the choice where no record was given
        raise KgenError(f"{node.describe()}: {errors[int(choice.record is not None)]}") from None
    choice = attempt
    flops = main_stage(graph.workload(node)).flops
    return NodeProgram(node, node.distinct_inputs, program, config, choice, flops)
