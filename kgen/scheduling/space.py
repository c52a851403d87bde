"""Search spaces: knobs declared next to the schedule that uses them (AutoTVM's define_knob/define_split).

A config is a flat dict of knob values (JSON-serialisable, hashable as sorted items). A space lists its knobs
(choices and flags; a split factor is a choice whose divisibility is a constraint, since what it splits may
depend on another knob) and its constraints; a constraint sees the config and the device limits, so nothing
that cannot run is ever measured. The first value of every knob is the default, and templates declare spaces
whose default is valid for any shape.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kgen.errors import KgenError

Config = dict[str, Any]
Limits = Mapping[str, int]

#: WebGPU's guaranteed minimums; a device reports its own (``kgen doctor``)
DEFAULT_LIMITS: dict[str, int] = {
    "max_workgroup_invocations": 256,
    "max_workgroup_size_x": 256,
    "max_workgroup_size_y": 256,
    "max_workgroup_storage_bytes": 16384,
    "max_storage_buffers_per_stage": 8,
    "max_workgroups_per_dimension": 65535,
    "max_storage_buffer_binding_size": 134217728,  # WebGPU's guaranteed 128 MiB; adapters report more
    "max_texture_size": 4096,  # WebGL2 guarantees 2048; nearly every device has 4096 or more
    "max_draw_buffers": 4,  # WebGL2's render targets per draw: 4 guaranteed; 8 on most devices (SwiftShader too)
    "max_threads": 1,  # WebAssembly threads: more only on a cross-origin isolated page (SharedArrayBuffer)
    "relaxed_simd": 1,  # whether WebAssembly's relaxed SIMD validates (Chromium and Firefox: yes; Safari: no)
}
#: the limits that a lowering reads only through its space's constraints: a config valid under two of them lowers
#: to the same program under both (so ``webgl`` and ``webgl-4``, ``wasm`` and ``wasm-simd128`` share programs)
CONSTRAINT_ONLY_LIMITS = ("max_draw_buffers", "max_threads", "relaxed_simd")


@dataclass(frozen=True)
class Knob:
    name: str
    values: tuple[Any, ...]
    doc: str = ""

    @property
    def default(self) -> Any:
        return self.values[0]


def is_choice(value: Any, values: Sequence[Any]) -> bool:
    """``value`` is one of ``values`` and of its type: 4.0 and True are not the int knob values 4 and 1 (Python's
    ``in`` says they are, and a float then reached the kernel text as ``@workgroup_size(64.0)``)."""
    return any(type(value) is type(v) and value == v for v in values)


def choice(name: str, values: Sequence[Any], doc: str = "") -> Knob:
    if not values:
        raise ValueError(f"knob {name} has no values")
    return Knob(name, tuple(values), doc)


def distinct(configs: Sequence[Mapping[str, Any]], names: set[str]) -> tuple[Config, ...]:
    """``configs`` restricted to the knobs ``names`` (a template's seeds, written for every op, in the space of
    one stage), each once, in order."""
    unique: dict[str, Config] = {}
    for c in configs:
        config = {k: v for k, v in c.items() if k in names}
        unique.setdefault(json.dumps(config, sort_keys=True), config)
    return tuple(unique.values())


def flag(name: str, doc: str = "", default: bool = False) -> Knob:
    return Knob(name, (int(default), int(not default)), doc)


@dataclass(frozen=True)
class Constraint:
    description: str
    check: Callable[[Config, Limits], bool]


#: a WebAssembly space's knobs ``vector`` and ``threads`` against what the page can run
WASM_LIMITS = (
    Constraint(
        "f32x4_fma needs relaxed SIMD, which this browser does not validate (limit relaxed_simd)",
        lambda c, limits: c["vector"] != "f32x4_fma" or limits.get("relaxed_simd", 1),
    ),
    Constraint(
        "more threads than the page may run (cross-origin isolation and cores: limit max_threads)",
        lambda c, limits: c["threads"] <= limits.get("max_threads", 1),
    ),
)


@dataclass(frozen=True)
class Space:
    knobs: tuple[Knob, ...]
    constraints: tuple[Constraint, ...] = field(default_factory=tuple)
    #: configs worth trying first (a template's rules of thumb), partial: missing knobs take their defaults
    seeds: tuple[Config, ...] = field(default_factory=tuple)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.knobs)

    @property
    def size(self) -> int:
        total = 1
        for k in self.knobs:
            total *= len(k.values)
        return total

    def default(self) -> Config:
        return {k.name: k.default for k in self.knobs}

    def violations(self, config: Mapping[str, Any], limits: Limits = DEFAULT_LIMITS) -> list[str]:
        """Why ``config`` cannot run (empty when it can)."""
        problems = []
        known = {k.name: k for k in self.knobs}
        for name in config:
            if name not in known:
                problems.append(f"unknown knob '{name}' (knobs: {', '.join(known) or 'none'})")
        for k in self.knobs:
            if k.name not in config:
                problems.append(f"knob '{k.name}' is missing")
            elif not is_choice(config[k.name], k.values):
                allowed = ", ".join(map(repr, k.values))
                problems.append(f"knob '{k.name}'={json.dumps(config[k.name])} is not one of {allowed}")
        if problems:
            return problems
        return [c.description for c in self.constraints if not c.check(config, limits)]

    def fix(self, values: Mapping[str, Any]) -> Space:
        """This space with the knobs in ``values`` held at those values (e.g. a thread count to tune at)."""
        known = {k.name: k for k in self.knobs}
        for name, value in values.items():
            if name not in known:
                raise KgenError(f"cannot fix unknown knob '{name}' (knobs: {', '.join(known) or 'none'})")
            if not is_choice(value, known[name].values):
                allowed = ", ".join(map(repr, known[name].values))
                raise KgenError(f"cannot fix knob '{name}' at {value!r}: not one of {allowed}")
        knobs = tuple(Knob(k.name, (values[k.name],), k.doc) if k.name in values else k for k in self.knobs)
        return Space(knobs, self.constraints, tuple({**seed, **values} for seed in self.seeds))

    def seed_configs(self, limits: Limits = DEFAULT_LIMITS) -> list[Config]:
        """The seeds completed with defaults, those valid under ``limits``."""
        full = [{**self.default(), **seed} for seed in self.seeds]
        return [c for c in full if not self.violations(c, limits)]

    def complete(self, config: Mapping[str, Any] | None, limits: Limits = DEFAULT_LIMITS) -> Config:
        """``config`` with missing knobs at their defaults; raises naming every problem if it cannot run."""
        full = {**self.default(), **(config or {})}
        problems = self.violations(full, limits)
        if problems:
            raise KgenError(f"invalid config {json.dumps(dict(config or {}), sort_keys=True)}: {'; '.join(problems)}")
        return full

    def enumerate(self, limits: Limits = DEFAULT_LIMITS) -> Iterator[Config]:
        for values in itertools.product(*(k.values for k in self.knobs)):
            config = dict(zip(self.names, values, strict=True))
            if not self.violations(config, limits):
                yield config

    def sample(self, n: int, seed: int = 0, limits: Limits = DEFAULT_LIMITS) -> list[Config]:
        """Up to ``n`` distinct valid configs drawn uniformly (the whole space when it is small)."""
        rng = random.Random(seed)
        if self.size <= 4 * n:
            valid = list(self.enumerate(limits))
            rng.shuffle(valid)
            return valid[:n]
        seen: set[str] = set()
        out: list[Config] = []
        for _ in range(50 * n):
            config = {k.name: rng.choice(k.values) for k in self.knobs}
            key = json.dumps(config, sort_keys=True)
            if key not in seen and not self.violations(config, limits):
                seen.add(key)
                out.append(config)
                if len(out) == n:
                    break
        return out
