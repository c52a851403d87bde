// The measurement harness: runs candidates through the backend launchers, hands their outputs back for
// checking, and times the ones that passed (DESIGN.md, "Measurement protocol"). Python drives it: every call
// starts a job and returns its id at once; Python polls `finished(id)` with its own timeout, so a kernel that
// hangs cannot hang the driver.
import { KernelError } from "./launchers/errors.js";
import { JSLauncher } from "./launchers/js.js";
import { WasmLauncher } from "./launchers/wasm.js";
import { WebGLLauncher } from "./launchers/webgl.js";
import { WebGPULauncher } from "./launchers/webgpu.js";

// A launcher per backend, created at load; one that cannot be created leaves its error instead.
const state = { launchers: {}, errors: {}, inputs: null, candidates: new Map(), jobs: new Map(), next: 1 };

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

// The work starts in a later task, so the call that starts it returns at once even when the work blocks the
// page (WebGL compiles and reads back synchronously): Python's timeout then still applies.
// Why the GPU is gone, if it is: a lost WebGPU device, a lost WebGL context (Chromium's GPU process killed or
// crashed), or an error that says so before the device's `lost` promise has resolved.
const LOST = /instance dropped|device (is |was )?lost|context lost/i;
function lostDevice(message) {
  const gpu = state.launchers.webgpu;
  if (gpu && gpu.lost) return `WebGPU device lost (${gpu.lost})`;
  const gl = state.launchers.webgl;
  if (gl && gl.gl.isContextLost()) return "WebGL context lost";
  return LOST.test(message) ? message : null;
}

function start(work) {
  const id = state.next++;
  const job = { done: false, result: null };
  state.jobs.set(id, job);
  new Promise((resolve) => setTimeout(resolve, 0)).then(work).then(
    (result) => Object.assign(job, { done: true, result }),
    (err) => {
      const message = String(err.message || err);
      const lost = lostDevice(message);
      const status = lost ? "device_lost" : err instanceof KernelError ? err.status : "runtime_error";
      Object.assign(job, { done: true, result: { status, message: lost ? `${lost}: ${message}` : message } });
    },
  );
  return id;
}

function launcher(backend) {
  const L = state.launchers[backend];
  if (!L) throw new KernelError("runtime_error", `${backend} unavailable: ${state.errors[backend] ?? "no launcher"}`);
  return L;
}

const quantile = (sorted, q) => {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
};

window.kgenHarness = {
  ready: false,

  async fingerprint() {
    const fp = {
      userAgent: navigator.userAgent,
      hardwareConcurrency: navigator.hardwareConcurrency,
      crossOriginIsolated: self.crossOriginIsolated,
      webgpu: { available: !!state.launchers.webgpu, error: state.errors.webgpu },
      webgl2: { available: false },
      wasm: {
        available: !!state.launchers.wasm,
        error: state.errors.wasm,
        sharedArrayBuffer: typeof SharedArrayBuffer === "function",
        maxThreads: state.launchers.wasm?.maxThreads ?? 1,
        relaxedSimd: state.launchers.wasm?.relaxedSimd ?? false,
      },
    };
    if (state.launchers.webgpu) {
      const a = state.launchers.webgpu.adapter;
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
        timestamps: state.launchers.webgpu.hasTimestamps,
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
        maxDrawBuffers: Math.min(gl.getParameter(gl.MAX_DRAW_BUFFERS), gl.getParameter(gl.MAX_COLOR_ATTACHMENTS)),
        colorBufferFloat: !!gl.getExtension("EXT_color_buffer_float"),
        launcher: !!state.launchers.webgl,
        error: state.errors.webgl,
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
      const L = launcher(candidate.program.backend);
      const compiled = await L.compile(candidate.program);
      const buffers = L.createBuffers(candidate.program);
      const inputs = candidate.program.buffers.filter((b) => b.role === "input");
      inputs.forEach((b, i) => L.write(buffers[b.name], state.inputs.arrays[i]));
      const c = { L, compiled, buffers, bound: L.bind(compiled, buffers) };
      state.candidates.set(candidate.id, c);
      await L.run(c.compiled, c.bound);
      const out = candidate.program.buffers.find((b) => b.role === "output");
      return { status: "ok", output: encode(await L.read(buffers[out.name], out)) };
    });
  },

  // Warm up (one run, or for warmupMs), choose k so a sample lasts >= minSampleMs, then take `samples` samples; report median and IQR.
  // k comes from the fastest of 3 single runs; if the samples still come out shorter (a noisy estimate), k is
  // recomputed from their median and the samples are taken again. A candidate slower than `budgetMs` (a tuner's
  // "far slower than the best so far") is not timed further: flagged estimate. Single runs of a threaded wasm
  // kernel each pay a sleeping worker's wake-up (up to 3.5 ms on a VM, for a 0.05 ms kernel), which wrote good
  // 2-thread candidates off: a candidate whose fastest single run is over budget gets back-to-back runs, in
  // doubling batches (each pays the wake-up once), until a batch comes in under budget or the batches have taken
  // 4 samples' time.
  startTime(id, { samples = 7, minSampleMs = 1, maxK = 1000, budgetMs = null, warmupMs = 0 } = {}) {
    return start(async () => {
      const c = state.candidates.get(id);
      if (!c) throw new Error(`candidate ${id} is not loaded`);
      const warm = performance.now();
      // warm-up: one run for the tuner; a benchmark's warmupMs, and at least 3 runs (as the peers get)
      for (let n = 0; n < (warmupMs > 0 ? 3 : 1) || performance.now() - warm < warmupMs; n++) {
        await c.L.sample(c.compiled, c.bound, 1);
      }
      const singles = [];
      const singleWalls = [];
      let clock = "wall";
      for (let s = 0; s < 3; s++) {
        const t = await c.L.sample(c.compiled, c.bound, 1);
        singles.push(t.gpu ?? t.wall);
        singleWalls.push(t.wall);
        if (t.gpu !== null) clock = "timestamp-query";
      }
      if (budgetMs !== null && Math.min(...singles) > budgetMs) {
        let perRun = Math.min(...singles);
        let wallPerRun = Math.min(...singleWalls);
        for (let batch = 2, spent = 0; perRun > budgetMs && spent < 4 * minSampleMs; batch *= 2) {
          const t = await c.L.sample(c.compiled, c.bound, batch);
          perRun = Math.min(perRun, t.gpu ?? t.wall);
          wallPerRun = Math.min(wallPerRun, t.wall);
          spent += t.wall * batch;
          singles.push(t.gpu ?? t.wall);
        }
        if (perRun > budgetMs) {
          return { status: "ok", clock, k: 1, samples: singles.length, medianMs: perRun, iqrMs: 0,
                   wallMedianMs: wallPerRun, sampleMs: singles, estimate: true };
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
          const t = await c.L.sample(c.compiled, c.bound, k);
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
    if (c) c.L.destroy(c.compiled, c.buffers);
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

async function createLaunchers() {
  const makers = {
    webgpu: () => WebGPULauncher.create({ timestamps: true }),
    webgl: () => WebGLLauncher.create(),
    wasm: () => WasmLauncher.create(),
    js: () => JSLauncher.create(),
  };
  for (const [backend, make] of Object.entries(makers)) {
    try {
      state.launchers[backend] = await make();
    } catch (err) {
      state.errors[backend] = String(err.message || err);
    }
  }
  window.kgenHarness.ready = true;
}

createLaunchers();
