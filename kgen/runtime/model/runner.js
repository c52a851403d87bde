// @ts-check
// A loaded model on one backend: its program compiled by that backend's launcher (the same launcher the tuner
// measured every kernel with), the weights written once, tensors kept on the device between kernels. A run
// writes the inputs, launches every kernel (the prepare kernels on the first run only: they pack weights and
// fill padding borders) and reads the outputs back.
import { checkKernels, elements, fail, kindOf, readEntry } from "./descriptor.js";
import { median } from "./stats.js";
import { park } from "./parked.js";
import { keepFetched } from "./weights.js";

const EXACT = 2 ** 24; // the largest integer a float32 holds exactly: kernels carry integers in float32
const INT32 = 2 ** 31;
const FLOATS = [Float32Array, Float64Array];
const INTEGERS = [Int32Array, BigInt64Array, Int16Array, Int8Array, Uint8Array, Uint16Array, Uint32Array];

/**
 * A tensor the page sets (an input) or reads (an output), as WebDNN's views: set(array), toActual(). An int32 or
 * bool tensor takes and gives integers; inside, every tensor is float32.
 */
export class TensorView {
  /** @param {string} name @param {number[]} shape @param {string} kind @param {string} [dtype] */
  constructor(name, shape, kind, dtype = "float32") {
    this.name = name;
    this.shape = shape;
    this.kind = kind;
    this.dtype = dtype;
    this.length = elements(shape);
    /** @type {Float32Array} */
    this.data = new Float32Array(this.length);
  }

  /**
   * Copy values in (row-major, this tensor's shape). float32: a Float32Array, a Float64Array or an array of
   * numbers. int32 (int64 in the model: token ids, masks): an Int32Array, a BigInt64Array, another integer typed
   * array or an array of integers (numbers or bigints, or booleans as 0 and 1), each within ±2^24. bool: an array of
   * booleans, or integers 0 and 1.
   * @param {ArrayLike<number> | ArrayLike<bigint> | ArrayLike<boolean>} array @param {number} [offset]
   */
  set(array, offset = 0) {
    const float = this.dtype === "float32";
    const typed = float ? FLOATS : INTEGERS;
    if (!(Array.isArray(array) || typed.some((T) => array instanceof T))) {
      const takes = float ? "float32 values (a Float32Array or an array of numbers)" : `${this.dtype} values (an Int32Array, a BigInt64Array or an array of integers)`;
      throw new Error(`kgen: ${this.kind} '${this.name}' takes ${takes}, not ${kindOf(array)}`);
    }
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + array.length > this.length) {
      throw new Error(
        `kgen: ${this.kind} '${this.name}' holds ${this.length} values (shape [${this.shape}]); ${array.length} at offset ${offset} do not fit`,
      );
    }
    if (float) {
      if (Array.isArray(array) && array.some((v) => typeof v !== "number")) {
        throw new Error(`kgen: ${this.kind} '${this.name}': every value must be a number`);
      }
      this.data.set(/** @type {ArrayLike<number>} */ (array), offset);
      return;
    }
    const values = new Float32Array(array.length);
    for (let i = 0; i < array.length; i++) values[i] = this.integer(array[i], i + offset);
    this.data.set(values, offset);
  }

  /** One value of an int32 or bool tensor, checked. @param {any} v @param {number} at */
  integer(v, at) {
    const where = `kgen: ${this.kind} '${this.name}': value ${v} at [${at}]`;
    if (v === true || v === false) return v ? 1 : 0; // a mask given as booleans
    if (this.dtype === "bool") {
      if (v === 0 || v === 1 || v === 0n || v === 1n) return Number(v);
      throw new Error(`${where} is not a boolean (true, false, 0 or 1)`);
    }
    if (typeof v === "bigint") {
      if (v >= BigInt(INT32) || v < -BigInt(INT32)) throw new Error(`${where} is beyond int32`);
      v = Number(v);
    }
    if (typeof v !== "number" || !Number.isInteger(v)) throw new Error(`${where} is not an integer`);
    if (Math.abs(v) >= INT32) throw new Error(`${where} is beyond int32`);
    if (Math.abs(v) > EXACT) throw new Error(`${where} is beyond 2^24, the largest integer kgen carries exactly`);
    return v;
  }

  /** The values (after a run, for an output); an int32 or bool output's are whole numbers (true is 1). */
  toActual() {
    return this.data;
  }
}

