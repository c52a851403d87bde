// ONNX Runtime Web's wasm backend in the harness page, for benchmarks: served from bench/peers/node_modules
// (installed by `make peers`), nothing fetched from elsewhere. The thread count is read once per page.
let ort = null;

export async function setup(threads) {
  ort = await import("./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs");
  ort.env.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;
  ort.env.wasm.numThreads = threads;
  return { version: ort.env.versions?.web ?? "unknown", threads, crossOriginIsolated: self.crossOriginIsolated };
}

function decode(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  const m = (s.length - 1) / 2;
  return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2;
};

// One op run = session.run(feeds): the input copied in, the op, the output read back (as the peer table).
// Warm up for `warmupMs`, then `samples` samples of k back-to-back runs, each sample >= minSampleMs.
export async function time(modelB64, inputs, { samples = 15, minSampleMs = 5, warmupMs = 300 } = {}) {
  const session = await ort.InferenceSession.create(decode(modelB64), { executionProviders: ["wasm"] });
  const feeds = {};
  for (const { name, dims, b64 } of inputs) {
    feeds[name] = new ort.Tensor("float32", new Float32Array(decode(b64).buffer), dims);
  }
  let output = null;
  const t0 = performance.now();
  let runs = 0;
  while (performance.now() - t0 < warmupMs || runs < 3) {
    output = await session.run(feeds);
    runs++;
  }
  const single = (performance.now() - t0) / runs;
  const k = Math.max(1, Math.ceil(minSampleMs / single));
  const perRun = [];
  for (let s = 0; s < samples; s++) {
    const start = performance.now();
    for (let i = 0; i < k; i++) output = await session.run(feeds);
    perRun.push((performance.now() - start) / k);
  }
  const first = Object.values(output)[0];
  const result = { medianMs: median(perRun), samples, k, sampleMs: perRun, output: Array.from(first.data.slice(0, 8)) };
  await session.release();
  return result;
}
