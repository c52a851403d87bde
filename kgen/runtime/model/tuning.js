// @ts-check
// Tuning on the visitor's device. `kgen convert --candidates K` ships, beside a program, other configs of each
// node's kernels, with their prepare kernels and storage (<variant>.candidates.json). Here the page
// - uses, from the first run, the candidates that are records of its own device class, and the choices it made
//   on an earlier visit (kept per program and device class in the Cache API; a changed program is a new key);
// - with `tune: {budgetMs}`, tries the others after its first output, in idle time and in tasks of at most about
//   a slice each: the nodes that take most of a run first; each candidate's output checked against the current
//   kernel's on the same input (a wrong one is dropped and reported), then both timed in interleaved rounds; a
//   faster one swapped in between runs. What it measured exports as tuning records (`kgen records import`).
import { checkKernels, fail, readEntry } from "./descriptor.js";
import { iqr, median } from "./stats.js";

/** @typedef {{option: number, piece: any, ms: number[], checkMs: number}} Side a node's current kernels (option
 * -1) or a candidate, compiled and bound, with its timed samples and the time of its check run */

const STORE = "kgen-tuning-v1";
const ROUNDS = 5; // interleaved timing rounds per node
const GAIN = 0.97; // a candidate replaces the current kernel only where its median is at most this share of it
const CHECK_TIMEOUT_MS = 2000; // a candidate whose check run takes longer is abandoned
const BATCH = 4; // nodes checked in one pass through the model, then timed (SwiftShader compiles a WGSL candidate in up to 1 s)

/**
 * The candidates file of a program (`descriptor.variant.candidates`), checked against the program: each node's
 * kernels lie among its run kernels, its output buffer exists, each option has kernels (and a list of prepare
 * kernels) that bind only existing buffers.
 * @param {string} dir @param {any} descriptor
 */
export async function readCandidates(dir, descriptor) {
  const entry = descriptor.variant?.candidates;
  const { doc, file } = await readEntry(dir, entry, "a variant's candidates");
  const p = descriptor.program;
  const buffers = new Map(p.buffers.map((/** @type {any} */ b) => [b.name, b]));
  const tolerance = doc.tolerance;
  if (!Array.isArray(doc.nodes) || !Array.isArray(tolerance) || tolerance.length !== 2 || !tolerance.every((t) => t >= 0)) {
    throw fail(file, "must list nodes and a tolerance [rtol, atol]");
  }
  for (const n of doc.nodes) {
    const inside = Number.isSafeInteger(n?.first) && n.first >= p.prepare && n.end > n.first && n.end <= p.kernels.length;
    const out = buffers.get(n?.output);
    if (!inside || !out || !(Number.isSafeInteger(n.output_size) && n.output_size > 0 && n.output_size <= out.size)) {
      throw fail(file, `node ${JSON.stringify(n?.name)}: its kernels or its output do not lie in the program`);
    }
    if (!Array.isArray(n.options)) throw fail(file, `node ${n.name}: options must be a list`);
    n.options.forEach((/** @type {any} */ o, /** @type {number} */ i) => {
      o.prepare ??= [];
      if (!Array.isArray(o?.kernels) || o.kernels.length === 0 || !Array.isArray(o.prepare)) {
        throw fail(file, `node ${n.name}: option ${i} must list its kernels (and its prepare kernels)`);
      }
      checkKernels([...o.prepare, ...o.kernels], buffers, descriptor.backend, `${file}: node ${n.name}, option ${i}`);
    });
  }
  return doc;
}

/** Where the choices of a program on a device class are kept. @param {any} descriptor @param {string} device */
function storeKey(descriptor, device) {
  const v = descriptor.variant;
  return new URL(`/.kgen-tuning/${v.sha256}/${v.candidates?.sha256}/${encodeURIComponent(device)}`, location.href).href;
}

/** The kept choices ({node index: option index}), or null. @param {string} key */
async function loadChoices(key) {
  try {
    const cache = await caches.open(STORE);
    const hit = await cache.match(key);
    return hit ? await hit.json() : null;
  } catch {
    return null; // no Cache API here (an insecure origin): every visit starts from the shipped choice
  }
}