/**
 * Rows of a weight picked by an int32 input, gathered on the host when a run starts: every id is checked against
 * the table's rows (negative ones count from the end), so no kernel ever reads outside it.
 */
class HostGather {
  /** @param {any} entry @param {any} table the weight's entry in model.json @param {Float32Array} values */
  constructor(entry, table, values) {
    this.output = entry.output;
    this.indices = entry.indices;
    this.table = table.name;
    this.rows = table.shape[0];
    this.row = elements(table.shape.slice(1));
    this.values = values;
    this.data = new Float32Array(elements(entry.shape));
  }

  /** @param {TensorView} ids */
  gather(ids) {
    for (let i = 0; i < ids.length; i++) {
      let id = ids.data[i];
      if (id < -this.rows || id >= this.rows) {
        throw new Error(`kgen: input '${ids.name}': id ${id} at [${i}] is not a row of ${this.table}, which has ${this.rows}`);
      }
      if (id < 0) id += this.rows;
      this.data.set(this.values.subarray(id * this.row, (id + 1) * this.row), i * this.row);
    }
    return this.data;
  }
}

export class Runner {
  /**
   * @param {string} dir @param {string} backendName @param {any} launcher @param {any} descriptor
   * @param {any} compiled @param {Record<string, any>} buffers @param {any} bound @param {any} model
   * @param {HostGather[]} gathers
   */
  constructor(dir, backendName, launcher, descriptor, compiled, buffers, bound, model, gathers) {
    this.dir = dir;
    this.backendName = backendName;
    this.launcher = launcher;
    this.descriptor = descriptor;
    this.compiled = compiled;
    this.buffers = buffers;
    this.bound = bound;
    this.prepared = false;
    this.running = false;
    /** @type {TensorView[]} */
    this.inputs = model.inputs.map((/** @type {any} */ t) => new TensorView(t.name, t.shape, "input", t.dtype));
    /** @type {TensorView[]} */
    this.outputs = model.outputs.map((/** @type {any} */ t) => new TensorView(t.name, t.shape, "output", t.dtype));
    /** @type {HostGather[]} */
    this.gathers = gathers;
    /** Why each backend tried before this one did not load. @type {string[]} */
    this.fallbackReasons = [];
    /** The program file that loaded, without .json (e.g. wasm-2t). */
    this.variant = String(descriptor.variant?.file ?? backendName).replace(/\.json$/, "");
    /** A threaded wasm program's thread count, chosen on the page's runs (null: fixed). @type {import("./threads.js").ThreadChoice | null} */
    this.threadChoice = null;
    /** What a run on one thread runs, once made (`alone`). @type {Promise<{compiled: any, bound: any, prepare: number} | null> | null} */
    this.single = null;
    /** Why the program's kernels on one thread could not be made (runs on one thread then run the threaded
     * program's kernels alone). @type {string | null} */
    this.singleProblem = null;
    /** @type {import("./tuning.js").Tuner | null} */
    this.tuner = null;
    /** Called once the first run has its output, with the caching of the weights under way (a load's `tune`
     * starts once they are kept). @type {((kept: Promise<void>) => void) | null} */
    this.afterFirstOutput = null;
    this.destroyed = false;
    /** Runs so far (tuning starts its pass through the model over where a run came in between). */
    this.runs = 0;
    /** The end of the last operation that launches kernels (runs, profiles, tuning steps): each waits for it. */
    this.queue = Promise.resolve();
    /** Operations queued or under way. */
    this.pending = 0;
    /** What a load of the same program must match to take this runner's state over once it is destroyed
     * (parked.js; null: it is released). @type {string | null} */
    this.parkingKey = null;
  }

  /**
   * `fn` once every launch before it is done, and before any after it: a run and the tuning's steps do not
   * interleave their kernels over the same buffers.
   * @template T @param {() => Promise<T>} fn @returns {Promise<T>}
   */
  exclusive(fn) {
    this.pending++;
    const done = this.queue.then(fn);
    this.queue = done.then(
      () => void this.pending--,
      () => void this.pending--,
    );
    return done;
  }

