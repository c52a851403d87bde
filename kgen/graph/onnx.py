"""The ONNX frontend: an ``onnx.ModelProto`` (opsets 7 to 23) becomes a ``Graph`` of kgen ops.

Shapes are inferred by kgen's own ops as each node is translated (``OpDef.build`` validates and gives the output
shape). Shape arithmetic (Shape, Gather, Cast, ConstantOfShape, Unsqueeze and Concat of shapes, ...) is evaluated
here with numpy, since a Reshape needs its target shape at conversion. Dropout and Identity disappear. An op,
attribute value, dtype or opset that kgen cannot run is a ``GraphError`` naming the node.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from kgen.errors import KgenError
from kgen.graph import einsum, recurrent
from kgen.graph.ir import Gather, Graph, GraphError, Node, Value
from kgen.ops import get_op
from kgen.ops.attention import LOWEST
from kgen.ops.image import COORDINATES, MAX_PERIOD
from kgen.ops.layout import numpy_slice

OPSETS = (7, 23)


def load(path: Path | str, input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """Read an ``.onnx`` file; a file that is missing, truncated or not ONNX is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # protobuf's DecodeError and friends
        raise GraphError(f"{path}: not a valid ONNX file ({type(err).__name__}: {err})") from None
    if model.ir_version == 0 or not model.graph.node or not model.opset_import:
        raise GraphError(f"{path}: not an ONNX model (no IR version, opset or nodes)")
    return from_model(model, input_shapes)


