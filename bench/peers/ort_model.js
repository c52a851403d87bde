// ONNX Runtime Web on whole models in the harness page, for bench.models: the wasm, WebGL or WebGPU execution
// provider, served from bench/peers/node_modules (make peers). The thread count is read once per page, so each
// thread count gets a page of its own.
import { timeRuns } from "./timing.js";

const DIST = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;
let ort = null;

const BUNDLES = { wasm: "ort.wasm.min.mjs", webgl: "ort.webgl.min.mjs", webgpu: "ort.webgpu.min.mjs" };

export async function setup(threads, ep = "wasm") {
  ort = await import(`${DIST}${BUNDLES[ep]}`);
  ort.env.wasm.wasmPaths = DIST;
  ort.env.wasm.numThreads = threads;
  return { version: ort.env.versions?.web ?? "unknown", threads, ep };
}

// Cold start: the model fetched from the local server, the session created, the first output (as kgen's load()
// fetches its files from the same server); then the model run as timing.js says (session.run: the input copied
// in, the outputs read back). A network the provider cannot run gives {error}: its reason, not a figure.
export async function timeModel(url, feeds, ep, options) {
  const tensors = {};
  for (const [name, { dims, values, dtype }] of Object.entries(feeds)) {
    tensors[name] = dtype === "int64"
      ? new ort.Tensor("int64", BigInt64Array.from(values, (v) => BigInt(v)), dims)
      : new ort.Tensor("float32", Float32Array.from(values), dims);
  }
  const t0 = performance.now();
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: [ep] });
    await session.run(tensors);
  } catch (err) {
    await session?.release().catch(() => {}); // created, but its first run failed
    return { error: String(err?.message ?? err).split("\n")[0].slice(0, 300) };
  }
  const coldMs = performance.now() - t0;
  const timed = await timeRuns(() => session.run(tensors), options);
  const output = Array.from(Object.values(timed.output)[0].data);
  await session.release();
  return { coldMs, medianMs: timed.medianMs, sampleMs: timed.sampleMs, output };
}