  /**
   * Run `kernels` from the next run on, the first `prepare` of them the program's prepare kernels (compiled and
   * bound first; the buffers stay, and so does what the prepare kernels filled: a new one has been run already).
   * @param {any[]} kernels @param {number} prepare
   */
  async setKernels(kernels, prepare) {
    const program = { ...this.descriptor.program, kernels, prepare };
    const compiled = await this.launcher.compile(program);
    const bound = await this.launcher.bind(compiled, this.buffers);
    compiled.active = this.compiled.active; // the thread count chosen (wasm) holds for the new program too
    this.launcher.unbind?.(this.compiled);
    this.descriptor.program = program;
    this.compiled = compiled;
    this.bound = bound;
    this.single = null; // made again from the new kernels where a run needs it
  }

  /**
   * What a run on one thread of a threaded program runs: the program with each node of `<variant>.single.json`
   * (its config tuned on one thread: the DCGAN generator's threaded kernels, run alone, took 1.3x the time) in place of the node's
   * kernels, their own packed weights prepared once. Made when a run first needs it; null where the variant has
   * none or it could not be made (`singleProblem` says why).
   */
  alone() {
    this.single ??= singleProgram(this).catch((err) => {
      this.singleProblem = /** @type {Error} */ (err).message;
      return null;
    });
    return this.single;
  }

  /** The threads a run uses (wasm; 1 elsewhere): the program's, or where the runner chooses, its choice. */
  get threads() {
    return this.threadChoice ? this.threadChoice.chosen : (this.descriptor.program.threads ?? 1);
  }

  /** The device class this runner's backend runs on, as tuning records name it (e.g. google-swiftshader). */
  get deviceClass() {
    return this.tuner?.device ?? null;
  }

  /** Where tuning on this device stands (null where the program has no candidates and nothing was tuned). */
  get tuning() {
    return this.tuner?.progress ?? null;
  }

  /**
   * Try the program's candidate kernels on this device for at most `budgetMs` of the page's time, in idle time
   * and in tasks of about `sliceMs` at most; faster ones are swapped in between runs and kept for the next visit.
   * @param {{budgetMs?: number, sliceMs?: number, callback?: (progress: any) => void}} [options]
   */
  tune(options = {}) {
    if (!this.tuner) throw new Error(`kgen: ${this.variant} cannot be tuned here`);
    return this.tuner.tune(options);
  }

  /** What tuning measured on this device, as JSON lines that `kgen records import` takes. */
  exportTuning() {
    return this.tuner?.exportTuning() ?? "";
  }

  /** What the load compiled, and what it took from programs this page had compiled before. */
  get compileCounts() {
    return { ...this.compiled.counts };
  }

  getInputViews() {
    return this.inputs;
  }

  getOutputViews() {
    return this.outputs;
  }

