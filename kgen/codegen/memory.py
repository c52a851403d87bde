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


def plan_memory(program: ir.Program) -> tuple[dict[str, int], int]:
    """Byte offset of every global buffer, and the memory size, so that every read's reach lies in memory."""
    buffers = [*program.inputs, *program.temps, program.output]
    low = {b.name: 0 for b in buffers}
    high = {b.name: b.size - 1 for b in buffers}
    for kernel in program.launches:
        for access in _accesses(kernel):
            r = reach(kernel, access)
            if r is not None and access.buffer.scope == "global":
                low[access.buffer.name] = min(low[access.buffer.name], r[0])
                high[access.buffer.name] = max(high[access.buffer.name], r[1])
    offsets, cursor = {}, 0
    for b in buffers:
        offsets[b.name] = cursor
        cursor = -(-(cursor + 4 * b.size) // ALIGN) * ALIGN
    shift = max(0, *(-(offsets[n] + 4 * low[n]) for n in offsets))
    shift = -(-shift // ALIGN) * ALIGN
    offsets = {n: o + shift for n, o in offsets.items()}
    end = max(cursor + shift, *(offsets[n] + 4 * (high[n] + 1) for n in offsets))
    return offsets, end


def placed_buffers(program: ir.Program, offsets: dict[str, int]) -> tuple[BufferInfo, ...]:
    """The program's buffers (inputs, temporaries, output) with their offsets in memory."""
    roles = [*((b, "input") for b in program.inputs), *((b, "temp") for b in program.temps), (program.output, "output")]
    return tuple(BufferInfo(b.name, b.dtype, b.size, role, offset=offsets[b.name]) for b, role in roles)