def from_model(model: onnx.ModelProto, input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise GraphError("the model imports no default ONNX opset")
    if not OPSETS[0] <= opset <= OPSETS[1]:
        raise GraphError(f"opset {opset} is not supported (supported: {OPSETS[0]} to {OPSETS[1]})")
    return _Frontend(model.graph, opset, dict(input_shapes or {})).run()


def _live(nodes: list[Node], wanted: set[str]) -> list[Node]:
    """The nodes that the graph's outputs need: a view that only led a host gather to its ids is dropped."""
    needed = set(wanted)
    live = []
    for node in reversed(nodes):
        if node.output in needed:
            live.append(node)
            needed.update(node.inputs)
    return live[::-1]


def _reads(graph: onnx.GraphProto) -> set[str]:
    """Every name the graph's nodes read, those of their subgraphs (If's branches) included."""
    names = set()
    for n in graph.node:
        names.update(n.input)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                names |= _reads(a.g)
    return names


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        out[a.name] = v
    return out


T = onnx.TensorProto
# what a graph input of each ONNX dtype holds: int64 token ids fit in int32 (the runtime refuses what does not)
_INPUT_KINDS = {T.FLOAT: "float32", T.INT64: "int32", T.INT32: "int32", T.BOOL: "bool"}
EXACT = 2**24  # integers up to this are exact in float32, where kernels carry them
CONCAT_INPUTS = 7  # and the output: WebGPU's default limit of storage buffers per kernel is 8
MAX_TABLE = 2**31 // 4  # values of a host gather's table: one ArrayBuffer of float32 in the page


def _kind_of(dtype: np.dtype) -> str:
    return "bool" if dtype == np.bool_ else "float32" if np.issubdtype(dtype, np.floating) else "int32"


class _Frontend:
    def __init__(self, graph: onnx.GraphProto, opset: int, input_shapes: dict[str, Sequence[int]]) -> None:
        self.g = graph
        self.opset = opset
        self.input_shapes = input_shapes
        self.const: dict[str, np.ndarray] = {}
        self.values: dict[str, Value] = {}
        self.nodes: list[Node] = []
        self.rename: dict[str, str] = {}
        self.counter = 0
        self.node: onnx.NodeProto | None = None
        self.node_name = ""
        #: ONNX tensor name -> "float32", "int32" or "bool": what the tensor holds in the model. Inside kernels
        #: every tensor is float32; integers and booleans are carried exactly (up to 2^24; true is 1).
        self.kinds: dict[str, str] = {}
        self.gathers: list[Gather] = []
        self.fixed: dict[str, int] = {}  # "input.dimension" -> the size --input-shape gave a dynamic dimension
        #: computed tensors with no elements (Phi-3's pass-through part of a rotary embedding that covers the whole
        #: head) -> their shape: a Concat drops them, any other op refuses them
        self.empty: dict[str, tuple[int, ...]] = {}

    # -- helpers ------------------------------------------------------------------------------------------
    def fail(self, what: str) -> GraphError:
        return GraphError(f"node '{self.node_name}' ({self.node.op_type}): {what}")

    def name(self, n: str) -> str:
        while n in self.rename:
            n = self.rename[n]
        return n

    def inputs(self) -> list[str]:
        return [self.name(i) if i else "" for i in self.node.input]

    def constant(self, k: int, what: str) -> np.ndarray | None:
        """Input ``k`` as a constant (None where absent); a computed tensor there is unsupported."""
        ins = self.inputs()
        if k >= len(ins) or not ins[k]:
            return None
        if ins[k] not in self.const:
            raise self.fail(f"input {k} ({what}) must be a constant (an initializer or folded), not a computed tensor")
        return self.const[ins[k]]

    def kind(self, k: int) -> str:
        """What input ``k`` of the node holds: float32, int32 or bool."""
        raw = self.node.input[k]
        name = self.name(raw)
        if name in self.const:
            return _kind_of(self.const[name].dtype)
        return self.kinds.get(raw, self.kinds.get(name, "float32"))

    def shape(self, name: str) -> tuple[int, ...]:
        if name in self.const:
            return tuple(self.const[name].shape)
        if name in self.empty:
            return self.empty[name]
        return self.values[name].shape

    def fresh(self, base: str) -> str:
        self.counter += 1
        return f"{base}__kgen{self.counter}"

    def literal(self, base: str, values: Any) -> str:
        """A new float32 constant named after ``base``."""
        name = self.fresh(base)
        self.const[name] = np.ascontiguousarray(values, np.float32)
        return name

    def emit(self, op: str, inputs: list[str], attrs: dict[str, Any], output: str | None = None) -> str:
        """Append a kgen node; its output shape comes from the op's own validation."""
        output = output or self.fresh(self.node.output[0])
        empty = next((i for i in inputs if i in self.empty), None)
        if empty is not None:
            raise self.fail(f"input '{empty}' has no elements (shape {self.empty[empty]}); supported: as a Concat's")
        scalars = bool(inputs) and all(i in self.const and self.const[i].ndim == 0 for i in inputs)
        inputs = [self.float_operand(i) if i in self.const else i for i in inputs]
        shapes = [self.shape(i) for i in inputs]
        opdef = get_op(op)
        try:
            norm = opdef.normalize_attrs(attrs)
            _, out = opdef.build(shapes, norm)
        except KgenError as err:
            raise self.fail(str(err)) from None
        if all(i in self.const for i in inputs):  # arithmetic on constants (a scale of 1 / sqrt(64)) is folded
            value = opdef.reference([self.const[i] for i in inputs], norm)
            self.const[output] = value.reshape(()) if scalars and value.size == 1 else value  # rank 0 stays rank 0
            return output
        name = self.node_name if not any(n.name == self.node_name for n in self.nodes) else self.fresh(self.node_name)
        self.nodes.append(Node(name, op, list(inputs), output, norm, self.node.op_type))
        self.values[output] = Value(output, tuple(out.shape))
        return output

    def float_operand(self, name: str) -> str:
        """A constant operand as float32, a rank-0 one as shape (1,) (it broadcasts the same way against any
        tensor of rank 1 or more, and kernels take no rank-0 tensors)."""
        arr = self.const[name]
        if arr.dtype == np.float32 and arr.ndim:
            return name
        if not np.issubdtype(arr.dtype, np.floating) and arr.size and np.abs(arr).max() > EXACT:
            raise self.fail(
                f"constant '{name}' holds {np.abs(arr).max()}, beyond 2^24, the largest integer kgen carries exactly"
            )
        converted = f"{name}__kgen_f32"
        self.const[converted] = arr.astype(np.float32).reshape(arr.shape or (1,))
        return converted

    def concat(self, parts: list[str], axis: int, output: str | None = None) -> str:
        """Concat of ``parts``, chained in groups of at most ``CONCAT_INPUTS``: WebGPU binds at most 8 storage
        buffers to a kernel unless the device is asked for more."""
        while len(parts) > CONCAT_INPUTS:
            groups = [parts[k : k + CONCAT_INPUTS] for k in range(0, len(parts), CONCAT_INPUTS)]
            parts = [g[0] if len(g) == 1 else self.emit("concat", g, {"axis": axis}) for g in groups]
        return parts[0] if len(parts) == 1 and output is None else self.emit("concat", parts, {"axis": axis}, output)

    def reshape(self, x: str, shape: Sequence[int], output: str | None = None) -> str:
        """``x`` in ``shape``: ``x`` itself where it has that shape already and no output name is asked for."""
        if output is None and tuple(int(d) for d in shape) == tuple(self.shape(x)):
            return x
        if x in self.const:
            out = output or self.fresh(x)
            self.const[out] = self.const[x].reshape(shape)
            return out
        return self.emit("reshape", [x], {"shape": tuple(int(d) for d in shape)}, output)

    # -- driver ---------------------------------------------------------------------------------------------
    def run(self) -> Graph:
        self.read = _reads(self.g) | {o.name for o in self.g.output}
        for init in self.g.initializer:
            self.const[init.name] = numpy_helper.to_array(init)
        self.graph_inputs = inputs = []
        for vi in self.g.input:
            if vi.name in self.const:
                continue  # old-style graphs list their initializers as inputs too
            inputs.append(self.graph_input(vi))
        for k, node in enumerate(self.g.node):
            self.translate(node, node.name or f"{node.op_type}_{k}")
        outputs = []
        for vi in self.g.output:
            name = self.name(vi.name)
            if name not in self.values or name in {v.name for v in inputs}:
                raise GraphError(f"graph output '{vi.name}' is not computed by any node (a constant or an input)")
            outputs.append(name)
        outputs = self.restore_output_names(outputs)
        self.nodes = _live(self.nodes, set(outputs))
        for vi, name in zip(self.g.output, outputs, strict=True):
            kind = self.kinds.get(vi.name, "float32")
            self.values[name] = dataclasses.replace(self.values[name], dtype=kind)
        name = self.g.name or "model"
        graph = Graph(inputs, outputs, self.values, {}, self.nodes, name, self.opset, self.gathers, self.fixed)
        graph.constants = {k: self.const[k].astype(np.float32) for k in graph.reads() if k in self.const}
        graph.check()
        return graph

    def translate(self, node: onnx.NodeProto, name: str) -> None:
        """One ONNX node into kgen nodes (or constants, or renames)."""
        self.node, self.node_name = node, name
        if node.domain not in ("", "ai.onnx"):
            raise self.fail(f"domain '{node.domain}' is not supported (supported: the default ONNX domain)")
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            raise self.fail(f"op type {node.op_type} is not supported (supported: {', '.join(sorted(HANDLERS))})")
        handler(self, _attrs(node))
        for o in node.output:
            self.kinds.setdefault(o, self.kind(0) if node.input else "float32")

    def restore_output_names(self, outputs: list[str]) -> list[str]:
        """A graph output that an Identity (or Dropout, Cast...) passed on keeps its ONNX name: the tensor it
        aliases takes that name, unless another output already names that tensor."""
        wanted = [vi.name for vi in self.g.output]
        renames = {
            got: want
            for got, want in zip(outputs, wanted, strict=True)
            if got != want and got not in wanted and want not in self.values and outputs.count(got) == 1
        }
        if not renames:
            return outputs
        for node in self.nodes:
            node.inputs = [renames.get(i, i) for i in node.inputs]
            node.output = renames.get(node.output, node.output)
        for old, new in renames.items():
            self.values[new] = dataclasses.replace(self.values.pop(old), name=new)
        return [renames.get(o, o) for o in outputs]

    def graph_input(self, vi: onnx.ValueInfoProto) -> Value:
        t = vi.type.tensor_type
        dtype = _INPUT_KINDS.get(t.elem_type)
        if dtype is None:
            kind = onnx.TensorProto.DataType.Name(t.elem_type)
            raise GraphError(
                f"graph input '{vi.name}' has dtype {kind}; kgen takes float32, int64, int32 and bool inputs"
            )
        self.kinds[vi.name] = dtype
        if vi.name in self.input_shapes:
            shape = tuple(int(d) for d in self.input_shapes[vi.name])
            declared = [d.dim_param or "?" if not d.HasField("dim_value") else d.dim_value for d in t.shape.dim]
            if len(declared) == len(shape):
                self.fixed |= {
                    f"{vi.name}.{d}": size for d, size in zip(declared, shape, strict=True) if isinstance(d, str)
                }
        else:
            dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
            if not t.HasField("shape") or any(d is None or d <= 0 for d in dims):
                shown = "x".join(
                    str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim
                )
                raise GraphError(
                    f"graph input '{vi.name}' has a dynamic shape [{shown}]: give it with "
                    f"--input-shape {vi.name}=1x3x224x224 (its real sizes)"
                )
            shape = tuple(dims)
        if not shape or any(d <= 0 for d in shape):
            raise GraphError(f"graph input '{vi.name}': invalid shape {shape}")
        value = Value(vi.name, shape, dtype)
        self.values[vi.name] = value
        return value

    def alias(self, attrs: dict[str, Any]) -> None:
        """Identity, Dropout (inference): the output is the input."""
        if len(self.node.output) > 1 and self.node.output[1] in self.read:
            raise self.fail("its mask output is used; kgen converts inference graphs only")
        self.rename[self.node.output[0]] = self.inputs()[0]


Handler = Callable[[_Frontend, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}


def handles(*op_types: str):
    def register(fn: Handler) -> Handler:
        for t in op_types:
            HANDLERS[t] = fn
        return fn

    return register


handles("Identity", "Dropout")(_Frontend.alias)


# -- constants and shape arithmetic (numpy, at conversion) ----------------------------------------------------


@handles("Constant")
def _constant(f: _Frontend, attrs: dict[str, Any]) -> None:
    if "value" in attrs:
        value = np.asarray(attrs["value"])
    elif "value_float" in attrs or "value_int" in attrs:
        value = np.asarray(attrs.get("value_float", attrs.get("value_int")))
    elif "value_floats" in attrs or "value_ints" in attrs:
        value = np.asarray(attrs.get("value_floats", attrs.get("value_ints")))
    else:
        raise f.fail(f"attributes {sorted(attrs)} are not supported (supported: value, value_float(s), value_int(s))")
    f.const[f.node.output[0]] = value


@handles("ConstantOfShape")
def _constant_of_shape(f: _Frontend, attrs: dict[str, Any]) -> None:
    shape = f.constant(0, "shape")
    value = np.asarray(attrs.get("value", np.zeros(1, np.float32))).reshape(-1)
    f.const[f.node.output[0]] = np.full(tuple(int(d) for d in shape), value[0], dtype=value.dtype)


@handles("Shape")
def _shape(f: _Frontend, attrs: dict[str, Any]) -> None:
    shape = np.asarray(f.shape(f.inputs()[0]), dtype=np.int64)
    f.const[f.node.output[0]] = shape[attrs.get("start", 0) : attrs.get("end", len(shape))]


_NUMPY_DTYPES = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32,
    onnx.TensorProto.BOOL: np.bool_,
    onnx.TensorProto.UINT8: np.uint8,
    onnx.TensorProto.INT8: np.int8,
}


@handles("Cast")
def _cast(f: _Frontend, attrs: dict[str, Any]) -> None:
    x = f.inputs()[0]
    target = _NUMPY_DTYPES.get(attrs.get("to"))
    if target is None:
        raise f.fail(f"cast to {onnx.TensorProto.DataType.Name(attrs.get('to', 0))} is not supported")
    if x in f.const:
        f.const[f.node.output[0]] = f.const[x].astype(target)
        return
    source, kind = f.kind(0), _kind_of(np.dtype(target))
    f.kinds[f.node.output[0]] = kind
    if source == kind or kind == "float32" or (source == "bool" and kind == "int32"):
        f.rename[f.node.output[0]] = x  # kernels carry every kind in float32: nothing to compute
    elif kind == "int32":
        f.emit("trunc", [x], {}, f.node.output[0])
    else:  # to bool: nonzero is true
        f.emit("not", [f.emit("not", [x], {})], {}, f.node.output[0])


def _shape_op(fn: Callable[[_Frontend, list[np.ndarray], dict[str, Any]], np.ndarray]) -> Handler:
    """A handler evaluated with numpy when every input is a constant (shape arithmetic)."""

    def handler(f: _Frontend, attrs: dict[str, Any]) -> None:
        ins = [i for i in f.inputs() if i]
        if not all(i in f.const for i in ins):
            raise f.fail("is supported on constants (shape arithmetic) only")
        f.const[f.node.output[0]] = np.asarray(fn(f, [f.const[i] for i in ins], attrs))

    return handler


HANDLERS["Range"] = _shape_op(lambda f, a, at: np.arange(a[0], a[1], a[2]))
HANDLERS["GatherND"] = _shape_op(lambda f, a, at: _gather_nd(a[0], a[1], at.get("batch_dims", 0)))


@handles("ScatterND")
def _scatter(f: _Frontend, attrs: dict[str, Any]) -> None:
    """On constants, evaluated. Otherwise the indices must be constants that write a box of the data in row-major
    order, as a slice assignment exports (BART's decoder ids, shifted right: ids[:, 1:] = input_ids[:, :-1]): the
    updates padded out to the data's shape, chosen by a constant mask over the data."""
    data, indices, updates = f.inputs()[:3]
    out = f.node.output[0]
    if attrs.get("reduction", "none") != "none":
        raise f.fail(f"reduction '{attrs['reduction']}' is not supported (supported: none)")
    if all(i in f.const for i in (data, indices, updates)):
        f.const[out] = _scatter_nd(f.const[data], f.const[indices], f.const[updates])
        return
    f.kinds[out] = f.kind(0)
    shape = f.shape(data)
    written = np.asarray(f.constant(1, "indices")).astype(np.int64)
    k = written.shape[-1]
    points = written.reshape(-1, k) % np.array(shape[:k])
    low, high = points.min(0), points.max(0) + 1
    box = np.stack(np.meshgrid(*map(np.arange, low, high), indexing="ij"), -1).reshape(-1, k)
    if box.shape != points.shape or (box != points).any():
        raise f.fail("its indices do not write a box of the data in order; supported: that, or every input constant")
    target = (*(int(n) for n in high - low), *shape[k:])
    placed = f.reshape(updates, target)
    pads = [*low, *(0,) * (len(shape) - k), *(np.array(shape[:k]) - high), *(0,) * (len(shape) - k)]
    if any(pads):
        placed = f.emit("pad", [placed], {"pads": tuple(int(p) for p in pads), "mode": "constant", "value": 0.0})
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in zip(low, high, strict=True))] = True
    f.emit("where", [f.literal("written", mask), placed, data], {}, out)