  /**
   * Run the model. With `feeds` ({input name: values}) those are set first and the outputs are returned by
   * name; without, the input views' values are used and the output views filled.
   * @param {Record<string, ArrayLike<number> | ArrayLike<bigint> | ArrayLike<boolean>>} [feeds]
   * @returns {Promise<Record<string, Float32Array>>}
   */
  async run(feeds) {
    if (this.running) throw new Error("kgen: run() called while a run of this runner is in progress");
    if (feeds !== undefined) {
      if (typeof feeds !== "object" || feeds === null) throw new Error("kgen: run(feeds) takes an object {inputName: values}");
      const names = this.inputs.map((v) => v.name);
      for (const name of Object.keys(feeds)) {
        if (!names.includes(name)) throw new Error(`kgen: run(): no input named '${name}' (inputs: ${names.join(", ")})`);
      }
      for (const view of this.inputs) {
        if (!(view.name in feeds)) throw new Error(`kgen: run(): input '${view.name}' is not given`);
        if (feeds[view.name].length !== view.length) {
          throw new Error(`kgen: run(): input '${view.name}' needs ${view.length} values (shape [${view.shape}]), got ${feeds[view.name].length}`);
        }
        view.set(feeds[view.name]);
      }
    }
    /** @type {Map<string, Float32Array>} */
    const sources = new Map(this.inputs.map((v) => [v.name, v.data]));
    for (const g of this.gathers) {
      sources.set(g.output, g.gather(/** @type {TensorView} */ (this.inputs.find((v) => v.name === g.indices))));
    }
    this.running = true;
    try {
      const d = this.descriptor;
      const first = !this.prepared;
      await this.exclusive(async () => {
        const choice = this.prepared ? this.threadChoice : null; // the first run, with its prepare kernels, is no sample
        const threads = choice?.next();
        this.compiled.active = threads;
        const single = threads === 1 ? await this.alone() : null; // made (and warmed up) before the inputs are written
        for (const t of d.inputs) this.launcher.write(this.buffers[t.buffer], sources.get(t.name));
        const t0 = performance.now();
        if (single) await this.launcher.run(single.compiled, single.bound, single.prepare);
        else await this.launcher.run(this.compiled, this.bound, this.prepared ? d.program.prepare : 0);
        if (choice && threads) choice.observe(threads, performance.now() - t0);
        this.compiled.active = this.threads;
        this.prepared = true;
        this.runs++;
        for (let i = 0; i < d.outputs.length; i++) {
          const t = d.outputs[i];
          const values = await this.launcher.read(this.buffers[t.buffer], { size: this.outputs[i].length });
          this.outputs[i].data.set(values.subarray(0, this.outputs[i].length));
        }
      });
      if (first) {
        const kept = keepFetched(); // the weights go into the cache once the page has its first output
        this.afterFirstOutput?.(kept);
        // the kernels on one thread are made before the runs the thread count is chosen on: the engine's
        // background compiles of them, beside the comparison's 2-thread runs, made 1 thread look faster
        if (this.threadChoice && this.descriptor.variant?.single) void this.exclusive(() => this.alone());
      }
    } catch (err) {
      const e = /** @type {Error} */ (err);
      throw new Error(`kgen: ${this.backendName}: run failed: ${e.message}`);
    } finally {
      this.running = false;
    }
    return Object.fromEntries(this.outputs.map((v) => [v.name, v.data]));
  }

  /**
   * Time every kernel of a run on its own: `runs` rounds, in each every kernel (the prepare kernels excepted)
   * launched alone and waited for. The medians, in launch order; their sum exceeds a run's time by the waits.
   * @param {{runs?: number}} [options]
   * @returns {Promise<{kernel: string, ms: number}[]>}
   */
  async profile({ runs = 10 } = {}) {
    if (!Number.isSafeInteger(runs) || runs < 1) throw new Error(`kgen: profile(): runs must be a positive integer, not ${runs}`);
    if (!this.prepared) await this.run();
    if (this.running) throw new Error("kgen: profile() called while a run of this runner is in progress");
    // what a run runs: on one thread of a threaded program, its kernels on one thread where it has them
    const single = this.threadChoice && this.threads === 1 ? await this.alone() : null;
    const { compiled, bound } = single ?? this;
    const kernels = single ? single.compiled.program.kernels : this.descriptor.program.kernels;
    const first = single ? single.prepare : (this.descriptor.program.prepare ?? 0);
    /** @type {number[][]} */
    const times = kernels.map(() => []);
    this.running = true;
    try {
      await this.exclusive(async () => {
        for (let r = 0; r < runs; r++) {
          for (let i = first; i < kernels.length; i++) {
            const t0 = performance.now();
            await this.launcher.run(compiled, bound, i, i + 1);
            times[i].push(performance.now() - t0);
          }
        }
      });
    } catch (err) {
      throw new Error(`kgen: ${this.backendName}: profile failed: ${/** @type {Error} */ (err).message}`);
    } finally {
      this.running = false;
    }
    return kernels.slice(first).map((/** @type {any} */ k, /** @type {number} */ j) => ({ kernel: k.name, ms: median(times[first + j]) }));
  }

  /** Release the backend's buffers and workers (tuning stops at its next step); an idle runner's are kept for the
   * page's next load of the same model, and released by a load of anything else or after a few seconds. */
  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    const { compiled, buffers, bound, gathers, single } = this;
    if (this.parkingKey && this.prepared && this.pending === 0) park(this.parkingKey, this.launcher, { compiled, buffers, bound, gathers, single });
    else this.launcher.destroy(compiled, buffers);
  }
}

/**
 * Build a runner: compile (while the weights may still be arriving), create the planned buffers, write the
 * weights, bind.
 * @param {string} dir the model's folder @param {string} backend @param {any} launcher @param {any} descriptor @param {any} model
 * @param {Promise<Map<string, Float32Array>>} weightsLoaded
 */
