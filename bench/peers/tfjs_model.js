// TensorFlow.js on a whole network, for bench.models: the ONNX model's nodes, built from `tf` ops (its fused
// convs where the converter would use them) in TF.js's layouts (NHWC activations; weights already transposed by bench/tfjs_network.py into HWIO, [kH, kW, C, 1] for a
// depthwise conv, [kH, kW, out, in] for a transposed one), with the same weights. Backends: wasm (XNNPACK), webgl,
// webgpu, set up by tfjs_runner.js's setup(). Served from bench/peers (make peers), nothing fetched from elsewhere.
import { timeRuns } from "./timing.js";

const explicit = (pads) => [[0, 0], [pads[0], pads[2]], [pads[1], pads[3]], [0, 0]];

// One node: its op on the values computed so far (`env`, by tensor name), in NHWC.
function apply(node, env, weights) {
  const arg = (i) => env.get(node.inputs[i]) ?? weights.get(node.inputs[i]);
  const a = node.attrs;
  switch (node.op) {
    case "Conv": {
      // batch norm folded and ReLU / ReLU6 fused by bench/tfjs_network.py, as TF.js's converter does; `nchw`: a
      // ViT's patches, in and out in ONNX's layout
      const x = a.nchw ? tf.transpose(arg(0), [0, 2, 3, 1]) : arg(0);
      const conv = { x, filter: arg(1), strides: a.strides, pad: explicit(a.pads), activation: a.activation };
      if (node.inputs.length > 2) conv.bias = arg(2);
      const y = a.depthwise ? tf.fused.depthwiseConv2d(conv) : tf.fused.conv2d(conv);
      return a.nchw ? tf.transpose(y, [0, 3, 1, 2]) : y;
    }
    case "Concat":
      return tf.concat(node.inputs.map((_, i) => arg(i)), a.axis);
    case "LayerNormalization": {
      const x = arg(0);
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, a.epsilon))), arg(1)), arg(2));
    }
    case "ConvTranspose": {
      const x = arg(0);
      const [n, h, w] = x.shape;
      const outShape = [n, h * a.strides[0], w * a.strides[1], a.channels];
      const y = tf.conv2dTranspose(x, arg(1), outShape, a.strides, "same");
      return node.inputs.length > 2 ? tf.add(y, arg(2)) : y;
    }
    case "BatchNormalization":
      return tf.batchNorm(arg(0), arg(3), arg(4), arg(2), arg(1), a.epsilon);
    case "Relu":
      return tf.relu(arg(0));
    case "Clip":
      return tf.clipByValue(arg(0), a.min, a.max);
    case "Tanh":
      return tf.tanh(arg(0));
    case "Add":
      return tf.add(arg(0), arg(1));
    case "MaxPool": // ONNX pads with -inf; TF.js's "same" would pad the other side
      return tf.maxPool(tf.pad(arg(0), explicit(a.pads), -Infinity), a.kernel, a.strides, "valid");
    case "GlobalAveragePool":
      return tf.mean(arg(0), [1, 2], true);
    case "Flatten":
      return tf.reshape(arg(0), [arg(0).shape[0], -1]);
    case "Gemm": {
      // not tf.fused.matMul: with transposeB and a bias it computed something else on the wasm backend (4.22)
      const y = tf.matMul(arg(0), arg(1), false, Boolean(a.transB));
      return node.inputs.length > 2 ? tf.add(y, arg(2)) : y;
    }
    case "Reshape": // an image: to ONNX's NCHW shape, then to NHWC
      return a.image ? tf.transpose(tf.reshape(arg(0), a.shape), [0, 2, 3, 1]) : tf.reshape(arg(0), a.shape);
    case "HardSigmoid":
      return tf.clipByValue(tf.add(tf.mul(arg(0), a.alpha), a.beta), 0, 1);
    case "HardSwish":
      return tf.mul(arg(0), tf.div(tf.relu6(tf.add(arg(0), 3)), 6));
    case "Dropout":
      return arg(0);
    case "Sub":
      return tf.sub(arg(0), arg(1));
    case "Mul":
      return tf.mul(arg(0), arg(1));
    case "Div":
      return tf.div(arg(0), arg(1));
    case "Pow":
      return tf.pow(arg(0), arg(1));
    case "Sqrt":
      return tf.sqrt(arg(0));
    case "Erf":
      return tf.erf(arg(0));
    case "MatMul": {
      // a projection by a weight matrix as TF.js's converter gives it (a Dense): the rows of x by the matrix
      const [x, w] = [arg(0), arg(1)];
      if (w.rank !== 2 || x.rank === 2) return tf.matMul(x, w);
      const y = tf.matMul(tf.reshape(x, [-1, x.shape[x.rank - 1]]), w);
      return tf.reshape(y, [...x.shape.slice(0, -1), w.shape[1]]);
    }
    case "Transpose":
      return tf.transpose(arg(0), a.perm);
    case "ReduceMean":
      return tf.mean(arg(0), a.axes, a.keepdims);
    case "Softmax": {
      const x = arg(0);
      const axis = a.axis < 0 ? a.axis + x.rank : a.axis;
      if (axis === x.rank - 1) return tf.softmax(x);
      throw new Error(`tfjs_model.js: Softmax on axis ${a.axis} of a rank-${x.rank} tensor (node ${node.output})`);
    }
    case "Cast":
      return tf.cast(arg(0), a.dtype);
    case "Gather": {
      // a scalar index drops the axis, as in ONNX (tf.gather keeps it as one of length 1)
      const [x, index] = [arg(0), arg(1)];
      const axis = a.axis < 0 ? a.axis + x.rank : a.axis;
      return index.rank === 0 ? tf.squeeze(tf.gather(x, tf.reshape(index, [1]), axis), [axis]) : tf.gather(x, index, axis);
    }
    default:
      throw new Error(`tfjs_model.js: no tf translation of ONNX op ${node.op} (node ${node.output})`);
  }
}

