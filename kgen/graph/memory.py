"""Memory planning by liveness: a tensor needs its storage from the step that writes it to the last step that
reads it, so tensors whose lifetimes do not overlap share storage. Two forms: byte offsets in one memory
(WebAssembly's linear memory, the JS heap) and pooled buffers (WebGPU buffers, WebGL textures of one shape).
A step's outputs never share storage with its inputs or with each other (their lifetimes overlap at that step)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ALIGN = 64


@dataclass(frozen=True)
class Tenant:
    name: str
    nbytes: int
    first: int  # the step that writes it (-1: before the first step: inputs, weights)
    last: int  # the last step that reads it (inclusive)

    def overlaps(self, other: Tenant) -> bool:
        return self.first <= other.last and other.first <= self.last


def lifetimes(
    steps: Sequence[tuple[Iterable[str], Iterable[str]]],
    sizes: dict[str, int],
    keep: Iterable[str] = (),
    always: Iterable[str] = (),
) -> list[Tenant]:
    """Tenants of every tensor in ``sizes``, from ``steps`` (each: the tensors it reads, the tensors it writes).
    A tensor no step writes is there from the start; one in ``keep`` (graph outputs) lives to the end, and one
    in ``always`` (weights, copies prepared before the first step) from the start to the end."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for k, (reads, writes) in enumerate(steps):
        for name in writes:
            first.setdefault(name, k)
            last[name] = max(last.get(name, k), k)
        for name in reads:
            last[name] = k
    end = len(steps)
    kept = set(keep) | set(always)
    for name in always:
        first[name] = -1
    return [
        Tenant(name, nbytes, first.get(name, -1), end if name in kept else last.get(name, first.get(name, -1)))
        for name, nbytes in sizes.items()
    ]


def plan_offsets(tenants: Sequence[Tenant], align: int = ALIGN) -> tuple[dict[str, int], int]:
    """A byte offset per tenant, tenants alive at once never overlapping, and the bytes the plan needs (its
    peak). Greedy: largest first, each at the lowest offset that fits between the overlapping ones placed."""
    offsets: dict[str, int] = {}
    placed: list[Tenant] = []
    for t in sorted(tenants, key=lambda t: (-t.nbytes, t.first, t.name)):
        busy = sorted((offsets[p.name], offsets[p.name] + p.nbytes) for p in placed if p.overlaps(t))
        cursor = 0
        for start, stop in busy:
            if cursor + t.nbytes <= start:
                break
            cursor = max(cursor, -(-stop // align) * align)
        offsets[t.name] = cursor
        placed.append(t)
    peak = max((offsets[t.name] + t.nbytes for t in tenants), default=0)
    return offsets, peak


def plan_pool(tenants: Sequence[Tenant]) -> tuple[dict[str, int], list[int]]:
    """A pooled buffer per tenant and each buffer's size: in order of first use, a tenant takes the free buffer
    closest in size (grown if smaller), or a new one."""
    slot_of: dict[str, int] = {}
    sizes: list[int] = []
    free_after: list[int] = []  # the last step of each buffer's latest tenant
    for t in sorted(tenants, key=lambda t: (t.first, -t.nbytes, t.name)):
        free = [s for s in range(len(sizes)) if free_after[s] < t.first]
        if free:
            s = min(free, key=lambda s: (abs(sizes[s] - t.nbytes), s))
            sizes[s] = max(sizes[s], t.nbytes)
            free_after[s] = t.last
        else:
            s = len(sizes)
            sizes.append(t.nbytes)
            free_after.append(t.last)
        slot_of[t.name] = s
    return slot_of, sizes
