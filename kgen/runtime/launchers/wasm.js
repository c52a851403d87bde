// The WebAssembly launcher: takes a kgen program (one module per kernel, each exporting run(begin, end) over a
// range of its tiles, all importing one linear memory in which every buffer has a fixed offset) and runs it.
// With `program.threads` > 1 the memory is shared and a pool of workers (wasm_worker.js), one per memory, runs
// the other threads' ranges; that needs a cross-origin isolated page (SharedArrayBuffer). The main thread runs range 0
// and then spins until the workers are done (a page's main thread may not Atomics.wait).
import { KernelError } from "./errors.js";
import { Kept } from "./kept.js";

const PAGE = 65536;
const WORKER_TIMEOUT_MS = 10000; // a worker that has not finished its share by then is lost: an error, not a hang
export const MATH = { exp: Math.exp, log: Math.log, tanh: Math.tanh, pow: Math.pow };
// the control block shared with the workers: generation, kernel, the launch's first tile and tile count, error
// flag, then one slot per worker thread t at ack + t - 1 where it stores the generation it has finished.
// Acknowledgements by generation, not a shared done count: a worker that is late or wakes twice cannot make a launch look finished, or unfinished.
export const CTRL = { generation: 0, kernel: 1, first: 2, tiles: 3, failed: 4, ack: 5 };

export function share(thread, threads, tiles) {
  return [Math.floor((thread * tiles) / threads), Math.floor(((thread + 1) * tiles) / threads)];
}

// (module (func (param v128 v128 v128) (result v128) (f32x4.relaxed_madd ...))): validates where relaxed SIMD does
const RELAXED_MADD = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2,
  253, 133, 2, 11,
]);

