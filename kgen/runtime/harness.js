// The measurement harness: runs candidates through the backend launchers, hands their outputs back for
// checking, and times the ones that passed (DESIGN.md, "Measurement protocol"). Python drives it: every call
// starts a job and returns its id at once; Python polls `finished(id)` with its own timeout, so a kernel that
// hangs cannot hang the driver.
import { KernelError, WebGPULauncher } from "./launchers/webgpu.js";

const state = { launcher: null, launcherError: null, inputs: null, candidates: new Map(), jobs: new Map(), next: 1 };

function decode(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

function encode(array) {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function start(work) {
  const id = state.next++;
  const job = { done: false, result: null };
  state.jobs.set(id, job);
  work().then(
    (result) => Object.assign(job, { done: true, result }),
    (err) =>
      Object.assign(job, {
        done: true,
        result: { status: err instanceof KernelError ? err.status : "runtime_error", message: String(err.message || err) },
      }),
  );
  return id;
}

function launcher() {
  if (!state.launcher) throw new KernelError("runtime_error", `WebGPU unavailable: ${state.launcherError}`);
  return state.launcher;
}

const quantile = (sorted, q) => {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
};

// One sample: `k` back-to-back runs in one compute pass, timed by timestamp queries (and by the wall clock).
async function sample(c, k) {
  const L = launcher();
  const device = L.device;
  const encoder = device.createCommandEncoder();
  const passDesc = {};
  let querySet = null;
  let resolve = null;
  let readback = null;
  if (L.hasTimestamps) {
    querySet = device.createQuerySet({ type: "timestamp", count: 2 });
    resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    passDesc.timestampWrites = { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 };
  }
  const pass = encoder.beginComputePass(passDesc);
  L.encodeInto(pass, c.compiled, c.bindGroups, k);
  pass.end();
  if (querySet) {
    encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, readback, 0, 16);
  }
  const t0 = performance.now();
  device.queue.submit([encoder.finish()]);
  let gpu = null;
  if (readback) {
    await readback.mapAsync(GPUMapMode.READ);
    const [begin, end] = new BigUint64Array(readback.getMappedRange());
    gpu = Number(end - begin) / 1e6 / k;
    readback.destroy();
    resolve.destroy();
    querySet.destroy();
  } else {
    await device.queue.onSubmittedWorkDone();
  }
  const wall = (performance.now() - t0) / k;
  if (L.lost) throw new KernelError("device_lost", L.lost);
  return { gpu, wall };
}

window.kgenHarness = {
  ready: false,

  async fingerprint() {
    const fp = {
      userAgent: navigator.userAgent,
      hardwareConcurrency: navigator.hardwareConcurrency,
      crossOriginIsolated: self.crossOriginIsolated,
      webgpu: { available: !!state.launcher, error: state.launcherError },
      webgl2: { available: false },
      wasm: { available: typeof WebAssembly === "object", sharedArrayBuffer: typeof SharedArrayBuffer === "function" },
    };
    if (state.launcher) {
      const a = state.launcher.adapter;
      const info = a.info || {};
      const limits = {};
      for (const k in a.limits) limits[k] = a.limits[k];
      Object.assign(fp.webgpu, {
        vendor: info.vendor,
        architecture: info.architecture,
        device: info.device,
        description: info.description,
        isFallbackAdapter: info.isFallbackAdapter ?? a.isFallbackAdapter ?? null,
        features: [...a.features].sort(),
        limits,
        timestamps: state.launcher.hasTimestamps,
      });
    }
    const gl = new OffscreenCanvas(1, 1).getContext("webgl2");
    if (gl) {
      const dbg = gl.getExtension("WEBGL_debug_renderer_info");
      fp.webgl2 = {
        available: true,
        renderer: gl.getParameter(dbg ? dbg.UNMASKED_RENDERER_WEBGL : gl.RENDERER),
        vendor: gl.getParameter(dbg ? dbg.UNMASKED_VENDOR_WEBGL : gl.VENDOR),
        maxTextureSize: gl.getParameter(gl.MAX_TEXTURE_SIZE),
        colorBufferFloat: !!gl.getExtension("EXT_color_buffer_float"),
      };
    }
    return fp;
  },

  // Inputs are sent once per workload (key) and reused by every candidate.
  setInputs(key, arrays) {
    state.inputs = { key, arrays: arrays.map(decode) };
    return true;
  },

  // Compile, run once, and hand the output back for checking. The candidate stays loaded for timing.
  startRun(candidate) {
    return start(async () => {
      if (!state.inputs || state.inputs.key !== candidate.inputsKey) throw new Error("inputs were not set for this candidate");
      const L = launcher();
      const compiled = await L.compile(candidate.program);
      const buffers = L.createBuffers(candidate.program);
      const inputs = candidate.program.buffers.filter((b) => b.role === "input");
      inputs.forEach((b, i) => L.write(buffers[b.name], state.inputs.arrays[i]));
      const c = { compiled, buffers, bindGroups: L.bind(compiled, buffers) };
      state.candidates.set(candidate.id, c);
      await L.run(c.compiled, c.bindGroups);
      const out = candidate.program.buffers.find((b) => b.role === "output");
      return { status: "ok", output: encode(await L.read(buffers[out.name], out.size)) };
    });
  },

  // Warm up, choose k so a sample lasts >= minSampleMs, then take `samples` samples; report median and IQR.
  // k comes from the fastest of 3 single runs; if the samples still come out shorter (a noisy estimate), k is
  // recomputed from their median and the samples are taken again. A candidate whose single run already exceeds
  // `budgetMs` (a tuner's "far slower than the best so far") is not timed further: one run, flagged estimate.
  startTime(id, { samples = 7, minSampleMs = 1, maxK = 1000, budgetMs = null } = {}) {
    return start(async () => {
      const c = state.candidates.get(id);
      if (!c) throw new Error(`candidate ${id} is not loaded`);
      await sample(c, 1); // warm-up
      const singles = [];
      for (let s = 0; s < 3; s++) {
        const t = await sample(c, 1);
        singles.push(t.gpu ?? t.wall);
        if (budgetMs !== null && singles[0] > budgetMs) {
          return { status: "ok", clock: t.gpu !== null ? "timestamp-query" : "wall", k: 1, samples: 1,
                   medianMs: singles[0], iqrMs: 0, wallMedianMs: t.wall, sampleMs: singles, estimate: true };
        }
      }
      const kFor = (ms) => Math.max(1, Math.min(maxK, Math.ceil(minSampleMs / Math.max(ms, 1e-4))));
      let k = kFor(Math.min(...singles));
      let gpu = [];
      let wall = [];
      for (let round = 0; round < 3; round++) {
        gpu = [];
        wall = [];
        for (let s = 0; s < samples; s++) {
          const t = await sample(c, k);
          if (t.gpu !== null) gpu.push(t.gpu);
          wall.push(t.wall);
        }
        const perRun = quantile((gpu.length ? gpu : wall).slice().sort((a, b) => a - b), 0.5);
        if (perRun * k >= 0.8 * minSampleMs || k >= maxK) break;
        k = kFor(perRun);
      }
      const main = (gpu.length ? gpu : wall).slice().sort((a, b) => a - b);
      const sortedWall = wall.slice().sort((a, b) => a - b);
      return {
        status: "ok",
        clock: gpu.length ? "timestamp-query" : "wall",
        k,
        samples: main.length,
        medianMs: quantile(main, 0.5),
        iqrMs: quantile(main, 0.75) - quantile(main, 0.25),
        wallMedianMs: quantile(sortedWall, 0.5),
        sampleMs: gpu.length ? gpu : wall,
        estimate: false,
      };
    });
  },

  release(id) {
    const c = state.candidates.get(id);
    if (c) Object.values(c.buffers).forEach((b) => b.destroy());
    state.candidates.delete(id);
    return true;
  },

  finished(id) {
    return state.jobs.get(id)?.done === true;
  },

  result(id) {
    const job = state.jobs.get(id);
    state.jobs.delete(id);
    return job ? job.result : { status: "runtime_error", message: `no job ${id}` };
  },
};

WebGPULauncher.create({ timestamps: true })
  .then((l) => {
    state.launcher = l;
  })
  .catch((err) => {
    state.launcherError = String(err.message || err);
  })
  .finally(() => {
    window.kgenHarness.ready = true;
  });