export async function createRunner(dir, backend, launcher, descriptor, model, weightsLoaded) {
  const program = descriptor.program;
  const compiled = await launcher.compile(program);
  const buffers = launcher.createBuffers(program);
  const weights = await weightsLoaded;
  for (const w of descriptor.weights) {
    const values = weights.get(w.tensor);
    if (!values) throw fail(backend, `weight ${w.tensor} was not decoded`);
    // the entry's shape of values from its offset: the whole tensor, or a block of it (a WebGL texture holds at
    // most so many values; the first block too is shorter than the tensor)
    const offset = w.offset ?? 0;
    launcher.write(buffers[w.buffer], values.subarray(offset, offset + elements(w.shape)));
  }
  const bound = await launcher.bind(compiled, buffers);
  if (launcher.warmUp) await launcher.warmUp(compiled, bound, program.prepare);
  const tables = new Map(model.weights.tensors.map((/** @type {any} */ t) => [t.name, t]));
  const gathers = model.gathers.map((/** @type {any} */ g) => {
    const values = weights.get(g.table);
    if (!values) throw fail(backend, `weight ${g.table} was not decoded`);
    return new HostGather(g, tables.get(g.table), values);
  });
  return new Runner(dir, backend, launcher, descriptor, compiled, buffers, bound, model, gathers);
}

/**
 * A runner on the state a destroyed runner of the same program left (parked.js): its buffers hold the weights,
 * prepared, and its kernels are bound.
 * @param {string} dir @param {string} backend @param {any} launcher @param {any} descriptor @param {any} model
 * @param {any} state
 */
export function resumeRunner(dir, backend, launcher, descriptor, model, state) {
  const { compiled, buffers, bound, gathers, single } = state;
  compiled.counts = { compiled: 0, reused: compiled.kernels.length };
  compiled.active = undefined;
  const runner = new Runner(dir, backend, launcher, descriptor, compiled, buffers, bound, model, gathers);
  runner.prepared = true;
  runner.single = single;
  return runner;
}

/**
 * A threaded program's kernels on one thread: each node of the variant's `single` file in place of the run kernels
 * named after it (`n<k>_`), its prepare kernels run once here; compiled, bound and warmed up. Null where the
 * variant has no such file.
 * @param {Runner} runner
 */
async function singleProgram(runner) {
  const entry = runner.descriptor.variant?.single;
  if (!entry) return null;
  const { doc, file } = await readEntry(runner.dir, entry, "a variant's kernels on one thread");
  const p = runner.descriptor.program;
  if (!Array.isArray(doc.nodes)) throw fail(file, "must list nodes");
  const buffers = new Map(p.buffers.map((/** @type {any} */ b) => [b.name, b]));
  /** @type {any[]} */
  const prepare = [];
  let run = p.kernels.slice(p.prepare);
  for (const n of doc.nodes) {
    const ok = Number.isSafeInteger(n?.node) && Array.isArray(n.prepare) && Array.isArray(n.kernels) && n.kernels.length > 0;
    if (!ok) throw fail(file, `node ${JSON.stringify(n?.name)} must name its node and list its kernels`);
    checkKernels([...n.prepare, ...n.kernels], buffers, runner.backendName, `${file}: node ${n.name}`);
    const ours = (/** @type {any} */ k) => k.name.startsWith(`n${n.node}_`);
    const first = run.findIndex(ours);
    if (first < 0) throw fail(file, `node ${n.name}: the program has no kernels of node ${n.node}`);
    const after = run.slice(first).findIndex((/** @type {any} */ k) => !ours(k));
    run = [...run.slice(0, first), ...n.kernels, ...(after < 0 ? [] : run.slice(first + after))];
    prepare.push(...n.prepare);
  }
  const program = { ...p, threads: 1, kernels: [...prepare, ...run], prepare: prepare.length };
  const { launcher } = runner;
  const compiled = await launcher.compile(program);
  const bound = await launcher.bind(compiled, runner.buffers);
  await launcher.run(compiled, bound, 0, prepare.length);
  if (launcher.warmUp) await launcher.warmUp(compiled, bound, prepare.length);
  return { compiled, bound, prepare: prepare.length };
}