def _gather_nd(data: np.ndarray, indices: np.ndarray, batch_dims: int) -> np.ndarray:
    if batch_dims:
        return np.stack([_gather_nd(d, i, batch_dims - 1) for d, i in zip(data, indices, strict=True)])
    return data[tuple(np.moveaxis(indices, -1, 0))]


def _scatter_nd(data: np.ndarray, indices: np.ndarray, updates: np.ndarray) -> np.ndarray:
    out = data.copy()
    out[tuple(np.moveaxis(indices, -1, 0))] = updates
    return out


HANDLERS["Size"] = lambda f, attrs: f.const.__setitem__(
    f.node.output[0], np.asarray(math.prod(f.shape(f.inputs()[0])), np.int64)
)


def _ints(values: Any) -> tuple[int, ...] | None:
    return None if values is None else tuple(int(v) for v in np.asarray(values).reshape(-1))


@handles("Slice")
def _slice(f: _Frontend, attrs: dict[str, Any]) -> None:
    if f.opset < 10:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends = f.constant(1, "starts"), f.constant(2, "ends")
        axes, steps = f.constant(3, "axes"), f.constant(4, "steps")
    slice_attrs = {"starts": _ints(starts), "ends": _ints(ends), "axes": _ints(axes), "steps": _ints(steps)}
    x = f.inputs()[0]
    if x in f.const:  # numpy's slicing is ONNX's, and a constant may come out empty (shape arithmetic)
        f.const[f.node.output[0]] = numpy_slice(f.const[x], slice_attrs)
        return
    shape = numpy_slice(np.broadcast_to(np.zeros((), bool), f.shape(x)), slice_attrs).shape
    if 0 in shape:
        f.empty[f.node.output[0]] = shape
        return
    f.emit("slice", [x], slice_attrs, f.node.output[0])


@handles("Gather")
def _gather(f: _Frontend, attrs: dict[str, Any]) -> None:
    """Gather with constant indices: evaluated on constants; on a computed tensor, the indices as slices (one
    strided slice where they step evenly, else one slice each, concatenated). Computed indices: a host gather where
    they are token ids picking rows of a constant table, else a product with their one-hot rows."""
    x, ids = f.inputs()[:2]
    if ids not in f.const:
        f.kinds[f.node.output[0]] = f.kind(0)
        if not _host_gather(f, x, ids, attrs.get("axis", 0)):
            _one_hot_gather(f, x, ids, attrs.get("axis", 0) % len(f.shape(x)))
        return
    indices = f.constant(1, "indices")
    shape = f.shape(x)
    axis = attrs.get("axis", 0) % len(shape)
    flat = np.asarray(indices).astype(np.int64).reshape(-1)
    if ((flat < -shape[axis]) | (flat >= shape[axis])).any():
        raise f.fail(f"indices {flat.tolist()} fall outside axis {axis} of size {shape[axis]}")
    if x in f.const:
        f.const[f.node.output[0]] = np.take(f.const[x], flat.reshape(np.shape(indices)), axis=axis)
        return
    flat %= shape[axis]
    target = (*shape[:axis], *np.shape(indices), *shape[axis + 1 :])
    steps = set(np.diff(flat).tolist())
    if len(flat) == 1 or (len(steps) == 1 and 0 not in steps):
        step = steps.pop() if steps else 1
        end = int(flat[-1]) + (1 if step > 0 else -1)
        ends = (end if end >= 0 else -(2**63),)
        picked = f.emit("slice", [x], {"starts": (int(flat[0]),), "ends": ends, "axes": (axis,), "steps": (step,)})
    else:
        parts = [f.emit("slice", [x], {"starts": (int(i),), "ends": (int(i) + 1,), "axes": (axis,)}) for i in flat]
        picked = f.concat(parts, axis)
    if tuple(f.shape(picked)) == target:
        f.rename[f.node.output[0]] = picked
    else:
        f.reshape(picked, target or (1,), f.node.output[0])


