"""Validation helpers shared by the op families; each raises an OpError naming the op and the argument."""

from __future__ import annotations

import math
from collections.abc import Sequence

from kgen import te
from kgen.errors import OpError, TEError


def check_rank(op: str, name: str, shape: Sequence[int], rank: int | None = None, min_rank: int = 0) -> None:
    if rank is not None and len(shape) != rank:
        raise OpError(op, f"{name} must have rank {rank}, got shape {tuple(shape)}")
    if len(shape) < min_rank:
        raise OpError(op, f"{name} must have rank >= {min_rank}, got shape {tuple(shape)}")


def check_ints(op: str, attr: str, values: Sequence[int], length: int, minimum: int) -> None:
    """``values`` has ``length`` entries, each >= ``minimum``."""
    if len(values) != length:
        raise OpError(op, f"attribute '{attr}' must have {length} values, got {list(values)}")
    if any(v < minimum for v in values):
        raise OpError(op, f"attribute '{attr}' values must be >= {minimum}, got {list(values)}")


def normalize_axis(op: str, axis: int, rank: int, attr: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise OpError(op, f"attribute '{attr}'={axis} is out of range for rank {rank} (expected {-rank}..{rank - 1})")
    return axis % rank


def broadcast(op: str, named_shapes: Sequence[tuple[str, Sequence[int]]]) -> tuple[int, ...]:
    try:
        return te.broadcast_shapes(*(s for _, s in named_shapes))
    except TEError:
        listed = " and ".join(f"{tuple(s)} of {n}" for n, s in named_shapes)
        raise OpError(op, f"shapes {listed} do not broadcast") from None


def window_output_size(
    op: str,
    dim: str,
    size: int,
    kernel: int,
    stride: int,
    dilation: int,
    pad_begin: int,
    pad_end: int,
    ceil_mode: bool = False,
) -> int:
    """Output length of a sliding window (conv, pool) along one spatial dimension.

    With ``ceil_mode`` a last, partial window is kept unless it would start inside the end padding.
    """
    span = (kernel - 1) * dilation + 1
    room = size + pad_begin + pad_end - span
    if room < 0:
        raise OpError(
            op,
            f"output would be empty along {dim}: input size {size} with padding ({pad_begin}, {pad_end}) "
            f"is smaller than the kernel's span {span} (kernel {kernel}, dilation {dilation})",
        )
    out = (math.ceil(room / stride) if ceil_mode else room // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out
