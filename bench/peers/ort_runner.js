// ONNX Runtime Web's wasm or WebGPU execution provider in the harness page, for benchmarks: served from
// bench/peers/node_modules (installed by `make peers`), nothing fetched from elsewhere. The thread count and the
// execution provider are chosen once per page.
import { timeRuns } from "./timing.js";

const DIST = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;
let ort = null;
let provider = "wasm";

export async function setup(threads, ep = "wasm") {
  ort = await import(ep === "webgpu" ? `${DIST}ort.webgpu.min.mjs` : `${DIST}ort.wasm.min.mjs`);
  ort.env.wasm.wasmPaths = DIST;
  ort.env.wasm.numThreads = threads;
  provider = ep;
  return { version: ort.env.versions?.web ?? "unknown", threads, ep, crossOriginIsolated: self.crossOriginIsolated };
}

function decode(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// One op run = session.run(feeds): the input copied in, the op, the output read back (as the peer table).
// Timed as timing.js says.
export async function time(modelB64, inputs, options = {}) {
  const session = await ort.InferenceSession.create(decode(modelB64), { executionProviders: [provider] });
  const feeds = {};
  for (const { name, dims, b64 } of inputs) {
    feeds[name] = new ort.Tensor("float32", new Float32Array(decode(b64).buffer), dims);
  }
  const timed = await timeRuns(() => session.run(feeds), options);
  const first = Object.values(timed.output)[0];
  const result = { ...timed, output: Array.from(first.data.slice(0, 8)) };
  await session.release();
  return result;
}
