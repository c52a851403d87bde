"""One-op ONNX models of suite workloads, for peers that run ONNX (ONNX Runtime Web): the first input is the
graph's input, the others (weights, bias, a matmul's B) are initializers with the given values, as a model
ships them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kgen.ops import Workload

OPSET = 17
IR_VERSION = 8  # what opset 17 needs; onnx 1.23 writes 14 by default, which ONNX Runtime 1.30 rejects


def one_op_model(workload: Workload, arrays: Sequence[np.ndarray]) -> bytes:
    """The serialized model computing ``workload`` on ``arrays[0]`` with ``arrays[1:]`` built in."""
    attrs = workload.attr_dict
    names = ["x", *(f"w{k}" for k in range(1, len(arrays)))]
    if workload.op == "conv2d":
        node = helper.make_node(
            "Conv",
            names,
            ["y"],
            pads=list(attrs["pads"]),
            strides=list(attrs["strides"]),
            dilations=list(attrs["dilations"]),
            group=int(attrs["group"]),
            kernel_shape=list(workload.shapes[1][2:]),
        )
    elif workload.op == "matmul":
        node = helper.make_node("MatMul", names, ["y"])
    else:
        raise ValueError(f"no ONNX model for {workload.op}")
    out_shape = list(workload.opdef.reference(list(arrays), attrs).shape)
    weights = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in zip(names[1:], arrays[1:], strict=True)]
    graph = helper.make_graph(
        [node],
        workload.op,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(arrays[0].shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kgen-bench")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()
