"""ONNX LSTM and GRU, unrolled over the sequence length fixed at conversion into ops every backend has: one Gemm
projects every step's input at once, then each step adds its hidden state's projection (a Gemm), cuts the gates
with Slice and applies the activations and products, which fuse into few kernels. Forward, reverse and
bidirectional; layout 0 (sequence first) and 1 (batch first); initial states as constants or tensors. Peepholes,
clipping, other activations and sequences of other lengths than the input's are one-line errors.

The handlers take the ONNX frontend (``kgen.graph.onnx._Frontend``) and use its emit, constant and fail."""

from __future__ import annotations

from typing import Any

import numpy as np

_GATES = {"LSTM": 4, "GRU": 3}
_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


class _Cell:
    """One direction's weights and the nodes of its steps."""

    def __init__(self, f: Any, kind: str, d: int, hidden: int, attrs: dict[str, Any]) -> None:
        self.f, self.kind, self.hidden = f, kind, hidden
        gates = _GATES[kind]
        w, r = f.constant(1, "W")[d], f.constant(2, "R")[d]
        b = f.constant(3, "B")
        b = np.zeros(2 * gates * hidden, np.float32) if b is None else b[d]
        wb, rb = b[: gates * hidden], b[gates * hidden :]
        self.before_reset = kind == "GRU" and attrs.get("linear_before_reset", 0)
        h = hidden
        if kind == "LSTM":  # every gate's two biases add up
            self.x_bias, self.h_bias = wb + rb, None
        elif self.before_reset:  # the candidate's recurrent bias goes inside r · (...)
            self.x_bias = wb + np.concatenate([rb[: 2 * h], np.zeros(h, np.float32)])
            self.h_bias = np.concatenate([np.zeros(2 * h, np.float32), rb[2 * h :]])
        else:  # the candidate's recurrent bias is added after (r · H) R_h
            self.x_bias = wb + np.concatenate([rb[: 2 * h], np.zeros(h, np.float32)])
            self.h_bias = rb[2 * h :]
        self.w = self.f.literal("W", w)
        self.r = self.f.literal("R", r if kind == "LSTM" or self.before_reset else r[: 2 * h])
        self.r_candidate = None if kind == "LSTM" or self.before_reset else self.f.literal("R_h", r[2 * h :])

    def gate(self, x: str, k: int) -> str:
        """Gate ``k``'s columns of ``x`` (batch, gates · hidden)."""
        h = self.hidden
        return self.f.emit("slice", [x], {"starts": (k * h,), "ends": ((k + 1) * h,), "axes": (1,)})

    def gates(self, x: str, count: int) -> str:
        """The first ``count`` gates' columns of ``x``."""
        return self.f.emit("slice", [x], {"starts": (0,), "ends": (count * self.hidden,), "axes": (1,)})

    def project(self, x: str, weight: str, bias: np.ndarray | None) -> str:
        inputs = [x, weight] + ([self.f.literal("bias", bias)] if bias is not None else [])
        return self.f.emit("gemm", inputs, {"transB": 1})

    def step(self, x: str, h: str, c: str | None) -> tuple[str, str | None]:
        """One step from the projected input ``x`` (batch, gates · hidden): the new hidden state (and cell)."""
        e = self.f.emit
        recurrent = self.project(h, self.r, self.h_bias if self.before_reset else None)
        if self.kind == "LSTM":
            g = e("add", [x, recurrent], {})
            i, o, forget = (e("sigmoid", [self.gate(g, k)], {}) for k in range(3))
            candidate = e("tanh", [self.gate(g, 3)], {})
            c = e("add", [e("mul", [forget, c], {}), e("mul", [i, candidate], {})], {})
            return e("mul", [o, e("tanh", [c], {})], {}), c
        zr = e("add", [self.gates(x, 2), self.gates(recurrent, 2) if self.before_reset else recurrent], {})
        z, r = (e("sigmoid", [self.gate(zr, k)], {}) for k in range(2))
        if self.before_reset:
            reset = e("mul", [r, self.gate(recurrent, 2)], {})
        else:
            reset = self.project(e("mul", [r, h], {}), self.r_candidate, self.h_bias)
        candidate = e("tanh", [e("add", [self.gate(x, 2), reset], {})], {})
        # (1 - z) · candidate + z · h
        return e("add", [candidate, e("mul", [z, e("sub", [h, candidate], {})], {})], {}), None