function decode(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

export class WasmLauncher {
  // `keep`: compiled modules stay for the launcher's lifetime, keyed by their binary (the runtime's page-wide
  // launcher)
  static create({ keep = false } = {}) {
    if (typeof WebAssembly !== "object") throw new Error("WebAssembly is not available in this browser");
    return new WasmLauncher(keep ? new Kept() : null);
  }

  #pools = new Map(); // a shared memory -> the pool of workers of the programs bound over it

  constructor(kept = null) {
    this.kept = kept;
  }

  get maxThreads() {
    return self.crossOriginIsolated ? navigator.hardwareConcurrency : 1;
  }

  get relaxedSimd() {
    return WebAssembly.validate(RELAXED_MADD);
  }

  async compile(program) {
    const threads = program.threads ?? 1;
    if (threads > this.maxThreads) {
      throw new KernelError("runtime_error", `${threads} threads need a cross-origin isolated page with as many cores`);
    }
    // every module compiled at once: the engine compiles them on its background threads, not one after another
    const kept = this.kept ?? new Kept();
    const counts = { compiled: 0, reused: 0 };
    const kernels = await Promise.all(
      program.kernels.map(async (kernel) => {
        const module = await kept.take(kernel.binary, () => WebAssembly.compile(decode(kernel.binary)), counts).catch(
          (err) => {
            throw new KernelError("compile_error", `${kernel.name}: ${err.message}`);
          },
        );
        // `threads` 1 on a kernel of a threaded program: it runs on the page's thread alone (too short to split)
        return { name: kernel.name, tiles: kernel.grid[0], module, alone: kernel.threads === 1 };
      }),
    );
    return { program, threads, kernels, pool: null, counts };
  }

  // One linear memory for the whole program; a buffer is a window of it.
  createBuffers(program) {
    const pages = program.memory_bytes / PAGE;
    const shared = (program.threads ?? 1) > 1;
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    const buffers = {};
    for (const b of program.buffers) buffers[b.name] = { memory, offset: b.offset, size: b.size };
    return buffers;
  }

  write(buffer, array) {
    new Float32Array(buffer.memory.buffer, buffer.offset, buffer.size).set(array);
  }

  // Instances on the main thread, and when threaded the memory's worker pool, with the program's modules added;
  // resolves when the workers have them.
  async bind(compiled, buffers) {
    const memory = Object.values(buffers)[0].memory;
    const imports = { env: { memory }, math: MATH };
    const runs = compiled.kernels.map((k) => new WebAssembly.Instance(k.module, imports).exports.run);
    if (compiled.threads === 1) return { runs, pool: null, index: null };
    if (compiled.pool) throw new Error("kgen: a wasm program is bound once");
    const pool = this.#pools.get(memory) ?? this.#startPool(memory, compiled.threads);
    if (pool.threads !== compiled.threads) {
      throw new KernelError("runtime_error", `a memory's workers run ${pool.threads} threads, not ${compiled.threads}`);
    }
    pool.users++;
    compiled.pool = pool;
    try {
      await this.#add(pool, compiled.kernels.map((k) => k.module));
    } catch (err) {
      this.unbind(compiled);
      throw err;
    }
    const index = compiled.kernels.map((k) => pool.index.get(k.module));
    if (index.includes(undefined)) {
      // another bind's addition of these modules, which this one waited for, failed
      this.unbind(compiled);
      throw new KernelError("runtime_error", "the workers could not instantiate the program's modules");
    }
    return { runs, pool, index };
  }

  // The workers that run the other threads' ranges of every program bound over `memory`: the runner's, the
  // candidates in-page tuning binds, the program a swap makes. One pool per program started workers for each
  // candidate the tuner bound, and their spin after a launch took a core from the next candidate's.
  #startPool(memory, threads) {
    const ctrl = new Int32Array(new SharedArrayBuffer(4 * (CTRL.ack + threads - 1)));
    const workers = [];
    for (let t = 1; t < threads; t++) {
      const worker = new Worker(new URL("./wasm_worker.js", import.meta.url), { type: "module" });
      worker.replies = [];
      const answer = (reply) => worker.replies.shift()?.(reply);
      worker.onmessage = (e) => answer(e.data.ok ? null : new KernelError("runtime_error", e.data.message));
      worker.onerror = (e) => answer(new KernelError("runtime_error", `worker: ${e.message}`));
      workers.push(worker);
    }
    const pool = { memory, ctrl, threads, workers, users: 0, index: new Map(), slots: 0, adding: null };
    this.#pools.set(memory, pool);
    return pool;
  }

  // Give the pool's workers the modules they lack (each keeps them at the index `pool.index` gives: the next of
  // `pool.slots`, since a worker keeps a slot for a module it failed to instantiate), one addition after another.
  // The first comes with the memory and the control block; for a later one the workers leave their wait for
  // launches (a launch of kernel -1) to read it.
  #add(pool, modules) {
    const fresh = [...new Set(modules)].filter((m) => !pool.index.has(m));
    if (fresh.length === 0) return pool.adding;
    for (const m of fresh) pool.index.set(m, pool.slots++);
    const later = pool.adding !== null;
    const added = (pool.adding ?? Promise.resolve()).then(async () => {
      const replies = pool.workers.map((w) => new Promise((resolve) => w.replies.push(resolve)));
      const { memory, ctrl, threads } = pool;
      pool.workers.forEach((w, t) => w.postMessage(later ? { modules: fresh } : { memory, ctrl, thread: t + 1, threads, modules: fresh }));
      if (later) this.#finish(pool, this.#start(pool, -1, 0, 0), "adding modules");
      const failed = (await Promise.all(replies)).find((err) => err);
      if (failed) {
        for (const m of fresh) pool.index.delete(m); // a later bind adds them again, at new indices
        throw failed;
      }
    });
    pool.adding = added.catch(() => {});
    return added;
  }

  // Start launch `kernel` (-1: read the messages) of tiles first .. first + tiles - 1 on the pool's workers; its
  // generation.
  #start(pool, kernel, first, tiles) {
    const ctrl = pool.ctrl;
    Atomics.store(ctrl, CTRL.kernel, kernel);
    Atomics.store(ctrl, CTRL.first, first);
    Atomics.store(ctrl, CTRL.tiles, tiles);
    Atomics.store(ctrl, CTRL.failed, 0);
    const generation = Atomics.add(ctrl, CTRL.generation, 1) + 1;
    Atomics.notify(ctrl, CTRL.generation);
    return generation;
  }

  // Spin until every worker has acknowledged `generation` (a page's main thread may not Atomics.wait).
  #finish(pool, generation, what) {
    const ctrl = pool.ctrl;
    const since = performance.now();
    for (let t = 1, spins = 1; t < pool.threads; spins++) {
      if (Atomics.load(ctrl, CTRL.ack + t - 1) === generation) {
        t++;
      } else if (spins % 4096 === 0 && performance.now() - since > WORKER_TIMEOUT_MS) {
        const acks = Array.from({ length: pool.threads - 1 }, (_, w) => Atomics.load(ctrl, CTRL.ack + w));
        throw new KernelError(
          "runtime_error",
          `${what}: workers did not finish within ${WORKER_TIMEOUT_MS} ms (launch ${generation}, finished ${acks.join(", ")})`,
        );
      }
    }
  }

  // Launch kernels[first..end - 1]: a run launches all of them, a timed sample skips the prepare kernels (they
  // pack weights once per set of inputs), a profile launches one at a time.
  #dispatch(compiled, bound, first = 0, end = compiled.kernels.length) {
    for (let i = first; i < end; i++) this.#launch(compiled, bound, i, 0, compiled.kernels[i].tiles);
  }

  // Tiles begin .. end - 1 of kernels[i], split between the page's thread and the workers.
  #launch(compiled, bound, i, begin, end) {
    const k = compiled.kernels[i];
    const pool = compiled.active === 1 ? null : bound.pool; // `active` 1: every tile on the page's thread
    if (!pool || k.alone) {
      bound.runs[i](begin, end);
      return;
    }
    const generation = this.#start(pool, bound.index[i], begin, end - begin);
    const [from, to] = share(0, compiled.threads, end - begin);
    let trap = null;
    try {
      bound.runs[i](begin + from, begin + to);
    } catch (err) {
      trap = err; // the workers finish their shares before it is thrown: the next launch cannot overlap them
    }
    this.#finish(pool, generation, k.name);
    if (trap) throw trap;
    if (Atomics.load(pool.ctrl, CTRL.failed)) throw new KernelError("runtime_error", `${k.name}: a worker trapped`);
  }

  // Launch kernels[first..end - 1] (a model's later runs skip its prepare kernels; a profile launches one).
  async run(compiled, bound, first = 0, end = compiled.kernels.length) {
    this.#dispatch(compiled, await bound, first, end);
  }

  // The tiles of kernels[i], which runTiles runs in ranges.
  tiles(compiled, i) {
    return compiled.kernels[i].tiles;
  }

  // Tiles begin .. end - 1 of kernels[i], split as a launch splits them (a long kernel run over several tasks,
  // so that none blocks the page).
  runTiles(compiled, bound, i, begin, end) {
    this.#launch(compiled, bound, i, begin, end);
  }

  // One sample: `k` back-to-back runs, timed by the wall clock.
  async sample(compiled, bound, k) {
    const b = await bound;
    const t0 = performance.now();
    for (let i = 0; i < k; i++) this.#dispatch(compiled, b, compiled.program.prepare ?? 0);
    return { gpu: null, wall: (performance.now() - t0) / k };
  }

  // V8 runs a module's code first in its baseline tier and tiers a function up after enough calls and loop
  // iterations, so a model's first run was 4x slower than the next. Calling every kernel after `first` on one
  // tile, round after round, for at most `budgetMs` (or `rounds` rounds), has the optimizing tier compile them
  // before the first real run (ResNet-50's first run: 3x faster for 70 ms of this). The tiles' results are
  // garbage that the real run overwrites; the memory plan keeps every read of them in memory.
  async warmUp(compiled, bound, first = 0, { rounds = 256, budgetMs = 100 } = {}) {
    const { runs } = await bound;
    const start = performance.now();
    for (let r = 0; r < rounds && performance.now() - start < budgetMs; r++) {
      for (let i = first; i < runs.length; i++) runs[i](0, Math.min(1, compiled.kernels[i].tiles));
    }
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the background compiles land
  }

  async read(buffer) {
    return new Float32Array(buffer.memory.buffer, buffer.offset, buffer.size).slice();
  }

  // Leave the memory's pool (a program whose kernels were replaced, or a piece the tuner timed); the last to leave
  // stops its workers.
  unbind(compiled) {
    const pool = compiled.pool;
    compiled.pool = null;
    if (!pool || --pool.users > 0) return;
    this.#pools.delete(pool.memory);
    Atomics.store(pool.ctrl, CTRL.generation, -1);
    Atomics.notify(pool.ctrl, CTRL.generation);
    for (const w of pool.workers) {
      w.terminate();
      for (const reply of w.replies.splice(0)) reply(new KernelError("runtime_error", "the workers were stopped"));
    }
  }

  destroy(compiled) {
    this.unbind(compiled);
  }
}
