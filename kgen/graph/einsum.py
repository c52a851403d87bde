"""ONNX Einsum, written as the ops every backend has: a sum over the subscripts only one operand has
(reduce_sum), transposes, and a (batched) MatMul per pair of operands, left to right. A pair's subscripts fall in
four groups: batch (both operands and the output), contracted (both operands only), and those of one operand that
the output keeps. Where each group of the pair is one subscript, the MatMul takes the operands as they are
(MaxViT's attention, ``BGHID,BGHJD->BGHIJ``, is a transpose of K and a MatMul, which the attention pass then
recognizes); otherwise each group is reshaped into one axis around it. Ellipses and the implicit output are
supported; a subscript repeated within one operand (a diagonal or a trace) is a one-line error.

The handler takes the ONNX frontend (``kgen.graph.onnx._Frontend``) and uses its emit, reshape, shape and fail."""

from __future__ import annotations

import math
import string
from collections import Counter
from typing import Any

#: subscripts an ellipsis stands for: capitals, which ONNX's equations may also use, taken from the end
_SPARE = string.ascii_uppercase[::-1]


def parse(equation: str, ranks: list[int]) -> tuple[list[str], str]:
    """The subscripts of each operand and of the output, an ellipsis spelled out in letters the equation does not
    use. Raises ValueError naming what is wrong."""
    equation = equation.replace(" ", "")
    lhs, arrow, out = equation.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ValueError(f"the equation names {len(terms)} operands but the node has {len(ranks)}")
    spare = [c for c in _SPARE if c not in equation]
    ellipsis = ""
    for k, (term, rank) in enumerate(zip(terms, ranks, strict=True)):
        if "..." in term:
            n = rank - (len(term) - 3)
            if n < 0:
                raise ValueError(f"operand {k} has rank {rank}, fewer than its subscripts '{term}'")
            if len(ellipsis) < n:
                ellipsis = "".join(spare[:n])[::-1]
            term = term.replace("...", ellipsis[len(ellipsis) - n :])
        if len(term) != rank or not term.isalpha():
            raise ValueError(f"operand {k} has rank {rank} but subscripts '{terms[k]}'")
        repeated = [c for c, n in Counter(term).items() if n > 1]
        if repeated:
            raise ValueError(f"subscript '{repeated[0]}' repeats in operand {k} (a diagonal): not supported")
        terms[k] = term
    if arrow:
        out = out.replace("...", ellipsis)
    else:  # implicit: the ellipsis, then the subscripts used once, in alphabetical order
        counts = Counter("".join(terms))
        out = ellipsis + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis))
    missing = [c for c in out if not any(c in t for t in terms)]
    if missing:
        raise ValueError(f"output subscript '{missing[0]}' is in no operand")
    return terms, out


def _transpose(f: Any, x: str, have: str, want: str) -> str:
    if have == want:
        return x
    return f.emit("transpose", [x], {"perm": tuple(have.index(c) for c in want)})


def _sum_out(f: Any, x: str, have: str, keep: set[str]) -> tuple[str, str]:
    """``x`` summed over its subscripts not in ``keep``."""
    axes = tuple(k for k, c in enumerate(have) if c not in keep)
    if not axes:
        return x, have
    return f.emit("reduce_sum", [x], {"axes": axes, "keepdims": 0}), "".join(c for c in have if c in keep)


def _pair(f: Any, a: str, sa: str, b: str, sb: str, keep: set[str]) -> tuple[str, str]:
    """The product of ``a`` and ``b`` summed over their shared subscripts that ``keep`` lacks: its name and
    subscripts (batch, then ``a``'s kept, then ``b``'s kept)."""
    batch = "".join(c for c in sa if c in sb and c in keep)
    contracted = "".join(c for c in sa if c in sb and c not in keep)
    rows = "".join(c for c in sa if c not in sb)
    cols = "".join(c for c in sb if c not in sa)
    a = _transpose(f, a, sa, batch + rows + contracted)
    b = _transpose(f, b, sb, batch + contracted + cols)
    if len(rows) == len(contracted) == len(cols) == 1:
        return f.emit("matmul", [a, b], {}), batch + rows + cols
    shape_a, shape_b = f.shape(a), f.shape(b)
    sizes = dict(zip(batch + rows + contracted, shape_a, strict=True))
    sizes.update(zip(cols, shape_b[len(batch) + len(contracted) :], strict=True))

    def size(group: str) -> int:
        return math.prod(sizes[c] for c in group)

    a = f.reshape(a, [*shape_a[: len(batch)], size(rows), size(contracted)])
    b = f.reshape(b, [*shape_b[: len(batch)], size(contracted), size(cols)])
    product = f.emit("matmul", [a, b], {})
    lead = f.shape(product)[: len(batch)]
    return f.reshape(product, [*lead, *(sizes[c] for c in rows + cols)]), batch + rows + cols


def einsum(f: Any, attrs: dict[str, Any]) -> None:
    inputs = f.inputs()
    equation = attrs["equation"]
    equation = equation.decode() if isinstance(equation, bytes) else equation
    try:
        terms, out = parse(equation, [len(f.shape(x)) for x in inputs])
    except ValueError as err:
        raise f.fail(f"equation '{equation}': {err}") from None
    later = [set("".join(terms[k + 1 :])) | set(out) for k in range(len(terms))]
    x, sx = _sum_out(f, inputs[0], terms[0], later[0])
    for k in range(1, len(terms)):
        y, sy = _sum_out(f, inputs[k], terms[k], set(sx) | later[k])
        x, sx = _pair(f, x, sx, y, sy, later[k])
    x, sx = _sum_out(f, x, sx, set(out))
    result = _transpose(f, x, sx, out)
    f.rename[f.node.output[0]] = result