function forward(network, weights, inputs) {
  return tf.tidy(() => {
    const env = new Map(inputs);
    for (const node of network.nodes) env.set(node.output, apply(node, env, weights));
    return env.get(network.output);
  });
}

// Cold start, as for the other sides: the backend made ready (`initBackend`, run beside the fetches; the
// library's version it returns comes back with the figures), the description and the weights fetched from the
// local server (written by bench/tfjs_network.py), the weights made tensors, and the first output read back;
// then runs timed as timing.js says (a run: the input tensor made from the host array, the network, the output
// read back with data(), which waits for the GPU).
export async function timeNetwork(url, inputValues, options, initBackend) {
  // inputValues: each input's values by name, in the network's layout
  const t0 = performance.now();
  const [network, bytes, info] = await Promise.all([
    fetch(`${url}.json`).then((r) => r.json()),
    fetch(`${url}.bin`).then((r) => r.arrayBuffer()),
    initBackend(),
  ]);
  const floats = new Float32Array(bytes);
  const size = (dims) => dims.reduce((a, b) => a * b, 1);
  const weights = new Map(
    Object.entries(network.weights).map(([k, t]) => [k, tf.tensor(floats.subarray(t.offset, t.offset + size(t.dims)), t.dims, t.dtype)]),
  );
  const typed = network.inputs.map((i) => [i, (i.dtype === "int32" ? Int32Array : Float32Array).from(inputValues[i.name])]);
  const run = async () => {
    const xs = typed.map(([i, values]) => [i.name, tf.tensor(values, i.dims, i.dtype)]);
    const y = forward(network, weights, xs);
    const out = await y.data();
    xs.forEach(([, x]) => x.dispose());
    y.dispose();
    return out;
  };
  await run();
  const coldMs = performance.now() - t0;
  const timed = await timeRuns(run, options);
  for (const w of weights.values()) w.dispose();
  return { coldMs, medianMs: timed.medianMs, sampleMs: timed.sampleMs, output: Array.from(timed.output), version: info.version };
}
