// TensorFlow.js's wasm backend (XNNPACK) in the harness page, for benchmarks: tfjs-core and tfjs-backend-wasm served
// from bench/peers/node_modules (installed by `make peers`), nothing fetched from elsewhere. Their UMD builds are
// loaded as classic scripts (the ES builds import bare package names) and set the global `tf`.
import { timeRuns } from "./timing.js";

const DIST = new URL("./node_modules/@tensorflow/", import.meta.url).href;

function script(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.appendChild(s);
  });
}

function decode(b64) {
  return new Float32Array(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
}

export async function setup(threads) {
  await script(`${DIST}tfjs-core/dist/tf-core.min.js`);
  await script(`${DIST}tfjs-backend-wasm/dist/tf-backend-wasm.min.js`);
  tf.wasm.setWasmPaths(`${DIST}tfjs-backend-wasm/dist/`);
  tf.wasm.setThreadsCount(threads);
  await tf.setBackend("wasm");
  await tf.ready();
  return { version: tf.version_core, threads: tf.wasm.getThreadsCount(), backend: tf.getBackend() };
}

// One op run: the input copied in (tf.tensor from the host array), the op, the output read back (dataSync), as
// in the peer table; timed as timing.js says. `op` is {kind: "matmul"} or {kind: "conv", strides, pads}; the
// weight is a tensor made once (a model's weight), the input NHWC for a conv (TF.js's layout: the host transposes
// it once, outside the timing).
export async function time(op, x, w, options = {}) {
  const weight = tf.tensor(decode(w.b64), w.dims);
  const data = decode(x.b64);
  const run = () => {
    const input = tf.tensor(data, x.dims);
    const y =
      op.kind === "matmul"
        ? tf.matMul(input, weight)
        : tf.conv2d(input, weight, op.strides, [[0, 0], [op.pads[0], op.pads[2]], [op.pads[1], op.pads[3]], [0, 0]]);
    const out = y.dataSync();
    input.dispose();
    y.dispose();
    return out;
  };
  const timed = await timeRuns(run, options);
  weight.dispose();
  return { ...timed, output: Array.from(timed.output.slice(0, 8)) };
}
