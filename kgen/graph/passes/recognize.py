"""Recognition: the decomposed forms exporters write for ops kgen has become those ops, so that each is one
kernel that fuses into its producer and is tuned as one:

- GELU in its Erf form, x · 0.5 · (1 + erf(x / sqrt 2)), in either order of the products, and its tanh form
  (GPT-2's gelu_new, with Pow(x, 3));
- hard-swish as PP-OCR writes it, x · relu6(x + 3) / 6;
- SiLU, x · sigmoid(x);
- LayerNorm as opsets before 17 write it (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, then Mul by the
  scale and Add of the bias where present), and its RMS form (no mean; Div by the root, or Mul by its Reciprocal
  or by 1 / root);
- scaled dot-product attention: MatMul(Q, Kᵀ), a Mul or Div by a constant (or a Mul by one per head, which
  moves onto Q: Swin-v2's learned temperature), an additive mask (Add) or a constant boolean one (Where against a
  constant), or two of them summed into one (MPNet's relative-position bias and padding mask; Swin's bias and
  the mask of its shifted windows, which it adds to a view of the scores with the windows as an axis), Softmax
  over the keys, MatMul with V; between the last two, the guard that torch's exporter writes,
  Where(IsNaN(p), 0, p) (the op gives zeros where every key is masked with -inf).

A match needs every intermediate result to be read by the pattern alone."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterator

import numpy as np

from kgen.graph.ir import Graph, Node, Value


@dataclasses.dataclass
class _Match:
    node: Node  # the recognized op, taking the place (and output) of the pattern's last node
    consumed: list[Node]  # every other node of the pattern
    rewritten: list[tuple[Node, Node]] = dataclasses.field(default_factory=list)  # (a node of it, what it becomes)


class _Matcher:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.producer = graph.producer()
        self.consumers = graph.consumers()
        self.constants = dict(graph.constants)
        self.uses = graph.read_counts()
        self.consumed: set[int] = set()
        self.values: dict[str, Value] = {}  # tensors the rewritten nodes make

    def node(self, name: str, op: str, uses: int = 1) -> Node | None:
        """The node of ``op`` that produces ``name``, which ``uses`` reads take and no graph output names."""
        n = self.producer.get(name)
        if n is None or n.op != op or n.epilogue or id(n) in self.consumed or name in self.graph.outputs:
            return None
        return n if self.uses.get(name) == uses else None

    def only_user(self, node: Node, op: str) -> Node | None:
        users = self.consumers.get(node.output, [])
        if len(users) != 1 or self.uses.get(node.output) != 1 or node.output in self.graph.outputs:
            return None
        return users[0] if users[0].op == op and not users[0].epilogue else None

    def value(self, name: str) -> float | None:
        """A constant holding one value."""
        c = self.constants.get(name)
        return float(c.reshape(-1)[0]) if c is not None and c.size == 1 else None

    def near(self, name: str, want: float) -> bool:
        v = self.value(name)
        return v is not None and math.isclose(v, want, rel_tol=1e-5)

    def ones(self, like: str) -> str:
        name = f"{like}__kgen_ones"
        self.constants[name] = np.ones(1, np.float32)
        return name


def _pairs(node: Node) -> Iterator[tuple[str, str]]:
    if len(node.inputs) == 2:
        a, b = node.inputs
        yield a, b
        yield b, a


def _replace(last: Node, op: str, inputs: list[str], attrs: dict) -> Node:
    return dataclasses.replace(last, op=op, inputs=inputs, attrs=attrs, epilogue=[])


def _erf_of(m: _Matcher, f: Node) -> tuple[str, list[Node]] | None:
    """``f`` = erf(x / sqrt 2), or erf(x · sqrt 0.5): x and the nodes."""
    scaled = m.producer.get(f.inputs[0])
    if f.op != "erf" or not (scaled and m.node(scaled.output, scaled.op)):
        return None
    for x, c in _pairs(scaled):
        if (scaled.op == "div" and m.near(c, math.sqrt(2.0))) or (scaled.op == "mul" and m.near(c, math.sqrt(0.5))):
            return x, [scaled]
    return None


def _tanh_of(m: _Matcher, f: Node) -> tuple[str, list[Node]] | None:
    """``f`` = tanh(sqrt(2 / pi) · (x + 0.044715 · x³)) with x³ as Pow(x, 3): x and the nodes."""
    inner = f.op == "tanh" and m.node(f.inputs[0], "mul")
    for s, c in _pairs(inner) if inner else ():
        total = m.node(s, "add")
        for x, term in _pairs(total) if total and m.near(c, math.sqrt(2.0 / math.pi)) else ():
            cubed = m.node(term, "mul")
            for p, k in _pairs(cubed) if cubed else ():
                power = m.node(p, "pow")
                if power and power.inputs[0] == x and power.attrs["exponent"] == 3.0 and m.near(k, 0.044715):
                    return x, [power, cubed, total, inner]
    return None


def _one_plus(m: _Matcher, name: str) -> tuple[str, str, list[Node]] | None:
    """``name`` = 1 + erf(x / sqrt 2), or 1 + tanh(sqrt(2 / pi) · (x + 0.044715 · x³)): x, the approximation
    (GELU's ``approximate``) and the nodes."""
    add = m.node(name, "add")
    for e, one in _pairs(add) if add else ():
        f = m.producer.get(e)
        if not (m.near(one, 1.0) and f and m.node(e, f.op)):
            continue
        for approximate, of in (("none", _erf_of), ("tanh", _tanh_of)):
            found = of(m, f)
            if found:
                return found[0], approximate, [*found[1], f, add]
    return None


def _gelu(m: _Matcher, last: Node) -> _Match | None:
    """last = (x · h) · 0.5 or (x · 0.5) · h, where h = 1 + erf(x / sqrt 2) or its tanh approximation."""
    for u, v in _pairs(last):
        inner = m.node(u, "mul")
        for x, b in _pairs(inner) if inner else ():
            for half, scale in ((b, v), (v, b)):
                found = _one_plus(m, half)
                if found and found[0] == x and m.near(scale, 0.5):
                    return _Match(_replace(last, "gelu", [x], {"approximate": found[1]}), [*found[2], inner])
    return None


def _hard_swish(m: _Matcher, last: Node) -> _Match | None:
    """last = x · clip(x + 3, 0, 6) / 6 (PP-OCR's form): a Div by 6 or a Mul by 1/6 of the product."""
    for p, c in _pairs(last):
        product = m.node(p, "mul")
        if not (product and m.near(c, 6.0 if last.op == "div" else 1.0 / 6.0)) or (
            last.op == "div" and p != last.inputs[0]
        ):
            continue
        for x, r in _pairs(product):
            clip = m.node(r, "clip")
            shifted = clip and clip.attrs["min"] == 0.0 and clip.attrs["max"] == 6.0 and m.node(clip.inputs[0], "add")
            if shifted and any(a == x and m.near(b, 3.0) for a, b in _pairs(shifted)):
                return _Match(_replace(last, "hard_swish", [x], {}), [shifted, clip, product])
    return None


def _silu(m: _Matcher, last: Node) -> _Match | None:
    for x, s in _pairs(last):
        sig = m.node(s, "sigmoid")
        if sig and sig.inputs[0] == x:
            return _Match(_replace(last, "silu", [x], {}), [sig])
    return None


def _trailing_axis(m: _Matcher, node: Node, x: str) -> int | None:
    """The first axis of a keepdims reduce_mean over the trailing axes of ``x``, else None."""
    rank = len(m.graph.shape(x))
    axes = node.attrs["axes"]
    axes = sorted(a % rank for a in (range(rank) if axes is None else axes))
    return axes[0] if node.attrs["keepdims"] and axes == list(range(axes[0], rank)) else None


def _squares(m: _Matcher, name: str, x: str) -> Node | None:
    """The node computing ``name`` = x², as Pow(x, 2) or Mul(x, x)."""
    pw = m.node(name, "pow")
    if pw and pw.inputs[0] == x and pw.attrs["exponent"] == 2.0:
        return pw
    sq = m.node(name, "mul")
    return sq if sq and sq.inputs == [x, x] else None


def _inverse_root(m: _Matcher, normed: Node) -> tuple[str, Node, float, list[Node]] | None:
    """``normed`` = v / sqrt(mean + eps), or v · reciprocal(sqrt(mean + eps)), or v · (1 / sqrt(mean + eps)): v, the
    mean's node, eps and the nodes between."""
    for v, denominator in _pairs(normed):
        chain: list[Node] = []
        if normed.op == "mul":  # by the root's Reciprocal, or by 1 / root (torch's rsqrt: Llama's RMSNorm)
            recip = m.node(denominator, "reciprocal")
            one_over = m.node(denominator, "div")
            if recip is not None:
                chain, denominator = [recip], recip.inputs[0]
            elif one_over is not None and m.near(one_over.inputs[0], 1.0):
                chain, denominator = [one_over], one_over.inputs[1]
            else:
                continue
        elif v != normed.inputs[0]:
            continue  # a Div divides its first operand
        root = m.node(denominator, "sqrt")
        plus = root and m.node(root.inputs[0], "add")
        for mean, eps in _pairs(plus) if plus else ():
            variance = m.node(mean, "reduce_mean")
            if variance and m.value(eps) is not None:
                return v, variance, m.value(eps), [variance, plus, root, *chain]
    return None


def _layer_norm(m: _Matcher, normed: Node) -> _Match | None:
    found = _inverse_root(m, normed)
    if found is None:
        return None
    v, variance, eps, chain = found
    centered = m.node(v, "sub", uses=2)
    mean = centered and m.node(centered.inputs[1], "reduce_mean")
    if centered and mean and mean.inputs[0] == centered.inputs[0]:  # LayerNorm: (x - mean(x)) squared
        x, op, parts = centered.inputs[0], "layer_norm", [mean, centered]
    else:  # RMSNorm: x itself squared
        x, op, parts = v, "rms_norm", []
    square = _squares(m, variance.inputs[0], v)
    axis = _trailing_axis(m, variance, x)
    if square is None or axis is None or (parts and _trailing_axis(m, mean, x) != axis):
        return None
    # the Mul by a constant scale and the Add of a constant bias that follow join the norm
    normalized = m.graph.shape(x)[axis:]
    last, params, consumed = normed, [], [*parts, square, *chain]
    for kind in ("mul", "add"):
        step = m.only_user(last, kind)
        other = step and next((i for i in step.inputs if i != last.output), None)
        c = m.constants.get(other) if other else None
        if c is None or c.ndim > len(normalized) or np.broadcast_shapes(c.shape, normalized) != normalized:
            break
        params += [m.ones(x)] if kind == "add" and not params else []
        params.append(other)
        consumed.append(last)
        last = step
    node = _replace(last, op, [x, *(params or [m.ones(x)])], {"axis": axis, "epsilon": eps})
    return _Match(node, consumed)


def _broadcasts(shape: tuple[int, ...], to: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, to) == to
    except ValueError:
        return False


def _mask(m: _Matcher, node: Node, scores_shape: tuple[int, ...]) -> tuple[str, str | None] | None:
    """``node`` adds a mask to the scores: the scores' tensor and the additive mask (a Where against a constant
    becomes one: 0 where it keeps the score, its value elsewhere), else None."""
    if node.op == "add":
        for s, mask in _pairs(node):
            producer = m.producer.get(s)
            chain = producer is not None and producer.op in ("matmul", "mul", "div", "where", "add")
            if chain and m.graph.shape(s) == scores_shape and _broadcasts(m.graph.shape(mask), scores_shape):
                return s, mask
        return None
    cond, x, y = node.inputs
    keep = m.constants.get(cond)
    for s, other, kept in ((x, y, True), (y, x, False)):
        value = m.value(other)
        if keep is None or value is None or m.producer.get(s) is None:
            continue
        name = f"{node.output}__kgen_mask"
        m.constants[name] = np.where((keep != 0) == kept, 0.0, value).astype(np.float32)
        return s, name
    return None


def _nan_guard(m: _Matcher, name: str) -> tuple[str, list[Node]] | None:
    """``name`` = Where(Not(Equal(p, p)), 0, p), IsNaN(p) as the frontend writes it: p and the nodes."""
    where = m.node(name, "where")
    negated = where and m.node(where.inputs[0], "not")
    equal = negated and m.node(negated.inputs[0], "equal")
    if not equal or equal.inputs[0] != equal.inputs[1] or where.inputs[2] != equal.inputs[0]:
        return None
    return (equal.inputs[0], [where, negated, equal]) if m.value(where.inputs[1]) == 0.0 else None


def _attention(m: _Matcher, last: Node) -> _Match | None:
    """last = MatMul(Softmax(scores · c + mask), V), where scores = MatMul(Q, Kᵀ), over the last axis."""
    probs, v = last.inputs
    guard = _nan_guard(m, probs)
    probs, consumed = guard or (probs, [])
    softmax = m.node(probs, "softmax", uses=3 if guard else 1)  # the guard reads p three times
    if softmax is None or softmax.attrs["axis"] % len(m.graph.shape(probs)) != len(m.graph.shape(probs)) - 1:
        return None
    name, mask, scale = softmax.inputs[0], None, 1.0
    consumed.append(softmax)
    shape = m.graph.shape(name)
    rewritten: list[tuple[Node, Node]] = []
    masks, adds = [], []  # additive masks, outermost first, and the nodes that add them
    windows = _window_mask(m, name, shape)
    if windows:
        name, windows_mask, nodes = windows
        masks.append(windows_mask)
        consumed += nodes
    for _ in range(2):  # a mask, or a bias and a mask (MPNet's relative positions and padding)
        step = m.node(name, "add") or m.node(name, "where")
        found = step and _mask(m, step, shape)
        if not found:
            break
        name, found_mask = found
        masks.append(found_mask)
        adds.append(step)
    if masks:
        mask = _mask_sum(m, masks, adds, rewritten)
        if mask is None:
            return None
        consumed += adds[1:] if rewritten else adds  # a rewritten add computes the masks' sum
    step = m.node(name, "mul") or m.node(name, "div")
    per_head = None
    for s, c in _pairs(step) if step else ():
        if m.value(c) is not None and (step.op == "mul" or s == step.inputs[0]):
            name, scale = s, m.value(c) if step.op == "mul" else 1.0 / m.value(c)
            consumed.append(step)
            break
        if step.op == "mul" and _per_head(m, c, shape):
            name, per_head = s, c
            break
    scores = m.node(name, "matmul")
    if scores is None:
        return None
    q, k = scores.inputs
    shapes = [m.graph.shape(t) for t in (q, k, v)]
    if min(len(s) for s in shapes) < 2 or len({s[:-2] for s in shapes}) != 1:
        return None
    if per_head is not None:  # Q scaled per head instead: (Q · c) Kᵀ = c (Q Kᵀ) where c is one value per head
        scaled = f"{step.output}__kgen_q"
        m.values[scaled] = Value(scaled, shapes[0])
        rewritten.append((step, dataclasses.replace(step, inputs=[q, per_head], output=scaled)))
        q = scaled
    node = _replace(last, "attention", [q, k, v, *([mask] if mask else [])], {"scale": scale})
    return _Match(node, [*consumed, scores], rewritten)


def _mask_sum(m: _Matcher, masks: list[str], adds: list[Node], rewritten: list[tuple[Node, Node]]) -> str | None:
    """One mask for ``masks``: the constants among them summed into one constant, plus the computed one (at most
    one) by the outermost of ``adds`` rewritten to add them; None where two are computed."""
    if len(masks) == 1:
        return masks[0]
    computed = [k for k in masks if k not in m.constants]
    if len(computed) > 1 or not adds:
        return None
    total = f"{adds[0].output}__kgen_masks"
    bias = f"{total}_constant" if computed else total
    constants = [m.constants[k] for k in masks if k in m.constants]
    m.constants[bias] = np.sum(np.broadcast_arrays(*constants), axis=0, dtype=np.float32)
    if not computed:
        return total
    m.values[total] = Value(total, np.broadcast_shapes(m.constants[bias].shape, m.graph.shape(computed[0])))
    rewritten.append((adds[0], dataclasses.replace(adds[0], op="add", inputs=[bias, computed[0]], output=total)))
    return total


def _window_mask(m: _Matcher, name: str, shape: tuple[int, ...]) -> tuple[str, str, list[Node]] | None:
    """``name`` = Reshape(Add(Reshape(scores), mask)) where the reshapes only regroup the leading axes (Swin's
    shifted windows: [windows·heads..] -> [batch, windows, heads, ..] and back, a constant mask per window): the
    scores, that mask as a constant over the scores' axes, and the three nodes."""
    view = m.node(name, "reshape")
    inner = view and m.node(view.inputs[0], "add")
    for s, c in _pairs(inner) if inner else ():
        split = m.node(s, "reshape")
        grouped = m.graph.shape(inner.output)
        constant = m.constants.get(c)
        if split is None or constant is None or m.graph.shape(split.inputs[0]) != shape:
            continue
        if grouped[-2:] != shape[-2:] or not _broadcasts(constant.shape, grouped):
            continue
        full = np.broadcast_to(constant, grouped).reshape(shape)
        for axis in range(len(shape) - 2):  # the axes it is constant along stay 1 (it broadcasts there)
            if (full == full.take([0], axis=axis)).all():
                full = full.take([0], axis=axis)
        windows = f"{inner.output}__kgen_windows"
        m.constants[windows] = np.ascontiguousarray(full, np.float32)
        return split.inputs[0], windows, [view, inner, split]
    return None


def _per_head(m: _Matcher, name: str, scores_shape: tuple[int, ...]) -> bool:
    """Whether ``name`` is a constant scale of the scores that is one value per batch entry (head): Swin-v2's
    learned temperature, shape [heads, 1, 1]."""
    c = m.constants.get(name)
    return c is not None and c.ndim >= 2 and c.shape[-2:] == (1, 1) and _broadcasts(c.shape, scores_shape)


PATTERNS = {
    "mul": (_gelu, _silu, _hard_swish, _layer_norm),
    "div": (_hard_swish, _layer_norm),
    "matmul": (_attention,),
}


#: patterns that can be left as their chain of ops (``kgen convert --unfused``), to compare against the fused kernel
OPTIONAL = {"attention": _attention}


def recognize(graph: Graph, unfused: Collection[str] = ()) -> Graph:
    """``graph`` with the patterns recognized, except the ``OPTIONAL`` ones named in ``unfused``."""
    m = _Matcher(graph)
    skipped = {OPTIONAL[name] for name in unfused}
    replacements: dict[int, Node] = {}
    for node in graph.nodes:
        if id(node) in m.consumed or id(node) in replacements:
            continue
        for pattern in PATTERNS.get(node.op, ()):
            if pattern in skipped:
                continue
            match = pattern(m, node)
            if match is None:
                continue
            replacements[id(m.producer[match.node.output])] = match.node
            replacements.update((id(old), new) for old, new in match.rewritten)
            m.consumed.update(id(n) for n in match.consumed)
            break
    nodes = [replacements.get(id(n), n) for n in graph.nodes if id(n) not in m.consumed]
    recognized = graph.with_nodes(nodes, m.constants)
    return dataclasses.replace(recognized, values={**graph.values, **m.values}) if m.values else recognized
