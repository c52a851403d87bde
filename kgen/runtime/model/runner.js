// @ts-check
// A loaded model on one backend: its program compiled by that backend's launcher (the same launcher the tuner
// measured every kernel with), the weights written once, tensors kept on the device between kernels. A run
// writes the inputs, launches every kernel (the prepare kernels on the first run only: they pack weights and
// fill padding borders) and reads the outputs back.
import { elements, fail } from "./descriptor.js";
import { keepFetched } from "./weights.js";

/** A tensor the page sets (an input) or reads (an output), as WebDNN's views: set(array), toActual(). */
export class TensorView {
  /** @param {string} name @param {number[]} shape @param {string} kind */
  constructor(name, shape, kind) {
    this.name = name;
    this.shape = shape;
    this.kind = kind;
    this.length = elements(shape);
    /** @type {Float32Array} */
    this.data = new Float32Array(this.length);
  }

  /**
   * Copy values in (row-major, this tensor's shape): a Float32Array, a Float64Array or an array of numbers.
   * @param {ArrayLike<number>} array @param {number} [offset]
   */
  set(array, offset = 0) {
    const ok = array instanceof Float32Array || array instanceof Float64Array || Array.isArray(array);
    if (!ok) {
      const kind = array === null ? "null" : array?.constructor?.name ?? typeof array;
      throw new Error(`kgen: ${this.kind} '${this.name}' takes float32 values (a Float32Array or an array of numbers), not ${kind}`);
    }
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + array.length > this.length) {
      throw new Error(
        `kgen: ${this.kind} '${this.name}' holds ${this.length} values (shape [${this.shape}]); ${array.length} at offset ${offset} do not fit`,
      );
    }
    if (Array.isArray(array) && array.some((v) => typeof v !== "number")) {
      throw new Error(`kgen: ${this.kind} '${this.name}': every value must be a number`);
    }
    this.data.set(array, offset);
  }

  /** The values (after a run, for an output). */
  toActual() {
    return this.data;
  }
}

export class Runner {
  /**
   * @param {string} backendName @param {any} launcher @param {any} descriptor @param {any} compiled
   * @param {Record<string, any>} buffers @param {any} bound @param {any} model
   */
  constructor(backendName, launcher, descriptor, compiled, buffers, bound, model) {
    this.backendName = backendName;
    this.launcher = launcher;
    this.descriptor = descriptor;
    this.compiled = compiled;
    this.buffers = buffers;
    this.bound = bound;
    this.prepared = false;
    this.running = false;
    /** @type {TensorView[]} */
    this.inputs = model.inputs.map((/** @type {any} */ t) => new TensorView(t.name, t.shape, "input"));
    /** @type {TensorView[]} */
    this.outputs = model.outputs.map((/** @type {any} */ t) => new TensorView(t.name, t.shape, "output"));
    /** Why each backend tried before this one did not load. @type {string[]} */
    this.fallbackReasons = [];
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
   * @param {Record<string, ArrayLike<number>>} [feeds]
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
    this.running = true;
    try {
      const d = this.descriptor;
      d.inputs.forEach((/** @type {any} */ t, /** @type {number} */ i) => this.launcher.write(this.buffers[t.buffer], this.inputs[i].data));
      const first = !this.prepared;
      await this.launcher.run(this.compiled, this.bound, first ? 0 : d.program.prepare);
      this.prepared = true;
      for (let i = 0; i < d.outputs.length; i++) {
        const t = d.outputs[i];
        const values = await this.launcher.read(this.buffers[t.buffer], { size: this.outputs[i].length });
        this.outputs[i].data.set(values.subarray(0, this.outputs[i].length));
      }
      if (first) keepFetched(); // the weights go into the cache once the page has its first output
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
    const kernels = this.descriptor.program.kernels;
    const first = this.descriptor.program.prepare ?? 0;
    /** @type {number[][]} */
    const times = kernels.map(() => []);
    this.running = true;
    try {
      for (let r = 0; r < runs; r++) {
        for (let i = first; i < kernels.length; i++) {
          const t0 = performance.now();
          await this.launcher.run(this.compiled, this.bound, i, i + 1);
          times[i].push(performance.now() - t0);
        }
      }
    } catch (err) {
      throw new Error(`kgen: ${this.backendName}: profile failed: ${/** @type {Error} */ (err).message}`);
    } finally {
      this.running = false;
    }
    const median = (/** @type {number[]} */ t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)];
    return kernels.slice(first).map((/** @type {any} */ k, /** @type {number} */ j) => ({ kernel: k.name, ms: median(times[first + j]) }));
  }

  /** Release the backend's buffers and workers. */
  destroy() {
    this.launcher.destroy(this.compiled, this.buffers);
  }
}

/**
 * Build a runner: compile (while the weights may still be arriving), create the planned buffers, write the
 * weights, bind.
 * @param {string} backend @param {any} launcher @param {any} descriptor @param {any} model
 * @param {Promise<Map<string, Float32Array>>} weightsLoaded
 */
export async function createRunner(backend, launcher, descriptor, model, weightsLoaded) {
  const program = descriptor.program;
  const compiled = await launcher.compile(program);
  const buffers = launcher.createBuffers(program);
  const weights = await weightsLoaded;
  for (const w of descriptor.weights) {
    const values = weights.get(w.tensor);
    if (!values) throw fail(backend, `weight ${w.tensor} was not decoded`);
    launcher.write(buffers[w.buffer], values);
  }
  const bound = await launcher.bind(compiled, buffers);
  if (launcher.warmUp) await launcher.warmUp(compiled, bound, program.prepare);
  return new Runner(backend, launcher, descriptor, compiled, buffers, bound, model);
}