/** @param {string} key @param {Record<string, number>} choices */
async function saveChoices(key, choices) {
  try {
    const cache = await caches.open(STORE);
    await cache.put(key, new Response(JSON.stringify(choices), { headers: { "content-type": "application/json" } }));
  } catch {
    // as in loadChoices: nothing kept
  }
}

/**
 * The program with each node's chosen option in place of its shipped kernels: the shipped prepare kernels, then
 * the chosen options' (they fill storage of their own once), then the run kernels; and where each node's run
 * kernels now lie.
 * @param {{kernels: any[], prepare: number}} base the shipped program @param {any} doc
 * @param {Record<string, number>} choices
 * @returns {{kernels: any[], prepare: number, ranges: Map<number, {first: number, end: number}>}}
 */
export function compose(base, doc, choices) {
  const prepare = base.kernels.slice(0, base.prepare);
  const run = [];
  /** @type {Map<number, {first: number, end: number}>} */
  const spans = new Map();
  let at = base.prepare;
  for (const n of [...doc.nodes].sort((a, b) => a.first - b.first)) {
    run.push(...base.kernels.slice(at, n.first));
    const option = n.options[choices[n.node]];
    const first = run.length;
    if (option) prepare.push(...option.prepare);
    run.push(...(option ? option.kernels : base.kernels.slice(n.first, n.end)));
    spans.set(n.node, { first, end: run.length });
    at = n.end;
  }
  run.push(...base.kernels.slice(at));
  const ranges = new Map([...spans].map(([k, r]) => [k, { first: r.first + prepare.length, end: r.end + prepare.length }]));
  return { kernels: [...prepare, ...run], prepare: prepare.length, ranges };
}

/** The idle period the page last granted (requestIdleCallback), or null. @type {IdleDeadline | null} */
let granted = null;

/** A task boundary: what the page queued meanwhile (input, rendering) runs first. */
function nextTask() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve(undefined);
    channel.port2.postMessage(null);
  });
}

/**
 * Wait for a new task in which the page is idle: the rest of the idle period last granted where it has time left
 * (one idle callback a period of up to 50 ms left a tuning step per 50 ms, ten times slower), else the next one.
 */
async function idle() {
  if (typeof requestIdleCallback !== "function") return new Promise((resolve) => setTimeout(resolve, 0));
  if (granted && granted.timeRemaining() > 1) {
    await nextTask();
    if (granted.timeRemaining() > 1) return;
  }
  await new Promise((resolve) =>
    requestIdleCallback(
      (deadline) => {
        granted = deadline;
        resolve(undefined);
      },
      { timeout: 100 },
    ),
  );
}

/** @template T @param {Promise<T>} promise @param {number} ms @param {string} what @returns {Promise<T>} */
function within(promise, ms, what) {
  /** @type {any} */
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, late]).finally(() => clearTimeout(timer)));
}

/**
 * The output a candidate must match: the current kernels' `values`, and the error allowed at each element ([rtol,
 * atol], rtol of the largest finite magnitude of `values`).
 * @param {Float32Array} values @param {number[]} tolerance
 */
function reference(values, tolerance) {
  let scale = 0;
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) scale = Math.max(scale, Math.abs(values[i]));
  return { values, allowed: tolerance[1] + tolerance[0] * scale };
}

/**
 * Whether `got` matches the reference; a NaN must be a NaN in both. One indexed pass: a MobileNet output of 1.2M
 * values took 15-20 ms to compare, after a check task of up to half a slice.
 * @param {Float32Array} got @param {{values: Float32Array, allowed: number}} want
 */
function agrees(got, { values, allowed }) {
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i]) ? !Number.isNaN(got[i]) : !(Math.abs(got[i] - values[i]) <= allowed)) return false;
  }
  return true;
}

/**
 * The choices a load starts with: those kept from an earlier visit, else for each node the option that is a
 * record of this device class (where the descriptor has one). Null where there is nothing to apply.
 * @param {string} dir @param {any} descriptor @param {string} device @param {boolean} cached
 * @returns {Promise<{doc: any, choices: Record<string, number>, base: {kernels: any[], prepare: number}} | null>}
 */
