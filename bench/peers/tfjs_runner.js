// TensorFlow.js's wasm backend (XNNPACK) or WebGL backend (packed textures) in the harness page, for benchmarks:
// tfjs-core and the backend served from bench/peers/node_modules (installed by `make peers`), nothing fetched from
// elsewhere. Their UMD builds are loaded as classic scripts (the ES builds import bare package names) and set the
// global `tf`.
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

// `backend`: "wasm" (on `threads` threads) or "webgl" (TF.js's defaults: packed textures, conv as im2col + matmul).
export async function setup(threads, backend = "wasm") {
  await loadLibrary(backend);
  return initBackend(threads, backend);
}

// The library's scripts (as a page's script tags would load them, before any model), without their backend.
export async function loadLibrary(backend) {
  await script(`${DIST}tfjs-core/dist/tf-core.min.js`);
  await script(`${DIST}tfjs-backend-${backend}/dist/tf-backend-${backend}.min.js`);
}

// The backend made ready: on wasm its module fetched and compiled, on WebGL its context, on WebGPU its device; a
// model's cold start includes it, as kgen's load() includes its launcher's and ORT's session creation its own.
export async function initBackend(threads, backend) {
  if (backend === "wasm") {
    tf.wasm.setWasmPaths(`${DIST}tfjs-backend-wasm/dist/`);
    tf.wasm.setThreadsCount(threads);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js could not set up its ${backend} backend`);
  await tf.ready();
  const used = backend === "wasm" ? tf.wasm.getThreadsCount() : null;
  return { version: tf.version_core, threads: used, backend: tf.getBackend() };
}

// One op run: the input copied in (tf.tensor from the host array), the op, the output read back (`data()`), as
// in the peer table; timed as timing.js says. `op` is {kind: "matmul"} or {kind: "conv" | "depthwise", strides,
// pads}; the weight is a tensor made once (a model's weight), the input NHWC for a conv (TF.js's layout: the host
// transposes it once, outside the timing).
//
// `options.opOnly` (wasm only): the input is a tensor made once too and the timed run is the op alone, as kgen's
// kernels are timed (inputs already in memory); TF.js's wasm kernels run synchronously, so no read-back is needed
// for the op to have finished. The output is read back once, after the timing, for the check.
export async function time(op, x, w, options = {}) {
  const weight = tf.tensor(decode(w.b64), w.dims);
  const data = decode(x.b64);
  const pads = op.kind === "matmul" ? null : [[0, 0], [op.pads[0], op.pads[2]], [op.pads[1], op.pads[3]], [0, 0]];
  const apply = (input) =>
    op.kind === "matmul"
      ? tf.matMul(input, weight)
      : (op.kind === "depthwise" ? tf.depthwiseConv2d : tf.conv2d)(input, weight, op.strides, pads);
  let timed;
  if (options.opOnly) {
    const input = tf.tensor(data, x.dims);
    timed = await timeRuns(() => apply(input).dispose(), options);
    const y = apply(input);
    timed.output = y.dataSync();
    y.dispose();
    input.dispose();
  } else {
    timed = await timeRuns(async () => {
      const input = tf.tensor(data, x.dims);
      const y = apply(input);
      const out = await y.data(); // the read-back that waits for the GPU (webgpu's dataSync may not)
      input.dispose();
      y.dispose();
      return out;
    }, options);
  }
  weight.dispose();
  return { ...timed, output: Array.from(timed.output.slice(0, 8)) };
}
