"""Where a CPU backend's buffers live: one linear memory (WebAssembly's, or the heap array of the JS backend),
each buffer at a fixed byte offset, so kernels address buffers with constants.

CPU kernels read where they may not need to (a guarded read is read and then discarded; a tile past a tensor's
end reads past it, and its values are never stored). The plan keeps every index a read can reach, by interval
arithmetic over the kernel's index ranges (``ix.bounds``, guards ignored), inside the memory.
"""

from __future__ import annotations

from collections.abc import Iterator

from kgen.codegen.program import BufferInfo
from kgen.scheduling import ir
from kgen.te import index as ix
from kgen.te.expr import Expr

PAGE = 65536  # WebAssembly's page: memories are whole pages
ALIGN = 64  # a cache line: buffers start on one


def _accesses(kernel: ir.Kernel) -> Iterator[ir.BufLoad | ir.Store]:
    def values(e: Expr) -> Iterator[ir.BufLoad]:
        return (node for node in ir.value_nodes(e) if isinstance(node, ir.BufLoad))

    for s in ir.walk(kernel.body):
        match s:
            case ir.Decl(init=e) | ir.Assign(value=e):
                yield from values(e)
            case ir.Store(value=e):
                yield s
                yield from values(e)


def reach(kernel: ir.Kernel, access: ir.BufLoad | ir.Store) -> tuple[int, int] | None:
    """The lowest and highest element index ``access`` can touch, or None where unknown."""
    lo, hi = ix.bounds(access.index, kernel.ranges)
    if lo is None or hi is None:
        return None
    span = access.span if isinstance(access, ir.BufLoad) else access.lanes
    return lo, hi + span - 1


def reaches(program: ir.Program) -> dict[str, tuple[int, int]]:
    """The lowest and highest element index any kernel of ``program`` can touch in each global buffer (at least
    the buffer itself)."""
    buffers = [*program.inputs, *program.temps, program.output]
    span = {b.name: (0, b.size - 1) for b in buffers}
    for kernel in program.launches:
        for access in _accesses(kernel):
            r = reach(kernel, access)
            if r is not None and access.buffer.scope == "global":
                lo, hi = span[access.buffer.name]
                span[access.buffer.name] = (min(lo, r[0]), max(hi, r[1]))
    return span


def fit(offsets: dict[str, int], spans: dict[str, tuple[int, int]]) -> tuple[dict[str, int], int]:
    """``offsets`` shifted so that every buffer's reach (``spans``, in elements) lies at or above byte 0, and the
    memory size that holds every reach."""
    shift = max(0, *(-(offsets[n] + 4 * spans[n][0]) for n in offsets))
    shift = -(-shift // ALIGN) * ALIGN
    shifted = {n: o + shift for n, o in offsets.items()}
    return shifted, max(shifted[n] + 4 * (spans[n][1] + 1) for n in shifted)


def plan_memory(program: ir.Program) -> tuple[dict[str, int], int]:
    """Byte offset of every global buffer, and the memory size, so that every read's reach lies in memory."""
    buffers = [*program.inputs, *program.temps, program.output]
    offsets, cursor = {}, 0
    for b in buffers:
        offsets[b.name] = cursor
        cursor = -(-(cursor + 4 * b.size) // ALIGN) * ALIGN
    shifted, end = fit(offsets, reaches(program))
    return shifted, max(end, cursor + shifted[buffers[0].name])


def placed_buffers(program: ir.Program, offsets: dict[str, int]) -> tuple[BufferInfo, ...]:
    """The program's buffers (inputs, temporaries, output) with their offsets in memory."""
    roles = [*((b, "input") for b in program.inputs), *((b, "temp") for b in program.temps), (program.output, "output")]
    return tuple(BufferInfo(b.name, b.dtype, b.size, role, offset=offsets[b.name]) for b, role in roles)
