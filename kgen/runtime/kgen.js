// @ts-check
// kgen's model runtime: `const runner = await kgen.load(dir, {backendOrder})`, then `await runner.run()`.
// The names follow WebDNN's (load, getInputViews/getOutputViews, set/toActual, Image, Math), so a WebDNN page
// ports by changing its import. Each backend runs through the launcher the tuner measured its kernels with.
import { JSLauncher } from "./launchers/js.js";
import { WasmLauncher } from "./launchers/wasm.js";
import { WebGLLauncher } from "./launchers/webgl.js";
import { WebGPULauncher } from "./launchers/webgpu.js";
import { fetchFolderWith, readModel, readProgram } from "./model/descriptor.js";
import { parkedHolds, parkingKey, releaseParked, takeParked } from "./model/parked.js";
import { createRunner, resumeRunner, Runner, TensorView } from "./model/runner.js";
import { ThreadChoice } from "./model/threads.js";
import { startingChoices, Tuner } from "./model/tuning.js";
import { deviceClass, fingerprint } from "./device.js";
import { loadWeights } from "./model/weights.js";
import * as Image from "./image.js";
import * as KMath from "./math.js";

export { Image, KMath as Math, Runner, TensorView };
export const version = "0.1.0";
export const BACKENDS = ["webgpu", "webgl", "wasm", "js"];
const ALIASES = { webassembly: "wasm", fallback: "js" };

/** @type {Record<string, () => Promise<any>>} */
const LAUNCHERS = {
  webgpu: () => WebGPULauncher.create({ keep: true }),
  webgl: async () => WebGLLauncher.create({ keep: true }),
  wasm: async () => WasmLauncher.create({ keep: true }),
  js: async () => JSLauncher.create({ keep: true }),
};

/**
 * One launcher per backend for the whole page, which keeps what it compiles by source: a second load of a model
 * (or of another model with kernels in common) compiles none of them again, and a page holds one WebGL context and
 * one WebGPU device however many models it loads. A launcher that failed to start, or whose device was lost, is
 * made again.
 * @type {Map<string, Promise<any>>}
 */
const launchers = new Map();

/** @param {string} backend */
async function launcherFor(backend) {
  let made = launchers.get(backend);
  if (made) {
    const launcher = await made.catch(() => null);
    if (launcher && !launcher.lost) return launcher;
  }
  made = LAUNCHERS[backend]();
  launchers.set(backend, made);
  made.catch(() => launchers.delete(backend));
  return made;
}

/**
 * The backends to try, in order: `backendOrder` (a name or a list), else every backend; aliases of WebDNN's
 * names (webassembly, fallback) are accepted.
 * @param {string | string[] | undefined} order
 */
function backendList(order) {
  const given = order === undefined ? BACKENDS : Array.isArray(order) ? order : [order];
  return given.map((b) => {
    const name = /** @type {Record<string, string>} */ (ALIASES)[b] ?? b;
    if (!BACKENDS.includes(name)) throw new Error(`kgen.load: unknown backend '${b}' (backends: ${BACKENDS.join(", ")})`);
    return name;
  });
}

/**
 * Why a program variant cannot run on this launcher (null: it can): a wasm variant's threads (or other than the
 * `threads` asked for) and relaxed SIMD, a WebGL variant's render targets.
 * @param {string} backend @param {any} launcher @param {number | undefined} threads
 * @returns {(variant: any) => string | null}
 */
function whyNot(backend, launcher, threads) {
  if (backend === "webgl") {
    return (v) =>
      (v.draw_buffers ?? 1) > launcher.maxDrawBuffers
        ? `${v.draw_buffers} render targets; this device has ${launcher.maxDrawBuffers}`
        : null;
  }
  if (backend !== "wasm") return () => null;
  return (v) => {
    if (threads !== undefined && (v.threads ?? 1) !== threads) return `${v.threads ?? 1} threads, not the ${threads} asked for`;
    if ((v.threads ?? 1) > launcher.maxThreads) {
      return `${v.threads} threads; this page can run ${launcher.maxThreads} (cross-origin isolation and cores)`;
    }
    return v.relaxed_simd && !launcher.relaxedSimd ? "relaxed SIMD, which this browser lacks" : null;
  };
}

/**
 * The `tune` option checked: "off", "cached" (the default) or {budgetMs, sliceMs}.
 * @param {any} tune @returns {"off" | "cached" | {budgetMs: number, sliceMs?: number}}
 */
function tuneMode(tune) {
  if (tune === undefined || tune === "cached" || tune === "off") return tune ?? "cached";
  if (typeof tune === "object" && tune !== null && tune.budgetMs > 0 && (tune.sliceMs === undefined || tune.sliceMs > 0)) return tune;
  throw new Error(`kgen.load: tune must be "off", "cached" or {budgetMs: a positive number}, not ${JSON.stringify(tune)}`);
}

/**
 * How the folder's files are fetched: the page's `fetch` (for models kept in IndexedDB, bundled, or behind
 * authentication), or a map of file name to bytes, or null (the browser's fetch).
 * @param {string} base @param {any} options @returns {((url: string) => Promise<Response>) | null}
 */