def _host_gather(f: _Frontend, table: str, ids: str, axis: int) -> bool:
    """Rows of a constant table picked by an integer graph input, or a view of one (Reshape, Squeeze...: the same
    values in the same order): the runtime gathers them when the inputs are set. False where the indices are not
    such an input."""
    shape = f.shape(ids)
    producers = {n.output: n for n in f.nodes}
    while ids in producers and producers[ids].is_view:
        ids = producers[ids].inputs[0]
    if table not in f.const or ids not in {v.name for v in f.graph_inputs} or axis % f.const[table].ndim:
        return False
    rows = f.const[table]
    if rows.size > MAX_TABLE:
        raise f.fail(f"the table {table} has {rows.size:,} values; a host gather takes at most {MAX_TABLE:,}")
    out = f.node.output[0]
    f.values[out] = Value(out, (*shape, *rows.shape[1:]))
    f.gathers.append(Gather(out, table, ids))
    return True


def _one_hot(f: _Frontend, ids: str, size: int, shape: Sequence[int]) -> str:
    """1 where the last axis's position equals the index (negative ones count from the end), else 0: ``ids``
    reshaped to ``shape`` (its last axis 1) against positions 0..size-1."""
    from_end = f.emit("less", [ids, f.literal("zero", [0])], {})
    ids = f.emit("where", [from_end, f.emit("add", [ids, f.literal("size", [size])], {}), ids], {})
    return f.emit("equal", [f.reshape(ids, shape), f.literal("positions", np.arange(size))], {})


def _one_hot_gather(f: _Frontend, x: str, ids: str, axis: int) -> None:
    """Gather by indices computed in the graph (RoBERTa's position ids): the one-hot rows of the indices times the
    table, a matmul that is exact (one product by 1, the rest by 0) and reads only inside the table. An index out
    of range picks zeros. It costs (indices x table) multiply-adds: fine for position tables, slow for a vocabulary
    (those are picked by token ids, which the host gathers)."""
    shape, at = f.shape(x), f.shape(ids)
    size = shape[axis]
    rest = (*shape[:axis], *shape[axis + 1 :])
    hot = _one_hot(f, ids, size, (math.prod(at), 1))
    if axis:
        x = f.emit("transpose", [x], {"perm": (axis, *(k for k in range(len(shape)) if k != axis))})
    picked = f.reshape(f.emit("matmul", [hot, f.reshape(x, (size, math.prod(rest)))], {}), (*at, *rest))
    out = f.node.output[0]
    if not axis:
        f.rename[out] = picked
        return
    lead, tail = len(at), len(shape) - 1 - axis  # picked is (indices, before axis, after axis)
    order = (*range(lead, lead + axis), *range(lead), *range(lead + axis, lead + axis + tail))
    f.emit("transpose", [picked], {"perm": order}, out)


@handles("GatherElements")
def _gather_elements(f: _Frontend, attrs: dict[str, Any]) -> None:
    """Evaluated on constants. Computed data or indices: the indices' one-hot rows times the data along the axis,
    summed (exact, and reads only inside the data); data that holds one value everywhere (RoBERTa's buffer of
    zero token types) gives that value."""
    data, ids = f.inputs()[:2]
    out = f.node.output[0]
    shape, at = f.shape(data), f.shape(ids)
    axis = attrs.get("axis", 0) % len(shape)
    if data in f.const and ids in f.const:
        f.const[out] = np.take_along_axis(f.const[data], f.const[ids], axis=axis)
        return
    f.kinds[out] = f.kind(0)
    values = f.const.get(data)
    if values is not None and values.size and (values == values.flat[0]).all():
        f.const[out] = np.full(at, values.flat[0], values.dtype)
        return
    if len(at) != len(shape) or any(i > d for k, (i, d) in enumerate(zip(at, shape, strict=True)) if k != axis):
        raise f.fail(f"indices of shape {list(at)} do not fit data of shape {list(shape)} off axis {axis}")
    ends = tuple(shape[k] if k == axis else at[k] for k in range(len(shape)))
    if ends != shape:
        data = f.emit("slice", [data], {"starts": (0,) * len(ends), "ends": ends, "axes": tuple(range(len(ends)))})
    if axis != len(shape) - 1:
        data = f.emit("transpose", [data], {"perm": (*(k for k in range(len(shape)) if k != axis), axis)})
    moved = f.reshape(data, (*ends[:axis], 1, *ends[axis + 1 :], shape[axis]))
    terms = f.emit("mul", [_one_hot(f, ids, shape[axis], (*at, 1)), moved], {})
    f.emit("reduce_sum", [terms], {"axes": (len(shape),), "keepdims": 0}, out)


@handles("Split")
def _split(f: _Frontend, attrs: dict[str, Any]) -> None:
    x = f.inputs()[0]
    shape = f.shape(x)
    axis = attrs.get("axis", 0) % len(shape)
    sizes = attrs.get("split") if f.opset < 13 else _ints(f.constant(1, "split"))
    count = len(f.node.output)
    if not sizes:
        chunk = -(-shape[axis] // count)
        sizes = [min(chunk, shape[axis] - k * chunk) for k in range(count)]
    if len(sizes) != count or sum(sizes) != shape[axis] or min(sizes) < 1:
        raise f.fail(f"split {list(sizes)} does not cut axis {axis} of size {shape[axis]} into {count} parts")
    start = 0
    for output, size in zip(f.node.output, sizes, strict=True):
        part = {"starts": (start,), "ends": (start + size,), "axes": (axis,)}
        if x in f.const:
            f.const[output] = np.take(f.const[x], range(start, start + size), axis=axis)
        elif output and output in f.read:
            f.emit("slice", [x], part, output)
        start += size


@handles("Expand")
def _expand(f: _Frontend, attrs: dict[str, Any]) -> None:
    shape = _ints(f.constant(1, "shape"))
    _fold_or_emit(f, "expand", {"shape": shape}, lambda a: a * np.ones(shape, a.dtype))


@handles("Tile")
def _tile(f: _Frontend, attrs: dict[str, Any]) -> None:
    repeats = _ints(f.constant(1, "repeats"))
    _fold_or_emit(f, "tile", {"repeats": repeats}, lambda a: np.tile(a, repeats))


# -- elementwise --------------------------------------------------------------------------------------------

_UNARY = {
    **{"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Exp": "exp", "Neg": "neg", "Abs": "abs"},
    **{"Sqrt": "sqrt", "Log": "log", "Reciprocal": "reciprocal", "Erf": "erf", "Softplus": "softplus"},
    **{"HardSwish": "hard_swish", "HardSigmoid": "hard_sigmoid", "Elu": "elu", "Gelu": "gelu"},
    **{"Floor": "floor", "Ceil": "ceil", "Sin": "sin", "Cos": "cos"},
}
_UNARY_ATTRS = {"hard_sigmoid": ("alpha", "beta"), "elu": ("alpha",), "gelu": ("approximate",)}
_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div"}
_NUMPY_BINARY = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "Max": np.maximum,
    "Min": np.minimum,
}


def _unary(f: _Frontend, attrs: dict[str, Any]) -> None:
    op = _UNARY[f.node.op_type]
    kept = {k: attrs[k] for k in _UNARY_ATTRS.get(op, ()) if k in attrs}
    f.emit(op, f.inputs()[:1], kept, f.node.output[0])


@handles("Pow")
def _pow(f: _Frontend, attrs: dict[str, Any]) -> None:
    exponent = f.constant(1, "exponent")
    if exponent.size != 1:
        raise f.fail(f"the exponent has shape {exponent.shape}; supported: one constant value")
    x = f.inputs()[0]
    if x in f.const and not np.issubdtype(f.const[x].dtype, np.floating):  # shape arithmetic
        f.const[f.node.output[0]] = np.power(f.const[x], exponent.reshape(()))
        return
    f.emit("pow", [x], {"exponent": float(exponent.reshape(()))}, f.node.output[0])


