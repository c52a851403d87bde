"""A workload: one op on concrete input shapes, dtype and attributes; hashable, keyed, JSON round-trippable."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kgen.errors import KgenError
from kgen.ops.registry import OpDef, get_op


@dataclass(frozen=True)
class Workload:
    op: str
    shapes: tuple[tuple[int, ...], ...]
    dtype: str
    attrs: tuple[tuple[str, Any], ...]

    @classmethod
    def create(
        cls,
        op: str,
        shapes: Sequence[Sequence[int]],
        attrs: Mapping[str, Any] | None = None,
        dtype: str = "float32",
    ) -> Workload:
        """A validated workload with attributes normalized (defaults filled), so equal work has equal keys."""
        opdef = get_op(op)
        norm_shapes = tuple(tuple(int(d) for d in s) for s in shapes)
        norm_attrs = opdef.normalize_attrs(attrs)
        workload = cls(op, norm_shapes, dtype, tuple(sorted(norm_attrs.items())))
        _validate(workload)
        return workload

    @property
    def opdef(self) -> OpDef:
        return get_op(self.op)

    @property
    def attr_dict(self) -> dict[str, Any]:
        return dict(self.attrs)

    @functools.cached_property
    def bare(self) -> Workload | None:
        """This workload without its optional inputs (a conv's bias), whose records serve it too; None where it
        has none."""
        inputs = self.opdef.inputs
        required = sum(not i.optional and not i.variadic for i in inputs)
        if len(self.shapes) > required and not any(i.variadic for i in inputs):
            return Workload.create(self.op, self.shapes[:required], self.attr_dict, self.dtype)
        return None

    @property
    def relative_attrs(self) -> dict[str, Any]:
        """The attributes as records of other shapes compare them (``OpDef.relative_attrs``)."""
        relative = self.opdef.relative_attrs
        return relative(self.shapes, self.attr_dict) if relative else self.attr_dict

    def build(self):
        """Placeholders and the TE output of this workload."""
        return self.opdef.build(self.shapes, self.attr_dict, self.dtype)

    @property
    def key(self) -> str:
        """Stable string key, e.g. ``conv2d/float32/1x3x8x8,4x3x3x3/dilations=1,1;group=1;...``."""
        shapes = ",".join("x".join(map(str, s)) for s in self.shapes)
        attrs = ";".join(f"{k}={_attr_text(v)}" for k, v in self.attrs)
        return f"{self.op}/{self.dtype}/{shapes}/{attrs}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "op": self.op,
                "shapes": [list(s) for s in self.shapes],
                "dtype": self.dtype,
                "attrs": {k: list(v) if isinstance(v, tuple) else v for k, v in self.attrs},
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Workload:
        try:
            data = json.loads(text)
            return cls.create(data["op"], data["shapes"], data.get("attrs", {}), data.get("dtype", "float32"))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise KgenError(f"workload JSON is malformed: {err}") from None


@functools.lru_cache(maxsize=4096)
def _validate(workload: Workload) -> None:
    """Build the workload's TE, which checks its shapes against its attributes: once per workload, since a model's
    conversion creates the same ones for every node of a repeated layer and every backend (a failure is not
    cached, so it is raised every time)."""
    workload.build()


def _attr_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(map(_attr_text, value))
    return repr(value) if isinstance(value, float) else str(value)