function folderFetch(base, options) {
  if (options.fetch !== undefined && options.files !== undefined) throw new Error("kgen.load: give fetch or files, not both");
  if (options.fetch !== undefined) {
    if (typeof options.fetch !== "function") throw new Error("kgen.load: fetch must be a function (url) => Promise<Response>");
    return options.fetch;
  }
  if (options.files === undefined) return null;
  const files = options.files instanceof Map ? Object.fromEntries(options.files) : options.files;
  if (typeof files !== "object" || files === null) throw new Error("kgen.load: files must map file names to bytes");
  return async (url) => {
    const name = url.slice(base.length + 1);
    const bytes = files[name];
    if (bytes === undefined) return new Response(null, { status: 404, statusText: `not in files (${name})` });
    if (!(bytes instanceof ArrayBuffer || ArrayBuffer.isView(bytes) || typeof bytes === "string")) {
      throw new Error(`kgen.load: files["${name}"] must be an ArrayBuffer, a typed array or a string`);
    }
    return new Response(/** @type {BodyInit} */ (bytes));
  };
}

/**
 * A runner of `descriptor` on `backend`, starting from the choices this device made before (or the descriptor's
 * records of its class), and tuning after its first output where `tune` asks; on what a destroyed runner of the
 * same program left, where it is parked.
 * @param {string} base @param {string} backend @param {any} launcher @param {any} descriptor @param {any} model
 * @param {() => Promise<Map<string, Float32Array>>} weights @param {any} options
 */
async function start(base, backend, launcher, descriptor, model, weights, options) {
  const mode = tuneMode(options.tune);
  const device = deviceClass(backend, launcher);
  let choices = null;
  let problem = null;
  if (mode !== "off") {
    // a candidates file that cannot be read leaves the shipped kernels, and says why in runner.tuning.error
    choices = await startingChoices(base, descriptor, device, true).catch((err) => ((problem = err.message), null));
  }
  const key = parkingKey(backend, descriptor, model);
  const parked = takeParked(key, launcher, descriptor.program);
  if (parked) options.progressCallback?.(model.weights.total_bytes, model.weights.total_bytes);
  const runner = parked
    ? resumeRunner(base, backend, launcher, descriptor, model, parked)
    : await createRunner(base, backend, launcher, descriptor, model, weights());
  runner.parkingKey = key;
  // the thread count is the page's choice, measured on its runs, unless the page gave one
  if ((descriptor.program.threads ?? 1) > 1 && options.threads === undefined) runner.threadChoice = new ThreadChoice(descriptor.program.threads);
  runner.tuner = new Tuner(runner, base, device, fingerprint(backend, launcher), choices);
  runner.tuner.state.error = problem;
  if (typeof mode === "object") {
    runner.tuner.defaults = { ...mode, callback: options.tuningCallback };
    runner.afterFirstOutput = (kept) => void kept.then(() => runner.tune());
  }
  return runner;
}

/**
 * Load a converted model folder on the first backend of `backendOrder` that works here.
 * @param {string} dir the folder `kgen convert` wrote (a URL relative to the page, or absolute)
 * @param {{backendOrder?: string | string[], progressCallback?: (loaded: number, total: number) => void,
 *   threads?: number, tune?: "off" | "cached" | {budgetMs: number, sliceMs?: number},
 *   tuningCallback?: (progress: any) => void, fetch?: (url: string) => Promise<Response>,
 *   files?: Record<string, ArrayBuffer | ArrayBufferView | string> | Map<string, ArrayBuffer | ArrayBufferView | string>}} [options]
 * @returns {Promise<Runner>}
 */
export async function load(dir, options = {}) {
  if (typeof dir !== "string" || dir === "") throw new Error("kgen.load: the model folder must be a URL string");
  tuneMode(options.tune);
  if (options.threads !== undefined && !(Number.isSafeInteger(options.threads) && options.threads > 0)) {
    throw new Error(`kgen.load: threads must be a positive integer, not ${JSON.stringify(options.threads)}`);
  }
  const base = dir.replace(/\/+$/, "");
  fetchFolderWith(base, folderFetch(base, options));
  const model = await readModel(base);
  const order = backendList(options.backendOrder).filter((b) => b in model.backends);
  if (order.length === 0) {
    throw new Error(`kgen.load: ${base} has no program for ${backendList(options.backendOrder).join(", ")} (converted: ${Object.keys(model.backends).join(", ")})`);
  }
  /** @type {string[]} */
  const reasons = [];
  releaseParked(model); // what a destroyed runner of another model left goes before this one allocates
  /** @type {Promise<Map<string, Float32Array>> | null} */
  let loading = null;
  const weights = () => {
    if (!loading) {
      loading = loadWeights(base, model, options.progressCallback);
      loading.catch(() => {}); // its failure is reported where it is awaited, not as an unhandled rejection
    }
    return loading;
  };
  // fetched while the backend starts and compiles its kernels (one fetch for every backend tried), unless a
  // destroyed runner left them written
  if (!parkedHolds(model)) weights();
  for (const backend of order) {
    let launcher = null;
    try {
      launcher = await launcherFor(backend);
      const descriptor = await readProgram(base, model, backend, whyNot(backend, launcher, options.threads));
      const runner = await start(base, backend, launcher, descriptor, model, weights, options);
      runner.fallbackReasons = reasons;
      return runner;
    } catch (err) {
      const message = /** @type {Error} */ (err).message;
      // a broken descriptor or weights is no reason to try another backend: the same files serve every one
      if (/^kgen: .*(model\.json|weights\/|\.bin)/.test(message)) throw err;
      reasons.push(`${backend}: ${message}`);
    }
  }
  throw new Error(`kgen.load: no backend could load ${base}: ${reasons.join("; ")}`);
}