@handles("PRelu")
def _prelu(f: _Frontend, attrs: dict[str, Any]) -> None:
    x, slope = f.inputs()[:2]
    shape = f.shape(x)
    if (
        slope in f.const
        and f.const[slope].ndim == 1
        and len(shape) > 2
        and f.const[slope].size == shape[1] != shape[-1]
    ):
        slope = f.reshape(slope, (shape[1],) + (1,) * (len(shape) - 2))  # per channel, as older exporters write it
    f.emit("prelu", [x, slope], {}, f.node.output[0])


for _t in _UNARY:
    HANDLERS[_t] = _unary


@handles("LeakyRelu")
def _leaky_relu(f: _Frontend, attrs: dict[str, Any]) -> None:
    f.emit("leaky_relu", f.inputs()[:1], {"alpha": attrs.get("alpha", 0.01)}, f.node.output[0])


@handles("Clip")
def _clip(f: _Frontend, attrs: dict[str, Any]) -> None:
    if f.opset < 11:
        low, high = attrs.get("min", -math.inf), attrs.get("max", math.inf)
    else:
        lo, hi = f.constant(1, "min"), f.constant(2, "max")
        low = -math.inf if lo is None else float(np.asarray(lo).reshape(-1)[0])
        high = math.inf if hi is None else float(np.asarray(hi).reshape(-1)[0])
    f.emit("clip", f.inputs()[:1], {"min": low, "max": high}, f.node.output[0])


def _nary(f: _Frontend, attrs: dict[str, Any]) -> None:
    """Add/Sub/Mul/Div, and n-ary Sum, Max and Min as a chain of binary ops."""
    t = f.node.op_type
    ins = [i for i in f.inputs() if i]
    if all(i in f.const for i in ins) and all(not np.issubdtype(f.const[i].dtype, np.floating) for i in ins):
        result = f.const[ins[0]]
        for i in ins[1:]:
            result = _NUMPY_BINARY["Add" if t == "Sum" else t](result, f.const[i])
        f.const[f.node.output[0]] = result.astype(f.const[ins[0]].dtype)
        return
    op = {"Sum": "add", "Max": "max", "Min": "min"}.get(t) or _BINARY[t]
    if len(ins) == 1:
        f.rename[f.node.output[0]] = ins[0]
        return
    if t == "Div" and f.kind(0) == f.kind(1) == "int32":  # integer division rounds toward zero
        f.emit("trunc", [f.emit("div", ins, {})], {}, f.node.output[0])
        return
    acc = ins[0]
    for k, i in enumerate(ins[1:], start=2):
        acc = f.emit(op, [acc, i], {}, f.node.output[0] if k == len(ins) else None)


for _t in (*_BINARY, "Sum", "Max", "Min"):
    HANDLERS[_t] = _nary


# comparisons and logic: on constants (shape arithmetic) with numpy, else kernels on float-carried values
_LOGIC = {
    "Equal": ("equal", np.equal),
    "Less": ("less", np.less),
    "LessOrEqual": ("less_or_equal", np.less_equal),
    "Greater": ("greater", np.greater),
    "GreaterOrEqual": ("greater_or_equal", np.greater_equal),
    "And": ("and", np.logical_and),
    "Or": ("or", np.logical_or),
    "Not": ("not", np.logical_not),
    "Where": ("where", lambda c, x, y: np.where(c, x, y)),
    "Mod": ("mod", None),
}


def _logic(f: _Frontend, attrs: dict[str, Any]) -> None:
    op, numpy_fn = _LOGIC[f.node.op_type]
    ins = f.inputs()
    out = f.node.output[0]
    f.kinds[out] = f.kind(1) if op == "where" else f.kind(0) if op == "mod" else "bool"
    if op == "mod":
        numpy_fn = np.fmod if attrs.get("fmod", 0) else np.mod
    if all(i in f.const for i in ins):
        f.const[out] = np.asarray(numpy_fn(*(f.const[i] for i in ins)))
        return
    f.emit(op, ins, {"fmod": attrs.get("fmod", 0)} if op == "mod" else {}, out)


for _t in _LOGIC:
    HANDLERS[_t] = _logic


@handles("IsNaN")
def _is_nan(f: _Frontend, attrs: dict[str, Any]) -> None:
    """x is NaN where it differs from itself (IEEE): not(equal(x, x))."""
    x = f.inputs()[0]
    out = f.node.output[0]
    f.kinds[out] = "bool"
    if x in f.const:
        f.const[out] = np.isnan(f.const[x])
        return
    f.emit("not", [f.emit("equal", [x, x], {})], {}, out)


@handles("Softmax")
def _softmax(f: _Frontend, attrs: dict[str, Any]) -> None:
    x = f.inputs()[0]
    shape = f.shape(x)
    axis = attrs.get("axis", 1 if f.opset < 13 else -1) % len(shape)
    if f.opset >= 13 or axis == len(shape) - 1:
        f.emit("softmax", [x], {"axis": axis}, f.node.output[0])
        return
    flat = f.emit("flatten", [x], {"axis": axis})  # opset < 13: softmax of the 2-D coercion
    f.reshape(f.emit("softmax", [flat], {"axis": -1}), shape, f.node.output[0])


# -- convolutions and pools ----------------------------------------------------------------------------------


def _auto_pads(f: _Frontend, attrs: dict[str, Any], sizes: Sequence[int], kernel: Sequence[int]) -> list[int]:
    """ONNX pads [begins..., ends...] from ``auto_pad`` (SAME_UPPER, SAME_LOWER, VALID) or ``pads``."""
    rank = len(sizes)
    mode = attrs.get("auto_pad", "NOTSET")
    strides = attrs.get("strides", [1] * rank)
    dilations = attrs.get("dilations", [1] * rank)
    if mode in ("NOTSET", ""):
        return list(attrs.get("pads", [0] * 2 * rank))
    if mode == "VALID":
        return [0] * 2 * rank
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise f.fail(f"auto_pad '{mode}' is not supported (supported: NOTSET, SAME_UPPER, SAME_LOWER, VALID)")
    begins, ends = [], []
    for size, k, s, d in zip(sizes, kernel, strides, dilations, strict=True):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, large = total // 2, total - total // 2
        begins.append(small if mode == "SAME_UPPER" else large)
        ends.append(large if mode == "SAME_UPPER" else small)
    return begins + ends


def _as_2d(f: _Frontend, x: str, what: str) -> tuple[str, bool]:
    """A 1-D (N, C, L) tensor as (N, C, 1, L); 2-D ones pass; others are unsupported."""
    rank = len(f.shape(x))
    if rank == 4:
        return x, False
    if rank == 3:
        n, c, length = f.shape(x)
        return f.reshape(x, (n, c, 1, length)), True
    raise f.fail(f"{what} has rank {rank}; supported: 1-D and 2-D (rank 3 and 4) inputs")


def _lift(values: Sequence[int], fill: int, one_d: bool) -> list[int]:
    return [fill, *values] if one_d else list(values)


def _lift_pads(pads: Sequence[int], one_d: bool) -> list[int]:
    return [0, pads[0], 0, pads[1]] if one_d else list(pads)


def _finish(f: _Frontend, out: str, one_d: bool) -> None:
    if one_d:
        n, c, _, length = f.shape(out)
        f.reshape(out, (n, c, length), f.node.output[0])


