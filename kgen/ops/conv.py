"""conv2d (ONNX Conv) and conv_transpose2d (ONNX ConvTranspose), NCHW, with groups and optional bias."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import sympy

from kgen import te
from kgen.errors import OpError
from kgen.ops.common import check_ints, check_rank, window_output_size
from kgen.ops.registry import Attr, Input, OpDef, register

WINDOW_ATTRS = (
    Attr("strides", "ints", (1, 1), "step of the window along H and W"),
    Attr("pads", "ints", (0, 0, 0, 0), "padding [top, left, bottom, right] (ONNX order: begins, then ends)"),
    Attr("dilations", "ints", (1, 1), "spacing between kernel taps along H and W"),
    Attr("group", "int", 1, "number of channel groups (group = channels gives a depthwise conv)", kind_of_kernel=True),
)


def _relative_group(shapes: tuple[tuple[int, ...], ...], attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A group of one channel each (depthwise) as "channels", whatever the channel count."""
    depthwise = attrs["group"] > 1 and attrs["group"] == shapes[0][1]
    return {**attrs, "group": "channels"} if depthwise else dict(attrs)


def _check_window_attrs(op: str, attrs: Mapping[str, Any]) -> None:
    check_ints(op, "strides", attrs["strides"], 2, 1)
    check_ints(op, "pads", attrs["pads"], 4, 0)
    check_ints(op, "dilations", attrs["dilations"], 2, 1)
    if attrs["group"] < 1:
        raise OpError(op, f"attribute 'group' must be >= 1, got {attrs['group']}")


def _check_kernel_shape(op: str, attrs: Mapping[str, Any], w: te.Tensor) -> None:
    ks = attrs["kernel_shape"]
    if ks is not None and tuple(ks) != w.shape[2:]:
        raise OpError(op, f"attribute 'kernel_shape' {list(ks)} does not match the weight's {list(w.shape[2:])}")


def _check_bias(op: str, inputs: list[te.Tensor], channels: int) -> None:
    if len(inputs) == 3 and inputs[2].shape != (channels,):
        raise OpError(op, f"bias has shape {inputs[2].shape} but the output has {channels} channels")


def _add_bias(op: str, out: te.Tensor, inputs: list[te.Tensor]) -> te.Tensor:
    if len(inputs) < 3:
        return out
    bias = inputs[2]
    return te.compute(out.shape, lambda n, m, h, w: out[n, m, h, w] + bias[m], name=op, axis_names="nmhw")