export async function startingChoices(dir, descriptor, device, cached) {
  const entry = descriptor.variant?.candidates;
  if (!entry) return null;
  const kept = cached ? await loadChoices(storeKey(descriptor, device)) : null;
  if (!kept && !(entry.devices ?? []).includes(device)) return null;
  const doc = await readCandidates(dir, descriptor);
  /** @type {Record<string, number>} */
  const choices = {};
  for (const n of doc.nodes) {
    const ours = n.options.findIndex((/** @type {any} */ o) => o.device === device);
    if (kept && n.node in kept) choices[n.node] = kept[n.node];
    else if (ours >= 0) choices[n.node] = ours;
  }
  const base = { kernels: descriptor.program.kernels, prepare: descriptor.program.prepare };
  const composed = compose(base, doc, choices);
  descriptor.program.kernels = composed.kernels;
  descriptor.program.prepare = composed.prepare;
  return { doc, choices, base };
}

/**
 * A runner's tuning: its state (`runner.tuning`), the measurements, and the search itself.
 */
export class Tuner {
  /**
   * @param {any} runner @param {string} dir @param {string} device the page's device class
   * @param {Record<string, any>} fingerprint
   * @param {{doc: any, choices: Record<string, number>, base: {kernels: any[], prepare: number}} | null} start
   */
  constructor(runner, dir, device, fingerprint, start) {
    this.runner = runner;
    this.dir = dir;
    this.device = device;
    this.fingerprint = fingerprint;
    this.doc = start?.doc ?? null;
    /** the program as shipped, before any choice @type {{kernels: any[], prepare: number}} */
    this.base = start?.base ?? { kernels: runner.descriptor.program.kernels, prepare: runner.descriptor.program.prepare };
    /** node index -> option index (absent: the shipped kernel) @type {Record<string, number>} */
    this.choices = { ...(start?.choices ?? {}) };
    /** @type {any[]} */
    this.records = [];
    /** @type {Promise<any> | null} */
    this.running = null;
    /** What tune() does without options: the load's `tune` and `tuningCallback`.
     * @type {{budgetMs?: number, sliceMs?: number, callback?: (progress: any) => void}} */
    this.defaults = {};
    this.state = {
      state: "idle",
      deviceClass: device,
      kernels: 0,
      kernelsDone: 0,
      tried: 0,
      swapped: 0,
      /** @type {{node: string, option: number, why: string}[]} */
      rejected: [],
      spentMs: 0,
      /** when it started (performance.now()), or null @type {number | null} */
      startedAt: null,
      /** the longest of its tasks (wall time, GPU waits included) and what it did */
      longestTask: { ms: 0, what: "" },
      speedup: 1,
      /** @type {string | null} */
      error: null,
      fromStart: Object.keys(this.choices).length,
    };
  }

  /** A copy of the state, for `runner.tuning` and the callback. */
  get progress() {
    return { ...this.state, rejected: [...this.state.rejected], longestTask: { ...this.state.longestTask } };
  }

