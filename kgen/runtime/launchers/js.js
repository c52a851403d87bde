// The plain-JavaScript launcher, the fallback for browsers with nothing else: each kernel is a function
// (m, begin, end) over its tiles, where m is a Float32Array over the program's memory and every buffer has a
// fixed offset in it (the same memory plan as WebAssembly's).
import { KernelError } from "./errors.js";
import { Kept } from "./kept.js";

export class JSLauncher {
  // `keep`: compiled functions stay for the launcher's lifetime, keyed by source (the runtime's page-wide launcher)
  static create({ keep = false } = {}) {
    return new JSLauncher(keep ? new Kept() : null);
  }

  constructor(kept = null) {
    this.kept = kept;
  }

  async compile(program) {
    const kept = this.kept ?? new Kept();
    const counts = { compiled: 0, reused: 0 };
    const kernels = program.kernels.map((kernel) => {
      try {
        const fn = kept.take(kernel.source, () => new Function(`"use strict";\nreturn (\n${kernel.source}\n);`)(), counts);
        return { name: kernel.name, tiles: kernel.grid[0], fn };
      } catch (err) {
        throw new KernelError("compile_error", `${kernel.name}: ${err.message}`);
      }
    });
    return { program, kernels, counts };
  }

  createBuffers(program) {
    const heap = new Float32Array(program.memory_bytes / 4);
    const buffers = {};
    for (const b of program.buffers) buffers[b.name] = { heap, start: b.offset / 4, size: b.size };
    return buffers;
  }

  write(buffer, array) {
    buffer.heap.set(array, buffer.start);
  }

  bind(compiled, buffers) {
    return Object.values(buffers)[0].heap;
  }

  // Launch kernels[first..end - 1]: a run launches all of them, a timed sample skips the prepare kernels (they
  // pack weights once per set of inputs), a profile launches one at a time.
  #dispatch(compiled, heap, first = 0, end = compiled.kernels.length) {
    const kernels = compiled.kernels;
    for (let i = first; i < end; i++) kernels[i].fn(heap, 0, kernels[i].tiles);
  }

  // Launch kernels[first..end - 1] (a model's later runs skip its prepare kernels; a profile launches one).
  async run(compiled, heap, first = 0, end = compiled.kernels.length) {
    this.#dispatch(compiled, heap, first, end);
  }

  // The tiles of kernels[i], which runTiles runs in ranges.
  tiles(compiled, i) {
    return compiled.kernels[i].tiles;
  }

  // Tiles begin .. end - 1 of kernels[i] (a long kernel run over several tasks, so that none blocks the page).
  runTiles(compiled, heap, i, begin, end) {
    compiled.kernels[i].fn(heap, begin, end);
  }

  // One sample: `k` back-to-back runs, timed by the wall clock.
  async sample(compiled, heap, k) {
    const t0 = performance.now();
    for (let i = 0; i < k; i++) this.#dispatch(compiled, heap, compiled.program.prepare ?? 0);
    return { gpu: null, wall: (performance.now() - t0) / k };
  }

  async read(buffer) {
    return buffer.heap.slice(buffer.start, buffer.start + buffer.size);
  }

  destroy() {}
}