def _conv2d(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x, w = inputs[:2]
    op = "conv2d"
    check_rank(op, "input", x.shape, rank=4)
    check_rank(op, "weight", w.shape, rank=4)
    _check_window_attrs(op, attrs)
    _check_kernel_shape(op, attrs, w)
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    g = attrs["group"]
    if cg * g != c:
        raise OpError(op, f"weight has {cg} input channels per group but input has {c} channels and group={g}")
    if m % g:
        raise OpError(op, f"weight has {m} output channels, which group={g} does not divide")
    _check_bias(op, inputs, m)
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = attrs["strides"], attrs["dilations"], attrs["pads"]
    oh = window_output_size(op, "H", h, kh, sh, dh, pt, pb)
    ow = window_output_size(op, "W", wd, kw, sw, dw, pl, pr)
    mg = m // g
    rc, rh, rw = te.reduce_axis(cg, "rc"), te.reduce_axis(kh, "rh"), te.reduce_axis(kw, "rw")

    def body(b, o, y, xx):
        ic = te.floordiv(o, mg) * cg + rc
        pixel = x.guarded((b, ic, y * sh + rh * dh - pt, xx * sw + rw * dw - pl))
        return te.sum(pixel * w[o, rc, rh, rw], (rc, rh, rw))

    out = te.compute((n, m, oh, ow), body, name=op, axis_names="nmhw")
    return _add_bias(op, out, inputs)


def _conv2d_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    x, w = arrays[:2]
    g = attrs["group"]
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = attrs["strides"], attrs["dilations"], attrs["pads"]
    n = x.shape[0]
    m, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (xp.shape[2] - (kh - 1) * dh - 1) // sh + 1
    ow = (xp.shape[3] - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((n, m, oh, ow))
    mg = m // g
    for gi in range(g):
        xs = xp[:, gi * cg : (gi + 1) * cg]
        ws = w[gi * mg : (gi + 1) * mg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh : i * dh + sh * (oh - 1) + 1 : sh, j * dw : j * dw + sw * (ow - 1) + 1 : sw]
                out[:, gi * mg : (gi + 1) * mg] += np.einsum("nchw,mc->nmhw", patch, ws[:, :, i, j])
    if len(arrays) == 3:
        out += arrays[2].reshape(1, -1, 1, 1)
    return out


register(
    OpDef(
        name="conv2d",
        family="conv",
        doc="2-D convolution (cross-correlation), NCHW; weight [M, C/group, kH, kW], optional bias [M].",
        inputs=(Input("input"), Input("weight", weight=True), Input("bias", optional=True)),
        attrs=(*WINDOW_ATTRS, Attr("kernel_shape", "ints?", None, "optional; must match the weight")),
        builder=_conv2d,
        reference_fn=_conv2d_ref,
        relative_attrs=_relative_group,
    )
)


def _conv_transpose_size(size: int, k: int, s: int, d: int, pb: int, pe: int, op_pad: int) -> int:
    return s * (size - 1) + op_pad + (k - 1) * d + 1 - pb - pe


def _conv_transpose2d(inputs: list[te.Tensor], attrs: Mapping[str, Any]) -> te.Tensor:
    x, w = inputs[:2]
    op = "conv_transpose2d"
    check_rank(op, "input", x.shape, rank=4)
    check_rank(op, "weight", w.shape, rank=4)
    _check_window_attrs(op, attrs)
    _check_kernel_shape(op, attrs, w)
    check_ints(op, "output_padding", attrs["output_padding"], 2, 0)
    n, c, h, wd = x.shape
    wc, mg, kh, kw = w.shape
    g = attrs["group"]
    if wc != c:
        raise OpError(op, f"weight has {wc} input channels but input has {c} channels")
    if c % g:
        raise OpError(op, f"input has {c} channels, which group={g} does not divide")
    m, cg = mg * g, c // g
    _check_bias(op, inputs, m)
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = attrs["strides"], attrs["dilations"], attrs["pads"]
    oph, opw = attrs["output_padding"]
    if oph >= max(sh, dh) or opw >= max(sw, dw):
        raise OpError(op, f"attribute 'output_padding' {[oph, opw]} must be smaller than the stride or the dilation")
    oh = _conv_transpose_size(h, kh, sh, dh, pt, pb, oph)
    ow = _conv_transpose_size(wd, kw, sw, dw, pl, pr, opw)
    if oh < 1 or ow < 1:
        raise OpError(op, f"output would be empty ({oh}x{ow}): the pads {list(attrs['pads'])} are too large")
    rc = te.reduce_axis(cg, "rc")
    if (dh, dw) == (1, 1) and kh % sh == 0 and kw % sw == 0 and (sh, sw) != (1, 1):
        return _add_bias(op, _by_phase(x, w, (n, m, oh, ow), (sh, sw), (pt, pl), rc, mg, cg), inputs)
    rh, rw = te.reduce_axis(kh, "rh"), te.reduce_axis(kw, "rw")

    def body(b, o, y, xx):
        ic = te.floordiv(o, mg) * cg + rc
        ty, tx = y + pt - rh * dh, xx + pl - rw * dw  # the input tap lands here when divisible by the stride
        on_grid = sympy.And(sympy.Eq(te.floormod(ty, sh), 0), sympy.Eq(te.floormod(tx, sw), 0))
        pixel = x.guarded((b, ic, te.floordiv(ty, sh), te.floordiv(tx, sw)), when=on_grid)
        return te.sum(pixel * w[ic, te.floormod(o, mg), rh, rw], (rc, rh, rw))

    out = te.compute((n, m, oh, ow), body, name=op, axis_names="nmhw")
    return _add_bias(op, out, inputs)


def _by_phase(x, w, shape, strides, pads, rc, mg, cg) -> te.Tensor:
    """A strided transposed conv (no dilation, kernel a multiple of the stride) by output phase: output row
    ``y = sh * qy + py`` takes the taps ``rh = (py + pt) % sh + sh * jh`` from input row ``(py + pt) // sh + qy -
    jh``, so only the kh / sh taps that land on the input grid are visited (a stride-2 4x4 kernel: 4 of 16), with
    no test of the grid. The phases are outer axes of a reduction whose tiles run along ``qx`` (contiguous
    input, one weight per tile); a copy interleaves them into the output."""
    n, m, oh, ow = shape
    (sh, sw), (pt, pl) = strides, pads
    kh, kw = w.shape[2:]
    jh, jw = te.reduce_axis(kh // sh, "jh"), te.reduce_axis(kw // sw, "jw")

    def body(b, o, py, px, qy, qx):
        ic = te.floordiv(o, mg) * cg + rc
        rh, rw = te.floormod(py + pt, sh) + sh * jh, te.floormod(px + pl, sw) + sw * jw
        pixel = x.guarded((b, ic, te.floordiv(py + pt, sh) + qy - jh, te.floordiv(px + pl, sw) + qx - jw))
        return te.sum(pixel * w[ic, te.floormod(o, mg), rh, rw], (rc, jh, jw))

    phases = te.compute((n, m, sh, sw, -(-oh // sh), -(-ow // sw)), body, name="conv_transpose2d_phases")
    return te.compute(
        shape,
        lambda b, o, y, xx: phases[
            b, o, te.floormod(y, sh), te.floormod(xx, sw), te.floordiv(y, sh), te.floordiv(xx, sw)
        ],
        name="conv_transpose2d",
        axis_names="nmhw",
    )


def _conv_transpose2d_ref(arrays: list[np.ndarray], attrs: Mapping[str, Any]) -> np.ndarray:
    """Scatter form: every input pixel adds its weighted kernel into the (uncropped) output."""
    x, w = arrays[:2]
    g = attrs["group"]
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = attrs["strides"], attrs["dilations"], attrs["pads"]
    oph, opw = attrs["output_padding"]
    n, c, h, wd = x.shape
    _, mg, kh, kw = w.shape
    cg = c // g
    full = np.zeros((n, mg * g, sh * (h - 1) + (kh - 1) * dh + 1 + oph, sw * (wd - 1) + (kw - 1) * dw + 1 + opw))
    for gi in range(g):
        xs = x[:, gi * cg : (gi + 1) * cg]
        ws = w[gi * cg : (gi + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nchw,cm->nmhw", xs, ws[:, :, i, j])
                rows = slice(i * dh, i * dh + sh * (h - 1) + 1, sh)
                cols = slice(j * dw, j * dw + sw * (wd - 1) + 1, sw)
                full[:, gi * mg : (gi + 1) * mg, rows, cols] += contrib
    out = full[:, :, pt : full.shape[2] - pb, pl : full.shape[3] - pr]
    if len(arrays) == 3:
        out = out + arrays[2].reshape(1, -1, 1, 1)
    return out


register(
    OpDef(
        name="conv_transpose2d",
        family="conv",
        doc="2-D transposed convolution, NCHW input, weight [C, M/group, kH, kW], optional bias [M].",
        inputs=(Input("input"), Input("weight", weight=True), Input("bias", optional=True)),
        attrs=(
            *WINDOW_ATTRS,
            Attr("output_padding", "ints", (0, 0), "extra rows/columns at the bottom/right of the output"),
            Attr("kernel_shape", "ints?", None, "optional; must match the weight"),
        ),
        builder=_conv_transpose2d,
        reference_fn=_conv_transpose2d_ref,
        relative_attrs=_relative_group,
    )
)