  /**
   * Tune for at most `budgetMs` of the page's time, in tasks of about `sliceMs` at most (without options, as the
   * load's `tune` option said); resolves to the final progress. A second call while one runs returns the same
   * promise.
   * @param {{budgetMs?: number, sliceMs?: number, callback?: (progress: any) => void}} options
   */
  tune(options = {}) {
    const { budgetMs = 10000, sliceMs = 50, callback } = { ...this.defaults, ...options };
    if (!(budgetMs > 0) || !(sliceMs > 0)) throw new Error(`kgen: tune(): budgetMs and sliceMs must be positive (${budgetMs}, ${sliceMs})`);
    if (this.running) return this.running;
    this.running = this.#search(budgetMs, sliceMs, callback).catch((err) => {
      this.state.state = "failed";
      this.state.error = /** @type {Error} */ (err).message;
      return this.progress;
    });
    return this.running;
  }

  /** @param {number} budgetMs @param {number} sliceMs @param {((progress: any) => void) | undefined} callback */
  async #search(budgetMs, sliceMs, callback) {
    const r = this.runner;
    if (!r.descriptor.variant?.candidates) throw new Error(`kgen: ${r.variant} has no candidates (convert with --candidates K)`);
    this.state.state = "tuning";
    this.state.startedAt = performance.now();
    this.doc ??= await readCandidates(this.dir, r.descriptor);
    let ranges = compose(this.base, this.doc, this.choices).ranges;
    const span = (/** @type {any} */ n) => /** @type {{first: number, end: number}} */ (ranges.get(n.node));
    if (!r.prepared) await r.run();
    const budget = { left: budgetMs, sliceMs };
    const times = await this.#kernelTimes(budget);
    const total = times.reduce((a, b) => a + b, 0);
    const cost = (/** @type {any} */ n) => times.slice(span(n).first, span(n).end).reduce((a, b) => a + b, 0);
    // the costliest first, every node while the budget lasts: MobileNet-v2's three depthwise convs on 7x7 took
    // 0.13 ms against their records' 0.04 (0.5% of its untuned run each) when the last 3% of a run was left
    /** @type {any[]} */
    const worth = this.doc.nodes.filter((/** @type {any} */ n) => !(n.node in this.choices));
    worth.sort((/** @type {any} */ a, /** @type {any} */ b) => cost(b) - cost(a));
    this.state.kernels = worth.length;
    // in batches of the costliest nodes: each batch checked in one pass through the model, in run order (each
    // node's inputs as the kernels before it left them), then timed, the costliest first
    let saved = 0;
    for (let b = 0; b < worth.length && budget.left > 0; b += BATCH) {
      const batch = worth.slice(b, b + BATCH);
      /** @type {Map<any, Side[]>} */
      const checked = new Map();
      const at = { kernel: r.descriptor.program.prepare, runs: r.runs };
      try {
        const costs = new Map(batch.map((n) => [n, cost(n)])); // the times of the program before this batch's swaps
        for (const n of [...batch].sort((x, y) => span(x).first - span(y).first)) {
          if (budget.left <= 0) break;
          checked.set(n, await this.#check(n, span(n), budget, cost(n), at));
        }
        for (const n of batch) {
          const sides = checked.get(n);
          if (!sides || budget.left <= 0) continue;
          saved += await this.#time(n, sides, budget, /** @type {number} */ (costs.get(n)));
          ranges = compose(this.base, this.doc, this.choices).ranges;
          this.state.kernelsDone++;
          this.state.speedup = total > 0 ? total / Math.max(total - saved, 1e-9) : 1;
          callback?.(this.progress);
        }
      } finally {
        for (const sides of checked.values()) for (const side of sides) r.launcher.unbind?.(side.piece.compiled);
      }
    }
    await saveChoices(storeKey(r.descriptor, this.device), this.choices);
    this.state.state = this.state.kernelsDone < worth.length ? "budget spent" : "done";
    callback?.(this.progress);
    return this.progress;
  }

  /**
   * `fn` in a task of its own once the page is idle, its time taken from the budget; the longest is reported.
   * @template T @param {{left: number}} budget @param {string} what @param {() => Promise<T> | T} fn
   * @returns {Promise<T>}
   */
  async #task(budget, what, fn) {
    await idle();
    if (this.runner.destroyed) throw new Error("the runner was destroyed");
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      const ms = performance.now() - t0;
      budget.left -= ms;
      this.state.spentMs += ms;
      if (ms > this.state.longestTask.ms) this.state.longestTask = { ms, what };
    }
  }

  /** Each run kernel's time alone (median of 3 rounds). @param {{left: number, sliceMs: number}} budget */
  async #kernelTimes(budget) {
    const r = this.runner;
    const kernels = r.descriptor.program.kernels;
    /** @type {number[][]} */
    const samples = kernels.map(() => []);
    // three rounds, or fewer where one takes a tenth of the budget (ResNet-50 on SwiftShader: 11 s a run)
    const start = budget.left;
    for (let round = 0; round < 3 && (round === 0 || start - budget.left < 0.1 * start); round++) {
      for (let i = r.descriptor.program.prepare; i < kernels.length && budget.left > 0; i++) {
        samples[i].push(await r.exclusive(() => this.#launch(budget, "time the kernels", r.compiled, r.bound, i, i + 1)));
      }
    }
    return samples.map((s) => (s.length ? median(s) : 0));
  }

  /**
   * Run kernels [first, end) of a bound program in tasks of about half a slice at most; the time they took (the
   * sum of their launches, not the waits between tasks). A long kernel whose launcher runs ranges of its tiles
   * (wasm, each range split between its threads as a launch is; js) runs a range at a time, sized from the time
   * its first tile took: ResNet-50's template-default convs ran up to 246 ms in one task.
   * @param {{left: number, sliceMs: number}} budget @param {string} what @param {any} compiled @param {any} bound
   * @param {number} [first] @param {number} [end]
   */
  async #launch(budget, what, compiled, bound, first = 0, end = compiled.kernels.length) {
    const launcher = this.runner.launcher;
    const half = budget.sliceMs / 2;
    let ms = 0;
    let i = first;
    let tile = 0;
    let perTile = 0; // ms a tile of kernel i took so far (0: not run yet)
    while (i < end) {
      await this.#task(budget, what, async () => {
        const start = performance.now();
        for (let ran = false; i < end; ran = true) {
          const tiles = launcher.tiles?.(compiled, i) ?? 0;
          const t0 = performance.now();
          const left = half - (t0 - start);
          if (ran && (left <= 0 || (tiles > 0 && perTile > left))) break; // the rest in the next task
          if (tiles === 0) {
            await launcher.run(compiled, bound, i, i + 1);
            i++;
          } else {
            const count = perTile > 0 ? Math.max(1, Math.floor(left / perTile)) : 1;
            const to = Math.min(tiles, tile + count);
            launcher.runTiles(compiled, bound, i, tile, to);
            perTile = (performance.now() - t0) / (to - tile);
            tile = to;
            if (tile >= tiles) [i, tile, perTile] = [i + 1, 0, 0];
          }
          ms += performance.now() - t0;
        }
      });
    }
    return ms;
  }

  /**
   * A program of `kernels` alone over the runner's buffers, compiled and bound.
   * @param {any[]} kernels
   */
  async #piece(kernels) {
    const r = this.runner;
    const compiled = await r.launcher.compile({ ...r.descriptor.program, kernels, prepare: 0 });
    const bound = await r.launcher.bind(compiled, r.buffers);
    return { compiled, bound };
  }

  /** Run a candidate's prepare kernels (packed weights, a padded image's border) over the runner's buffers.
   * @param {{left: number, sliceMs: number}} budget @param {any} option */
  async #prepare(budget, option) {
    const piece = await this.#task(budget, "compile", () => this.#piece(option.prepare));
    try {
      await this.#launch(budget, "prepare", piece.compiled, piece.bound);
    } finally {
      this.runner.launcher.unbind?.(piece.compiled);
    }
  }

  /**
   * Node `n`'s options that compute what its current kernels compute, each compiled and bound, after the current
   * kernels (option -1). The kernels before the node run first where `at` (the kernel the model's state has
   * reached, and the runner's run count then) is not there: a run of the page's in between started it over.
   * After the check the current kernels run again, so the next node's inputs are as a run leaves them.
   * @param {any} n @param {{first: number, end: number}} span where its kernels lie in the program now
   * @param {{left: number, sliceMs: number}} budget @param {number} currentMs @param {{kernel: number, runs: number}} at
   */
  async #check(n, { first, end }, budget, currentMs, at) {
    const r = this.runner;
    const launcher = r.launcher;
    const current = await this.#task(budget, "compile", () => this.#piece(r.descriptor.program.kernels.slice(first, end)));
    /** @type {Side[]} */
    const sides = [{ option: -1, piece: current, ms: [], checkMs: currentMs }];
    const reject = (/** @type {number} */ option, /** @type {string} */ why) => this.state.rejected.push({ node: n.name, option, why });
    await r.exclusive(async () => {
      if (at.runs !== r.runs || at.kernel > first) at.kernel = r.descriptor.program.prepare;
      if (at.kernel < first) await this.#launch(budget, "run the kernels before", r.compiled, r.bound, at.kernel, first);
      at.kernel = first;
      sides[0].checkMs = await this.#launch(budget, "reference", current.compiled, current.bound);
      // read and compared in tasks of their own: with the check run's last range in its task, one was 56 ms
      const output = async () => (await launcher.read(r.buffers[n.output], { size: n.output_size })).subarray(0, n.output_size);
      const want = await this.#task(budget, "read", async () => reference(await output(), this.doc.tolerance));
      for (let o = 0; o < n.options.length && budget.left > 0; o++) {
        this.state.tried++;
        try {
          const option = n.options[o];
          const piece = await this.#task(budget, "compile", () => this.#piece(option.kernels));
          if (option.prepare.length) await this.#prepare(budget, option);
          // the output starts as NaN: a candidate that leaves part of it unwritten cannot pass on the old values
          launcher.write(r.buffers[n.output], new Float32Array(n.output_size).fill(NaN));
          const ms = await within(this.#launch(budget, "check", piece.compiled, piece.bound), CHECK_TIMEOUT_MS, "its check run");
          if (!(await this.#task(budget, "compare", async () => agrees(await output(), want)))) {
            launcher.unbind?.(piece.compiled);
            reject(o, "its output differs from the current kernel's");
          } else if (ms > Math.max(4 * currentMs, budget.sliceMs)) {
            launcher.unbind?.(piece.compiled); // far slower: not worth timing
          } else {
            sides.push({ option: o, piece, ms: [], checkMs: ms });
          }
        } catch (err) {
          reject(o, /** @type {Error} */ (err).message);
        }
      }
      await this.#launch(budget, "reference", current.compiled, current.bound);
      at.kernel = end;
      at.runs = r.runs;
    });
    return sides;
  }

  /**
   * Time node `n`'s current kernels and its checked options in interleaved rounds; swap in the fastest where it
   * beats the current kernels. The time a run saves (ms).
   * @param {any} n @param {Side[]} sides @param {{left: number, sliceMs: number}} budget
   * @param {number} currentMs
   */
  async #time(n, sides, budget, currentMs) {
    const r = this.runner;
    if (sides.length === 1) return 0;
    const short = Math.min(budget.sliceMs / 4, 8); // a side that runs this long or less is sampled in one task
    for (let round = 0; round < ROUNDS && budget.left > 0; round++) {
      for (const side of sides) {
        const { compiled, bound } = side.piece;
        if (side.checkMs > short) {
          side.ms.push(await r.exclusive(() => this.#launch(budget, "time", compiled, bound)));
          continue;
        }
        const repeat = Math.max(1, Math.min(50, Math.floor(short / Math.max(side.checkMs, 0.01))));
        const s = await this.#task(budget, "time", () => r.exclusive(() => r.launcher.sample(compiled, bound, repeat)));
        side.ms.push(s.gpu ?? s.wall);
      }
    }
    const timed = sides.filter((s) => s.ms.length > 0);
    for (const side of timed) this.#record(n, side.option, side.ms);
    const best = timed.reduce((a, b) => (median(b.ms) < median(a.ms) ? b : a), timed[0]);
    const base = median(sides[0].ms);
    if (!best || best.option < 0 || !(median(best.ms) < GAIN * base)) return 0;
    const option = n.options[best.option];
    const choices = { ...this.choices, [n.node]: best.option };
    const { kernels, prepare } = compose(this.base, this.doc, choices);
    await r.exclusive(async () => {
      // its storage of its own (shared with the node's other candidates) filled for it, then the program swapped
      if (option.prepare.length) await this.#prepare(budget, option);
      await this.#task(budget, "swap in", () => r.setKernels(kernels, prepare));
    });
    this.choices = choices;
    this.state.swapped++;
    return (base - median(best.ms)) * (currentMs / base);
  }

  /** A measurement of node `n` with option `option` (-1: its shipped config), as a tuning record. @param {any} n @param {number} option @param {number[]} ms */
  #record(n, option, ms) {
    const o = n.options[option];
    const m = median(ms);
    this.records.push({
      workload: n.workload,
      key: n.key,
      backend: this.runner.backendName,
      device_class: this.device,
      config: o ? o.config : n.config,
      median_ms: m,
      iqr_ms: iqr(ms),
      samples: ms.length,
      gflops: n.flops / m / 1e6,
      digest: o ? o.digest : "",
      fingerprint: this.fingerprint,
      source: "kgen.load tune",
      time: new Date().toISOString().replace(/\.\d+Z$/, "+00:00"),
    });
  }

  /** What the page measured, as JSON lines that `kgen records import` takes. */
  exportTuning() {
    return this.records.map((rec) => JSON.stringify(rec)).join("\n") + (this.records.length ? "\n" : "");
  }
}