@handles("Conv")
def _conv(f: _Frontend, attrs: dict[str, Any]) -> None:
    ins = f.inputs()
    x, one_d = _as_2d(f, ins[0], "input")
    w = ins[1]
    if one_d:
        m, c, k = f.shape(w)
        w = f.reshape(w, (m, c, 1, k))
    kernel = f.shape(w)[2:]
    pads = _auto_pads(f, attrs, f.shape(x)[2:] if not one_d else f.shape(ins[0])[2:], kernel[-1:] if one_d else kernel)
    conv_attrs = {
        "strides": _lift(attrs.get("strides", [1, 1][: 1 if one_d else 2]), 1, one_d),
        "dilations": _lift(attrs.get("dilations", [1, 1][: 1 if one_d else 2]), 1, one_d),
        "pads": _lift_pads(pads, one_d),
        "group": attrs.get("group", 1),
    }
    args = [x, w] + ([ins[2]] if len(ins) > 2 and ins[2] else [])
    out = f.emit("conv2d", args, conv_attrs, None if one_d else f.node.output[0])
    _finish(f, out, one_d)


@handles("ConvTranspose")
def _conv_transpose(f: _Frontend, attrs: dict[str, Any]) -> None:
    ins = f.inputs()
    x = ins[0]
    if len(f.shape(x)) != 4:
        raise f.fail(f"input has rank {len(f.shape(x))}; supported: 2-D (rank 4) inputs")
    kh, kw = f.shape(ins[1])[2:]
    strides = list(attrs.get("strides", [1, 1]))
    dilations = list(attrs.get("dilations", [1, 1]))
    out_pad = list(attrs.get("output_padding", [0, 0]))
    mode = attrs.get("auto_pad", "NOTSET")
    sizes = f.shape(x)[2:]
    target = attrs.get("output_shape")
    if target is None and mode in ("SAME_UPPER", "SAME_LOWER"):
        target = [s * st for s, st in zip(sizes, strides, strict=True)]
    if target is not None:
        target = list(target)[-2:]
        begins, ends = [], []
        for size, k, s, d, op, want in zip(sizes, (kh, kw), strides, dilations, out_pad, target, strict=True):
            total = s * (size - 1) + op + (k - 1) * d + 1 - want
            if total < 0:
                raise f.fail(f"output_shape {target} is larger than the transposed convolution can produce")
            upper = mode == "SAME_UPPER"
            begins.append(total // 2 if upper else total - total // 2)
            ends.append(total - total // 2 if upper else total // 2)
        pads = begins + ends
    elif mode == "VALID" or mode in ("NOTSET", ""):
        pads = list(attrs.get("pads", [0, 0, 0, 0])) if mode != "VALID" else [0, 0, 0, 0]
    else:
        raise f.fail(f"auto_pad '{mode}' is not supported (supported: NOTSET, SAME_UPPER, SAME_LOWER, VALID)")
    conv_attrs = {
        "strides": strides,
        "dilations": dilations,
        "pads": pads,
        "group": attrs.get("group", 1),
        "output_padding": out_pad,
    }
    args = ins[:2] + ([ins[2]] if len(ins) > 2 and ins[2] else [])
    f.emit("conv_transpose2d", args, conv_attrs, f.node.output[0])


@handles("MaxPool", "AveragePool")
def _pool(f: _Frontend, attrs: dict[str, Any]) -> None:
    if len(f.node.output) > 1 and f.node.output[1]:
        raise f.fail("its Indices output is used; supported: the pooled values only")
    if attrs.get("storage_order", 0):
        raise f.fail("storage_order 1 is not supported (supported: 0, row major)")
    x, one_d = _as_2d(f, f.inputs()[0], "input")
    kernel = list(attrs["kernel_shape"])
    sizes = f.shape(f.inputs()[0])[2:]
    pads = _auto_pads(f, attrs, sizes, kernel)
    rank = len(kernel)
    pool_attrs: dict[str, Any] = {
        "kernel_shape": _lift(kernel, 1, one_d),
        "strides": _lift(attrs.get("strides", [1] * rank), 1, one_d),
        "dilations": _lift(attrs.get("dilations", [1] * rank), 1, one_d),
        "pads": _lift_pads(pads, one_d),
        "ceil_mode": attrs.get("ceil_mode", 0),
    }
    if f.node.op_type == "AveragePool":
        pool_attrs["count_include_pad"] = attrs.get("count_include_pad", 0)
    op = "max_pool2d" if f.node.op_type == "MaxPool" else "avg_pool2d"
    out = f.emit(op, [x], pool_attrs, None if one_d else f.node.output[0])
    _finish(f, out, one_d)


@handles("GlobalAveragePool")
def _global_avg_pool(f: _Frontend, attrs: dict[str, Any]) -> None:
    f.emit("global_avg_pool", f.inputs()[:1], {}, f.node.output[0])


@handles("GlobalMaxPool")
def _global_max_pool(f: _Frontend, attrs: dict[str, Any]) -> None:
    x = f.inputs()[0]
    axes = tuple(range(2, len(f.shape(x))))
    f.emit("reduce_max", [x], {"axes": axes, "keepdims": 1}, f.node.output[0])


# -- matrices and normalization ------------------------------------------------------------------------------


@handles("Gemm")
def _gemm(f: _Frontend, attrs: dict[str, Any]) -> None:
    ins = [i for i in f.inputs() if i]
    gemm_attrs = {k: attrs[k] for k in ("alpha", "beta", "transA", "transB") if k in attrs}
    f.emit("gemm", ins, gemm_attrs, f.node.output[0])


@handles("MatMul")
def _matmul(f: _Frontend, attrs: dict[str, Any]) -> None:
    f.emit("matmul", f.inputs()[:2], {}, f.node.output[0])


HANDLERS["LSTM"] = HANDLERS["GRU"] = recurrent.unroll
HANDLERS["Einsum"] = einsum.einsum


@handles("If")
def _if(f: _Frontend, attrs: dict[str, Any]) -> None:
    """An If whose condition is a constant once the input shapes are fixed: its branch, translated in place."""
    ins = f.inputs()
    if ins[0] not in f.const:
        raise f.fail("its condition is computed from the inputs' values; supported: a condition fixed by their shapes")
    outer, name = f.node, f.node_name
    branch = attrs["then_branch"] if bool(np.asarray(f.const[ins[0]]).reshape(-1)[0]) else attrs["else_branch"]
    for init in branch.initializer:
        f.const[init.name] = numpy_helper.to_array(init)
    for k, node in enumerate(branch.node):
        f.translate(node, f"{name}/{node.name or f'{node.op_type}_{k}'}")
    for out, result in zip(outer.output, branch.output, strict=True):
        source = f.name(result.name)
        if source in f.const:
            f.const[out] = f.const[source]
        else:
            f.rename[out] = source
        f.kinds[out] = f.kinds.get(result.name, f.kinds.get(source, "float32"))
    f.node, f.node_name = outer, name


@handles("LayerNormalization")
def _layer_norm(f: _Frontend, attrs: dict[str, Any]) -> None:
    if any(o for o in f.node.output[1:]):
        raise f.fail("its Mean and InvStdDev outputs are training outputs; supported: the normalized output only")
    keep = {k: attrs[k] for k in ("axis", "epsilon") if k in attrs}
    f.emit("layer_norm", [i for i in f.inputs()[:3] if i], keep, f.node.output[0])


@handles("RMSNormalization")
def _rms_norm(f: _Frontend, attrs: dict[str, Any]) -> None:
    keep = {"axis": attrs.get("axis", -1), "epsilon": attrs.get("epsilon", 1e-5)}
    f.emit("rms_norm", f.inputs()[:2], keep, f.node.output[0])


@handles("Attention")
def _attention(f: _Frontend, attrs: dict[str, Any]) -> None:
    """ONNX's Attention (opset 23) as kgen's attention op: heads split from 3-D inputs and merged back, K
    transposed, a boolean mask and ``is_causal`` as additive masks of the lowest float32 (not -inf: a row whose
    every key is masked weighs them equally where onnxruntime gives NaN)."""
    ins = f.inputs() + [""] * (6 - len(f.inputs()))
    if ins[4] or ins[5]:
        raise f.fail("past_key and past_value (a key/value cache) are not supported; export without a cache")
    if any(o in f.read for o in f.node.output[1:] if o):
        raise f.fail("its present_key, present_value and qk_matmul_output outputs are not supported; only Y")
    if attrs.get("softcap", 0.0):
        raise f.fail(f"softcap {attrs['softcap']} is not supported (supported: 0)")
    q, k, v = ins[:3]
    rank = len(f.shape(q))
    if rank == 3:
        heads = [attrs.get("q_num_heads"), attrs.get("kv_num_heads"), attrs.get("kv_num_heads")]
        if not all(heads):
            raise f.fail("3-D Q, K and V need the attributes q_num_heads and kv_num_heads")
        batch, rows = f.shape(q)[:2]
        q, k, v = (
            f.emit("transpose", [f.reshape(t, (*f.shape(t)[:2], h, f.shape(t)[2] // h))], {"perm": (0, 2, 1, 3)})
            for t, h in zip((q, k, v), heads, strict=True)
        )
    elif rank != 4:
        raise f.fail(
            f"Q has rank {rank}; supported: 3 ([batch, sequence, hidden]) or 4 ([batch, heads, sequence, size])"
        )
    (_, q_heads, s, d), (_, kv_heads, t, _) = f.shape(q), f.shape(k)
    if q_heads != kv_heads:
        raise f.fail(f"grouped-query attention ({q_heads} query heads, {kv_heads} key heads) is not supported")
    masks = []
    if ins[3]:
        masks.append(
            ins[3]
            if f.kind(3) != "bool"
            else f.emit("where", [ins[3], f.literal(ins[3], 0.0), f.literal(ins[3], LOWEST)], {})
        )
    if attrs.get("is_causal", 0):
        masks.append(f.literal("causal", np.where(np.tril(np.ones((s, t), bool)), 0.0, LOWEST)))
    mask = masks if len(masks) < 2 else [f.emit("add", masks, {})]
    scale = attrs.get("scale", 1.0 / math.sqrt(d))
    y = f.emit(
        "attention",
        [q, f.emit("transpose", [k], {"perm": (0, 1, 3, 2)}), v, *mask],
        {"scale": scale},
        None if rank == 3 else f.node.output[0],
    )
    if rank == 3:
        merged = f.emit("transpose", [y], {"perm": (0, 2, 1, 3)})
        f.reshape(merged, (batch, rows, -1), f.node.output[0])


@handles("InstanceNormalization")
def _instance_norm(f: _Frontend, attrs: dict[str, Any]) -> None:
    f.emit("instance_norm", f.inputs()[:3], {"epsilon": attrs.get("epsilon", 1e-5)}, f.node.output[0])


@handles("GroupNormalization")
def _group_norm(f: _Frontend, attrs: dict[str, Any]) -> None:
    x, scale, bias = f.inputs()[:3]
    groups, channels = attrs["num_groups"], f.shape(x)[1]
    params = []
    for k, name in ((1, scale), (2, bias)):
        if f.opset < 21 and groups != channels:  # opset 18: one scale and bias per group
            per_group = f.constant(k, "scale" if k == 1 else "bias")
            if per_group.shape != (groups,) or channels % groups:
                raise f.fail(f"input {k} has shape {per_group.shape}; expected ({groups},), one per group")
            name = f.literal(name, np.repeat(per_group, channels // groups))
        params.append(name)
    attrs = {"num_groups": groups, "epsilon": attrs.get("epsilon", 1e-5)}
    f.emit("group_norm", [x, *params], attrs, f.node.output[0])


@handles("BatchNormalization")
def _batch_norm(f: _Frontend, attrs: dict[str, Any]) -> None:
    if attrs.get("training_mode", 0) or any(o for o in f.node.output[1:]):
        raise f.fail("training mode (running statistics as outputs) is not supported; export for inference")
    f.emit("batch_norm", f.inputs()[:5], {"epsilon": attrs.get("epsilon", 1e-5)}, f.node.output[0])


# -- shapes ---------------------------------------------------------------------------------------------------


def _fold_or_emit(f: _Frontend, op: str, attrs: dict[str, Any], numpy_fn: Callable[[np.ndarray], np.ndarray]) -> None:
    x = f.inputs()[0]
    if x in f.const:
        f.const[f.node.output[0]] = numpy_fn(f.const[x])
    else:
        f.emit(op, [x], attrs, f.node.output[0])


@handles("Reshape")
def _reshape(f: _Frontend, attrs: dict[str, Any]) -> None:
    target = attrs["shape"] if f.opset < 5 else f.constant(1, "shape")
    target = [int(d) for d in np.asarray(target).reshape(-1)]
    if attrs.get("allowzero", 0) and 0 in target:
        raise f.fail("allowzero 1 with a 0 in the shape (an empty tensor) is not supported")
    x = f.inputs()[0]
    if x in f.const:
        data = f.const[x]
        dims = [data.shape[k] if d == 0 else d for k, d in enumerate(target)]
        f.const[f.node.output[0]] = data.reshape(dims)
        return
    f.emit("reshape", [x], {"shape": tuple(target)}, f.node.output[0])


@handles("Flatten")
def _flatten(f: _Frontend, attrs: dict[str, Any]) -> None:
    axis = attrs.get("axis", 1)
    _fold_or_emit(f, "flatten", {"axis": axis}, lambda a: a.reshape(math.prod(a.shape[: axis % (a.ndim + 1)]), -1))


@handles("Transpose")
def _transpose(f: _Frontend, attrs: dict[str, Any]) -> None:
    perm = attrs.get("perm")
    _fold_or_emit(f, "transpose", {"perm": perm}, lambda a: np.transpose(a, perm))


def _axes(f: _Frontend, attrs: dict[str, Any], since: int) -> list[int] | None:
    """``axes`` from the attribute (before opset ``since``) or the second input (from it)."""
    if f.opset < since:
        return attrs.get("axes")
    axes = f.constant(1, "axes")
    return None if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]


@handles("Squeeze")
def _squeeze(f: _Frontend, attrs: dict[str, Any]) -> None:
    x = f.inputs()[0]
    shape = f.shape(x)
    axes = _axes(f, attrs, 13)
    axes = [k for k, d in enumerate(shape) if d == 1] if axes is None else [a % len(shape) for a in axes]
    if any(shape[a] != 1 for a in axes):
        raise f.fail(f"axes {axes} of shape {shape} are not all of size 1")
    target = [d for k, d in enumerate(shape) if k not in axes] or [1]
    _view(f, x, target)


@handles("Unsqueeze")
def _unsqueeze(f: _Frontend, attrs: dict[str, Any]) -> None:
    x = f.inputs()[0]
    shape = list(f.shape(x))
    axes = _axes(f, attrs, 13)
    if axes is None:
        raise f.fail("axes are required")
    rank = len(shape) + len(axes)
    for a in sorted(a % rank for a in axes):
        shape.insert(a, 1)
    _view(f, x, shape)


def _view(f: _Frontend, x: str, target: Sequence[int]) -> None:
    if x in f.const:
        f.const[f.node.output[0]] = f.const[x].reshape(target)
    else:
        f.emit("reshape", [x], {"shape": tuple(target)}, f.node.output[0])


@handles("Concat")
def _concat(f: _Frontend, attrs: dict[str, Any]) -> None:
    ins = [i for i in f.inputs() if i and i not in f.empty]
    if not ins:
        raise f.fail("every input has no elements")
    if len(ins) == 1:
        f.rename[f.node.output[0]] = ins[0]
        return
    if all(i in f.const for i in ins):
        f.const[f.node.output[0]] = np.concatenate([f.const[i] for i in ins], axis=attrs["axis"])
        return
    f.concat(ins, attrs["axis"], f.node.output[0])


@handles("Pad")
def _pad(f: _Frontend, attrs: dict[str, Any]) -> None:
    x = f.inputs()[0]
    rank = len(f.shape(x))
    mode = attrs.get("mode", "constant")
    if mode not in ("constant", "edge", "reflect"):
        raise f.fail(f"mode '{mode}' is not supported (supported: constant, edge, reflect)")
    if f.opset < 11:
        pads, value = list(attrs.get("pads", attrs.get("paddings", []))), attrs.get("value", 0.0)
    else:
        pads = [int(p) for p in np.asarray(f.constant(1, "pads")).reshape(-1)]
        constant = f.constant(2, "constant_value")
        value = 0.0 if constant is None or constant.size == 0 else float(np.asarray(constant).reshape(-1)[0])
        axes = f.constant(3, "axes")
        if axes is not None:
            full = [0] * (2 * rank)
            axes = [int(a) % rank for a in np.asarray(axes).reshape(-1)]
            for k, a in enumerate(axes):
                full[a], full[a + rank] = pads[k], pads[k + len(axes)]
            pads = full
    f.emit("pad", [x], {"pads": tuple(pads), "mode": mode, "value": value}, f.node.output[0])


_REDUCE = {
    **{"ReduceMean": "reduce_mean", "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max", "ReduceMin": "reduce_min"},
    **{"ReduceSumSquare": "reduce_sum_square", "ReduceL1": "reduce_l1", "ReduceL2": "reduce_l2"},
}


def _reduce(f: _Frontend, attrs: dict[str, Any]) -> None:
    op = _REDUCE[f.node.op_type]
    since = 13 if f.node.op_type == "ReduceSum" else 18
    axes = _axes(f, attrs, since)
    if axes is not None and not axes:
        axes = None
    if axes is None and attrs.get("noop_with_empty_axes", 0):
        f.rename[f.node.output[0]] = f.inputs()[0]
        return
    f.emit(op, f.inputs()[:1], {"axes": axes, "keepdims": attrs.get("keepdims", 1)}, f.node.output[0])


for _t in _REDUCE:
    HANDLERS[_t] = _reduce


@handles("CumSum")
def _cumsum(f: _Frontend, attrs: dict[str, Any]) -> None:
    x, out = f.inputs()[0], f.node.output[0]
    axis = f.constant(1, "axis")
    if axis is None or axis.size != 1:
        raise f.fail("input 1 (axis) must hold one axis")
    f.kinds[out] = f.kind(0)
    keep = {
        "axis": int(axis.reshape(-1)[0]),
        "exclusive": attrs.get("exclusive", 0),
        "reverse": attrs.get("reverse", 0),
    }
    f.emit("cumsum", [x], keep, out)


@handles("ArgMax", "ArgMin")
def _arg_extreme(f: _Frontend, attrs: dict[str, Any]) -> None:
    """The position of the largest (smallest) value along an axis: the extreme, then the first (with
    select_last_index, the last) position that holds it, as reductions over a constant of positions."""
    x = f.inputs()[0]
    shape = f.shape(x)
    axis, keep = attrs.get("axis", 0) % len(shape), attrs.get("keepdims", 1)
    extreme = f.emit(
        "reduce_max" if f.node.op_type == "ArgMax" else "reduce_min", [x], {"axes": (axis,), "keepdims": 1}
    )
    positions = f.literal("positions", np.arange(shape[axis]).reshape([-1] + [1] * (len(shape) - axis - 1)))
    last = attrs.get("select_last_index", 0)
    beyond = f.literal("beyond", [-1.0 if last else float(shape[axis])])
    hits = f.emit("where", [f.emit("equal", [x, extreme], {}), positions, beyond], {})
    out = f.node.output[0]
    f.kinds[out] = "int32"
    f.emit("reduce_max" if last else "reduce_min", [hits], {"axes": (axis,), "keepdims": keep}, out)


# -- image ----------------------------------------------------------------------------------------------------


@handles("LRN")
def _lrn(f: _Frontend, attrs: dict[str, Any]) -> None:
    keep = {k: attrs[k] for k in ("size", "alpha", "beta", "bias") if k in attrs}
    f.emit("lrn", f.inputs()[:1], keep, f.node.output[0])


def _factor(value: float, where: str, f: _Frontend) -> Fraction:
    """A float32 scale as the fraction it stands for (8/7 from 1.1428572), denominators up to the op's period."""
    factor = Fraction(float(value)).limit_denominator(MAX_PERIOD)
    if factor <= 0 or np.float32(float(factor)) != np.float32(value):
        raise f.fail(f"scale {float(value):g} on {where} is not a positive fraction with a denominator <= {MAX_PERIOD}")
    return factor


def _scales(f: _Frontend, x: str, scales: np.ndarray | None, sizes: np.ndarray | None) -> list[Fraction]:
    """The factors of H and W; N and C must keep their size."""
    shape = f.shape(x)
    if len(shape) != 4:
        raise f.fail(f"input has rank {len(shape)}; supported: 4-D NCHW inputs")
    if sizes is not None and sizes.size:
        factors = [Fraction(int(s), d) for s, d in zip(np.asarray(sizes).reshape(-1), shape, strict=True)]
    elif scales is not None and scales.size:
        factors = [_factor(v, axis, f) for v, axis in zip(np.asarray(scales).reshape(-1), "NCHW", strict=False)]
    else:
        raise f.fail("neither scales nor sizes is given")
    if len(factors) != 4 or factors[:2] != [1, 1]:
        scales = ", ".join(f"{v:g}" for v in map(float, factors))
        raise f.fail(f"scales [{scales}] are not supported (supported: 1 on N and C)")
    return factors[2:]


@handles("Resize", "Upsample")
def _resize(f: _Frontend, attrs: dict[str, Any]) -> None:
    x = f.inputs()[0]
    mode = attrs.get("mode", "nearest")
    if mode not in ("nearest", "linear", "bilinear", "cubic"):
        raise f.fail(f"mode '{mode}' is not supported (supported: nearest, linear, cubic)")
    if attrs.get("exclude_outside", 0):
        raise f.fail("exclude_outside 1 is not supported (the inputs past the edge are clamped to it)")
    if f.node.op_type == "Upsample" or f.opset < 11:  # Upsample, and Resize of opset 10: asymmetric, floor
        if f.node.op_type == "Upsample" and f.opset < 9:
            scales = np.asarray(attrs.get("scales", []), np.float32)
        else:
            scales = f.constant(1, "scales")
        coordinates, nearest = "asymmetric", "floor"
        factors = _scales(f, x, scales, None)
    else:
        coordinates = attrs.get("coordinate_transformation_mode", "half_pixel")
        nearest = attrs.get("nearest_mode", "round_prefer_floor")
        if coordinates not in COORDINATES:
            raise f.fail(
                f"coordinate_transformation_mode '{coordinates}' is not supported (supported: {', '.join(COORDINATES)})"
            )
        if attrs.get("antialias", 0) or attrs.get("axes") is not None:
            raise f.fail("antialias and axes are not supported")
        factors = _scales(f, x, f.constant(2, "scales"), f.constant(3, "sizes"))
    resize_attrs = {
        "scales": tuple(v.numerator for v in factors),
        "divisors": tuple(v.denominator for v in factors),
        "mode": "linear" if mode == "bilinear" else mode,
        "coordinate_transformation_mode": coordinates,
        "nearest_mode": nearest,
        "cubic_coeff_a": attrs.get("cubic_coeff_a", -0.75),
    }
    f.emit("resize", [x], resize_attrs, f.node.output[0])
