"""Ops that move data without arithmetic: concat, transpose, reshape, flatten, pad, slice, expand, tile (ONNX
semantics), and permute (a transpose with the reshapes around it, which the WebGL converter folds in)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy

from kgen import te
from kgen.errors import OpError
from kgen.ops.common import broadcast, normalize_axis
from kgen.ops.registry import Attr, Input, OpDef, register


def _concat(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    first = inputs[0]
    axis = normalize_axis("concat", attrs["axis"], first.ndim)
    for k, t in enumerate(inputs[1:], start=1):
        same = t.ndim == first.ndim and all(
            a == b for d, (a, b) in enumerate(zip(t.shape, first.shape, strict=True)) if d != axis
        )
        if not same:
            raise OpError(
                "concat",
                f"input {k} has shape {t.shape}, which differs from input 0's {first.shape} off axis {axis}",
            )
    offsets = np.cumsum([0] + [t.shape[axis] for t in inputs]).tolist()
    shape = tuple(offsets[-1] if d == axis else n for d, n in enumerate(first.shape))

    def body(*idx):
        # the last input is the fallback; walk back so earlier inputs win their own ranges
        value: te.Expr | None = None
        for t, start, end in reversed(list(zip(inputs, offsets, offsets[1:], strict=False))):
            src = tuple(i - start if d == axis else i for d, i in enumerate(idx))
            load = t.guarded(src)
            value = load if value is None else te.select(idx[axis] < end, load, value)
        return value

    return te.compute(shape, body, name="concat")


register(
    OpDef(
        name="concat",
        family="layout",
        doc="Join tensors along one axis; all other dimensions must match.",
        inputs=(Input("inputs", variadic=True),),
        attrs=(Attr("axis", "int", doc="the axis to join along (required; negative counts from the end)"),),
        builder=_concat,
        reference_fn=lambda arrays, attrs: np.concatenate(arrays, axis=attrs["axis"]),
    )
)


def _check_permutation(op: str, perm: Sequence[int], rank: int) -> None:
    if sorted(perm) != list(range(rank)):
        raise OpError(op, f"attribute 'perm' {list(perm)} is not a permutation of 0..{rank - 1}")


def _unpermuted(idx: Sequence[Any], perm: Sequence[int]) -> tuple[Any, ...]:
    """The input index of output index ``idx`` when output axis i is input axis perm[i]."""
    src: list[Any] = [None] * len(perm)
    for out_axis, in_axis in enumerate(perm):
        src[in_axis] = idx[out_axis]
    return tuple(src)


def _transpose(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    perm = attrs["perm"]
    perm = tuple(reversed(range(x.ndim))) if perm is None else perm
    _check_permutation("transpose", perm, x.ndim)
    shape = tuple(x.shape[p] for p in perm)
    return te.compute(shape, lambda *idx: x[_unpermuted(idx, perm)], name="transpose")


register(
    OpDef(
        name="transpose",
        family="layout",
        doc="Permute axes: output axis i is input axis perm[i].",
        inputs=(Input("X"),),
        attrs=(Attr("perm", "ints?", None, "the permutation; reverses the axes when left out"),),
        builder=_transpose,
        reference_fn=lambda arrays, attrs: np.transpose(arrays[0], attrs["perm"]),
    )
)


def reshape_target(op: str, in_shape: Sequence[int], target: Sequence[int]) -> tuple[int, ...]:
    """ONNX Reshape's target shape: 0 copies the input's dimension, one -1 is inferred."""
    if target.count(-1) > 1:
        raise OpError(op, f"attribute 'shape' {list(target)} has more than one -1")
    dims = []
    for k, d in enumerate(target):
        if d == 0:
            if k >= len(in_shape):
                raise OpError(
                    op,
                    f"attribute 'shape' {list(target)}: 0 at position {k}, past the input's rank {len(in_shape)}",
                )
            d = in_shape[k]
        elif d < -1:
            raise OpError(op, f"attribute 'shape' {list(target)} has a negative dimension {d}")
        dims.append(d)
    total = math.prod(in_shape)
    known = math.prod(d for d in dims if d != -1)
    if -1 in dims:
        if known == 0 or total % known:
            raise OpError(op, f"cannot reshape {total} elements (input shape {tuple(in_shape)}) into {list(target)}")
        dims[dims.index(-1)] = total // known
    if math.prod(dims) != total:
        raise OpError(op, f"cannot reshape {total} elements (input shape {tuple(in_shape)}) into {list(target)}")
    return tuple(dims)


def _ravel(idx: Sequence[Any], shape: Sequence[int]) -> Any:
    """The row-major position of ``idx`` in ``shape``."""
    strides = [math.prod(shape[k + 1 :]) for k in range(len(shape))]
    return sum((i * s for i, s in zip(idx, strides, strict=True)), sympy.Integer(0))


def _unravel(flat: Any, shape: Sequence[int]) -> tuple[Any, ...]:
    """The index in ``shape`` of row-major position ``flat``."""
    if not shape:
        return ()
    strides = [math.prod(shape[k + 1 :]) for k in range(len(shape))]
    rest = [te.floormod(te.floordiv(flat, s), d) for s, d in zip(strides[1:], shape[1:], strict=True)]
    return (te.floordiv(flat, strides[0]), *rest)


def reshape_compute(x: te.Tensor, shape: tuple[int, ...], name: str) -> te.Tensor:
    """Row-major reshape: flatten the output index, then unravel it in the input's shape."""
    return te.compute(shape, lambda *idx: x[_unravel(_ravel(idx, shape), x.shape)], name=name)