def unroll(f: Any, attrs: dict[str, Any]) -> None:
    """The handler of LSTM and GRU."""
    kind = f.node.op_type
    ins = f.inputs()
    direction = attrs.get("direction", "forward")
    layout = attrs.get("layout", 0)
    if attrs.get("activations") not in (None, _DEFAULT_ACTIVATIONS[kind]) or "clip" in attrs:
        raise f.fail("activations other than the defaults, and clip, are not supported")
    if attrs.get("input_forget", 0) or (len(ins) > 7 and ins[7]):
        raise f.fail("input_forget and peepholes (input P) are not supported")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise f.fail(f"direction '{direction}' is not one of forward, reverse, bidirectional")
    x = ins[0]
    shape = f.shape(x)
    if len(shape) != 3:
        raise f.fail(f"input X has shape {shape}; expected 3 axes")
    steps, batch, _ = shape if layout == 0 else (shape[1], shape[0], shape[2])
    lengths = f.constant(4, "sequence_lens")
    if lengths is not None and np.any(np.asarray(lengths) != steps):
        raise f.fail(f"sequence_lens {np.asarray(lengths).tolist()} differ from the {steps} steps of X")
    hidden = attrs["hidden_size"]
    dirs = 2 if direction == "bidirectional" else 1
    rows = f.reshape(x if layout == 0 else f.emit("transpose", [x], {"perm": (1, 0, 2)}), (steps * batch, shape[2]))
    hs, hs_last, cs_last = [], [], []
    for d in range(dirs):
        cell = _Cell(f, kind, d, hidden, attrs)
        projected = cell.project(rows, cell.w, cell.x_bias)
        h = _initial(f, ins, 5, d, batch, hidden, layout, cell)
        c = _initial(f, ins, 6, d, batch, hidden, layout, cell) if kind == "LSTM" else None
        backwards = direction == "reverse" or d == 1
        order = range(steps - 1, -1, -1) if backwards else range(steps)
        outputs: dict[int, str] = {}
        for t in order:
            xt = f.emit("slice", [projected], {"starts": (t * batch,), "ends": ((t + 1) * batch,), "axes": (0,)})
            h, c = cell.step(xt, h, c)
            outputs[t] = h
        hs.append([outputs[t] for t in range(steps)])
        hs_last.append(h)
        cs_last.append(c)
    _outputs(f, hs, hs_last, cs_last, batch, hidden, layout)


def _initial(f: Any, ins: list[str], k: int, d: int, batch: int, hidden: int, layout: int, cell: _Cell) -> str:
    """Direction ``d``'s initial hidden state (``k`` 5) or cell (``k`` 6), (batch, hidden); zeros where absent."""
    if k >= len(ins) or not ins[k]:
        return cell.f.literal("zeros", np.zeros((batch, hidden)))
    whole = ins[k]  # (directions, batch, hidden), or (batch, directions, hidden) in layout 1
    axis = 0 if layout == 0 else 1
    picked = f.emit("slice", [whole], {"starts": (d,), "ends": (d + 1,), "axes": (axis,)})
    return f.reshape(picked, (batch, hidden))


def _outputs(f: Any, hs: list[list[str]], hs_last: list[str], cs_last: list[str | None], batch, hidden, layout) -> None:
    """Y (every step's hidden state), Y_h and Y_c, each only where the graph reads it."""
    out = list(f.node.output) + [""] * (3 - len(f.node.output))
    # Y: (steps, directions, batch, hidden), or (batch, steps, directions, hidden) in layout 1
    step_axis, dir_axis = (0, 1) if layout == 0 else (1, 2)
    one = (1, 1, batch, hidden) if layout == 0 else (batch, 1, 1, hidden)
    if out[0] and out[0] in f.read:
        per_dir = [f.concat([f.reshape(h, one) for h in steps], step_axis) for steps in hs]
        f.rename[out[0]] = f.concat(per_dir, dir_axis)
    last_shape = (1, batch, hidden) if layout == 0 else (batch, 1, hidden)
    for name, states in ((out[1], hs_last), (out[2], cs_last)):
        if name and name in f.read:
            f.rename[name] = f.concat([f.reshape(s, last_shape) for s in states], 0 if layout == 0 else 1)
