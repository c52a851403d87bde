"""The op registry: each op's inputs, attributes (with defaults and types), TE builder and numpy reference."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kgen import te
from kgen.errors import OpError

REQUIRED = object()
ATTR_KINDS = ("int", "float", "ints", "floats", "string", "ints?")
DTYPES = ("float32",)
MAX_ELEMENTS = 2**31 - 1  # WGSL, GLSL and wasm32 kernels index with i32


@dataclass(frozen=True)
class Attr:
    """An attribute; ``ints?`` is a list of ints that may be left out (None)."""

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple[Any, ...] = ()
    #: a record of another value of it (as ``OpDef.relative_attrs`` gives it) never serves: it makes another
    #: kind of kernel (a conv's group: dense, grouped or depthwise)
    kind_of_kernel: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Input:
    name: str
    optional: bool = False
    variadic: bool = False
    #: a weight: in models almost always a constant (an initializer), so CPU kernels may repack it once
    weight: bool = False


Builder = Callable[[list[te.Tensor], Mapping[str, Any]], te.Tensor]
Reference = Callable[[list[np.ndarray], Mapping[str, Any]], np.ndarray]
Relative = Callable[[tuple[tuple[int, ...], ...], Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class OpDef:
    name: str
    family: str
    doc: str
    inputs: tuple[Input, ...]
    attrs: tuple[Attr, ...]
    builder: Builder
    reference_fn: Reference
    #: input name -> where random test data must stay: "positive" (a variance), "nonzero" (a divisor), "integer"
    #: (small whole numbers, so that comparisons meet equal values), "nonzero integer", "boolean" (0 or 1),
    #: "attention mask" (a query that sees no key)
    domains: tuple[tuple[str, str], ...] = ()
    #: the attributes as a record of another shape compares them (default: as they are); a depthwise conv's
    #: group, which is its channel count, is "channels", so that its records serve depthwise convs of any width
    relative_attrs: Relative | None = None

    def check_arity(self, count: int) -> None:
        names = ", ".join(i.name + ("..." if i.variadic else "") for i in self.inputs)
        if any(i.variadic for i in self.inputs):
            low, high = 1, None
        else:
            low = sum(not i.optional for i in self.inputs)
            high = len(self.inputs)
        if count < low or (high is not None and count > high):
            expected = f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}"
            raise OpError(self.name, f"expected {expected} inputs ({names}), got {count}")

    def normalize_attrs(self, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Attributes with defaults filled in and values coerced; unknown or ill-typed ones are errors."""
        given = dict(attrs or {})
        known = {a.name: a for a in self.attrs}
        for name in given:
            if name not in known:
                expected = ", ".join(known) or "none"
                raise OpError(self.name, f"unknown attribute '{name}' (attributes: {expected})")
        out: dict[str, Any] = {}
        for a in self.attrs:
            if a.name in given:
                out[a.name] = _coerce(self.name, a, given[a.name])
            elif a.required:
                raise OpError(self.name, f"attribute '{a.name}' is required")
            else:
                out[a.name] = a.default
        return out

    def build(self, shapes: Sequence[Sequence[int]], attrs: Mapping[str, Any], dtype: str = "float32"):
        """Placeholders for ``shapes`` and the TE output of this op on them (validates everything)."""
        if dtype not in DTYPES:
            raise OpError(self.name, f"dtype {dtype!r} is not supported (supported: {', '.join(DTYPES)})")
        self.check_arity(len(shapes))
        inputs = []
        for k, shape in enumerate(shapes):
            shape = tuple(shape)
            if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
                raise OpError(self.name, f"input {self.input_name(k)} has invalid shape {shape}")
            weight = k < len(self.inputs) and self.inputs[k].weight
            inputs.append(te.placeholder(shape, dtype, name=self.input_name(k), constant=weight))
        output = self.builder(inputs, self.normalize_attrs(attrs))
        for tensor, what in [*((t, f"input {t.name}") for t in inputs), (output, "the output")]:
            elements = math.prod(tensor.shape)
            if elements > MAX_ELEMENTS:
                shape = "x".join(map(str, tensor.shape))
                raise OpError(
                    self.name,
                    f"{what} ({shape}) has {elements:,} elements; kernels index with 32-bit integers, "
                    f"so a tensor holds at most {MAX_ELEMENTS:,}",
                )
        return inputs, output

    def reference(self, arrays: Sequence[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
        """The hand-written numpy result (float64 inside, float32 out)."""
        wide = [np.asarray(a, dtype=np.float64) for a in arrays]
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            result = self.reference_fn(wide, self.normalize_attrs(attrs))
        return np.asarray(result).astype(np.float32)

    def random_inputs(self, shapes: Sequence[Sequence[int]], rng: np.random.Generator) -> list[np.ndarray]:
        """Seeded float32 test data for each input, inside the op's domain."""
        domains = dict(self.domains)
        arrays = []
        for k, shape in enumerate(shapes):
            domain = domains.get(self.input_name(k))
            if domain is None:
                data = rng.standard_normal(shape)
            elif domain == "boolean":
                data = rng.integers(0, 2, shape)
            elif domain == "integer":
                data = rng.integers(-3, 4, shape)
            elif domain == "nonzero integer":
                data = rng.integers(1, 4, shape) * rng.choice([-1, 1], shape)
            elif domain == "attention mask":  # -inf on every key of the first query (or the first key of each)
                data = rng.standard_normal(shape)
                data[(..., 0, slice(None)) if len(shape) > 1 and shape[-2] > 1 else (..., 0)] = -np.inf
            else:
                data = rng.uniform(0.5, 2.0, shape)
                if domain == "nonzero":
                    data *= rng.choice([-1.0, 1.0], shape)
            arrays.append(data.astype(np.float32))
        return arrays

    def input_name(self, k: int) -> str:
        if k < len(self.inputs) and not self.inputs[k].variadic:
            return self.inputs[k].name
        return f"{self.inputs[-1].name}{k}"


def _coerce(op: str, attr: Attr, value: Any) -> Any:
    where = f"attribute '{attr.name}'"
    kind = attr.kind
    if kind == "ints?" and value is None:
        return None
    if kind in ("ints", "ints?", "floats"):
        if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
            raise OpError(op, f"{where} must be a list of {kind.rstrip('?')}, got {value!r}")
        scalar = Attr(attr.name, "int" if kind != "floats" else "float")
        result = tuple(_coerce(op, scalar, v) for v in value)
    elif kind == "int":
        integral = isinstance(value, int | np.integer) and not isinstance(value, bool)
        if not (integral or (isinstance(value, float) and value.is_integer())):
            raise OpError(op, f"{where} must be an int, got {value!r}")
        result = int(value)
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise OpError(op, f"{where} must be a number, got {value!r}")
        result = float(value)
        if math.isnan(result):
            raise OpError(op, f"{where} must not be NaN")
    else:
        if not isinstance(value, str):
            raise OpError(op, f"{where} must be a string, got {value!r}")
        result = value
    if attr.choices and result not in attr.choices:
        raise OpError(op, f"{where} must be one of {', '.join(map(str, attr.choices))}, got {result!r}")
    return result


_REGISTRY: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in _REGISTRY:
        raise ValueError(f"op {op.name} registered twice")
    for a in op.attrs:
        assert a.kind in ATTR_KINDS, (op.name, a)
    _REGISTRY[op.name] = op
    return op


def get_op(name: str) -> OpDef:
    _load_families()
    if name not in _REGISTRY:
        raise OpError(name, f"unknown op (known ops: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def all_ops() -> list[OpDef]:
    _load_families()
    return sorted(_REGISTRY.values(), key=lambda o: (o.family, o.name))


def _load_families() -> None:
    # importing the family modules registers their ops
    from kgen.ops import (  # noqa: F401
        attention,
        conv,
        elementwise,
        image,
        layout,
        matmul,
        normalization,
        pool,
        reduce,
        softmax,
    )