def _reshape(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    return reshape_compute(x, reshape_target("reshape", x.shape, attrs["shape"]), "reshape")


register(
    OpDef(
        name="reshape",
        family="layout",
        doc="Same elements in row-major order, new shape (0 copies an input dimension, -1 is inferred).",
        inputs=(Input("data"),),
        attrs=(Attr("shape", "ints", doc="the target shape (required)"),),
        builder=_reshape,
        reference_fn=lambda arrays, attrs: arrays[0].reshape(
            [arrays[0].shape[k] if d == 0 else d for k, d in enumerate(attrs["shape"])]
        ),
    )
)


def _permute(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    view, perm, shape = attrs["view"], attrs["perm"], attrs["shape"]
    for name, dims in (("view", view), ("shape", shape)):
        if math.prod(dims) != math.prod(x.shape):
            raise OpError(
                "permute", f"attribute '{name}' {list(dims)} does not hold the input's {math.prod(x.shape)} values"
            )
    _check_permutation("permute", perm, len(view))
    moved = tuple(view[p] for p in perm)

    def body(*idx):
        src = _unpermuted(_unravel(_ravel(idx, shape), moved), perm)
        return x[_unravel(_ravel(src, view), x.shape)]

    return te.compute(tuple(shape), body, name="permute")


register(
    OpDef(
        name="permute",
        family="layout",
        doc="The input read in the shape 'view', its axes permuted (output axis i is axis perm[i]), the result in the "
        "shape 'shape': a transpose with the reshapes before and after it, one copy where each is one on WebGL.",
        inputs=(Input("X"),),
        attrs=(
            Attr("view", "ints", doc="the input's values read in this shape (required)"),
            Attr("perm", "ints", doc="the permutation of the view's axes (required)"),
            Attr("shape", "ints", doc="the permuted values in this shape (required)"),
        ),
        builder=_permute,
        reference_fn=lambda arrays, attrs: np.transpose(arrays[0].reshape(attrs["view"]), attrs["perm"]).reshape(
            attrs["shape"]
        ),
    )
)


def _flatten(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    axis = attrs["axis"]
    if not -x.ndim <= axis <= x.ndim:
        raise OpError(
            "flatten",
            f"attribute 'axis'={axis} is out of range for rank {x.ndim} (expected {-x.ndim}..{x.ndim})",
        )
    if axis < 0:
        axis += x.ndim
    shape = (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return reshape_compute(x, shape, "flatten")


register(
    OpDef(
        name="flatten",
        family="layout",
        doc="Reshape to 2-D: axes before `axis` become rows, the rest columns.",
        inputs=(Input("input"),),
        attrs=(Attr("axis", "int", 1, "first axis of the columns (negative counts from the end)"),),
        builder=_flatten,
        reference_fn=lambda arrays, attrs: arrays[0].reshape(math.prod(arrays[0].shape[: attrs["axis"]]), -1),
    )
)


def _pad(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    pads, mode, value = attrs["pads"], attrs["mode"], attrs["value"]
    if len(pads) != 2 * x.ndim:
        raise OpError("pad", f"attribute 'pads' must have {2 * x.ndim} values for rank {x.ndim}, got {list(pads)}")
    begins, ends = pads[: x.ndim], pads[x.ndim :]
    shape = tuple(d + b + e for d, b, e in zip(x.shape, begins, ends, strict=True))
    if any(d < 1 for d in shape):
        raise OpError("pad", f"attribute 'pads' {list(pads)} leaves an empty output {shape}")
    if mode == "reflect" and any(max(b, e) >= d for d, b, e in zip(x.shape, begins, ends, strict=True)):
        raise OpError("pad", f"mode 'reflect' needs pads smaller than each dimension, got {list(pads)} for {x.shape}")

    def source(i, b, d):
        j = i - b
        if mode == "edge":
            return sympy.Min(sympy.Max(j, 0), d - 1)
        return (d - 1) - sympy.Abs((d - 1) - sympy.Abs(j))  # reflect, without repeating the edge

    def body(*idx):
        if mode == "constant":
            return x.guarded(tuple(i - b for i, b in zip(idx, begins, strict=True)), default=value)
        return x[tuple(source(i, b, d) for i, b, d in zip(idx, begins, x.shape, strict=True))]

    return te.compute(shape, body, name="pad")


def _pad_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    x = arrays[0]
    pads = attrs["pads"]
    n = x.ndim
    widths = [(max(pads[k], 0), max(pads[k + n], 0)) for k in range(n)]
    kwargs = {"constant_values": attrs["value"]} if attrs["mode"] == "constant" else {}
    out = np.pad(x, widths, mode=attrs["mode"], **kwargs)
    crop = tuple(slice(max(-pads[k], 0), out.shape[k] - max(-pads[k + n], 0)) for k in range(n))
    return out[crop]


register(
    OpDef(
        name="pad",
        family="layout",
        doc="Pad (or, with negative pads, crop) every axis.",
        inputs=(Input("data"),),
        attrs=(
            Attr("pads", "ints", doc="[x1_begin, x2_begin, ..., x1_end, x2_end] (required; negative crops)"),
            Attr(
                "mode",
                "string",
                "constant",
                "constant, edge or reflect",
                choices=("constant", "edge", "reflect"),
            ),
            Attr("value", "float", 0.0, "the fill value of mode constant"),
        ),
        builder=_pad,
        reference_fn=_pad_ref,
    )
)


def slice_ranges(op: str, shape: Sequence[int], attrs: Mapping[str, Any]) -> list[range]:
    """The indices kept along each axis of ONNX Slice (Python's clamping of starts and ends, negative ones count
    from the end, steps of either sign); an axis that keeps nothing is an error (empty tensors are not run)."""
    starts, ends = attrs["starts"], attrs["ends"]
    axes = attrs["axes"] if attrs["axes"] is not None else tuple(range(len(starts)))
    steps = attrs["steps"] if attrs["steps"] is not None else (1,) * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise OpError(op, f"starts {list(starts)}, ends {list(ends)}, axes and steps differ in length")
    kept = [range(d) for d in shape]
    seen = set()
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = normalize_axis(op, axis, len(shape), "axes")
        if axis in seen:
            raise OpError(op, f"attribute 'axes' {list(axes)} names axis {axis} twice")
        seen.add(axis)
        if step == 0:
            raise OpError(op, f"attribute 'steps' {list(steps)} has a 0")
        kept[axis] = range(*slice(start, end, step).indices(shape[axis]))
        if not kept[axis]:
            raise OpError(op, f"slice {start}:{end}:{step} of axis {axis} (size {shape[axis]}) is empty")
    return kept


def _slice(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    kept = slice_ranges("slice", x.shape, attrs)
    return te.compute(
        tuple(len(r) for r in kept),
        lambda *idx: x[tuple(r.start + r.step * i for r, i in zip(kept, idx, strict=True))],
        name="slice",
    )


def numpy_slice(x: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    """ONNX Slice with numpy's slicing, which clamps as ONNX does (and may leave an axis empty): the op's
    reference, and the frontend's on constants."""
    index = [slice(None)] * x.ndim
    axes = attrs["axes"] if attrs["axes"] is not None else range(len(attrs["starts"]))
    steps = attrs["steps"] if attrs["steps"] is not None else [1] * len(attrs["starts"])
    for start, end, axis, step in zip(attrs["starts"], attrs["ends"], axes, steps, strict=True):
        index[axis] = slice(start, end, step)
    return x[tuple(index)]


register(
    OpDef(
        name="slice",
        family="layout",
        doc="A strided window of every axis (ONNX Slice: negative starts and ends count from the end, both clamped).",
        inputs=(Input("data"),),
        attrs=(
            Attr("starts", "ints", doc="first index per sliced axis (required)"),
            Attr("ends", "ints", doc="index past the last per sliced axis (required)"),
            Attr("axes", "ints?", None, "the sliced axes; the first len(starts) when left out"),
            Attr("steps", "ints?", None, "the step per sliced axis (negative goes backwards); 1 when left out"),
        ),
        builder=_slice,
        reference_fn=lambda arrays, attrs: numpy_slice(arrays[0], attrs),
    )
)


def _expand(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    shape = broadcast("expand", [("input", x.shape), ("shape", attrs["shape"])])
    return te.compute(shape, lambda *idx: x[te.broadcast_indices(x.shape, idx)], name="expand")


register(
    OpDef(
        name="expand",
        family="layout",
        doc="Broadcast the input to a shape (ONNX Expand: the output is both shapes broadcast together).",
        inputs=(Input("input"),),
        attrs=(Attr("shape", "ints", doc="the shape to broadcast to (required)"),),
        builder=_expand,
        reference_fn=lambda arrays, attrs: arrays[0] * np.ones(attrs["shape"]),
    )
)


def _tile(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x = inputs[0]
    repeats = attrs["repeats"]
    if len(repeats) != x.ndim or any(r < 1 for r in repeats):
        raise OpError("tile", f"attribute 'repeats' {list(repeats)} must hold {x.ndim} values >= 1")
    shape = tuple(d * r for d, r in zip(x.shape, repeats, strict=True))
    return te.compute(
        shape,
        lambda *idx: x[
            tuple(i if r == 1 else te.floormod(i, d) for i, d, r in zip(idx, x.shape, repeats, strict=True))
        ],
        name="tile",
    )


register(
    OpDef(
        name="tile",
        family="layout",
        doc="Repeat the input along each axis.",
        inputs=(Input("input"),),
        attrs=(Attr("repeats", "ints", doc="copies along each axis (required)"),),
        builder=_tile,
        reference_fn=lambda arrays, attrs: np.tile(arrays[0], attrs["repeats"]),
    )
)
