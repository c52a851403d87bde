// Compiled kernels kept by their source: a WebGL program, a WebGPU pipeline, a WebAssembly module or a JS
// function is made once per source. The runtime keeps them for the page's lifetime, so a second load of a model
// compiles nothing again; within one program, kernels of one source (a model's repeated blocks) share one.
export class Kept {
  constructor() {
    /** @type {Map<string, any>} */
    this.entries = new Map();
  }

  // `make()`'s value for `key`, made the first time only (a promise is kept as it is; one that rejects is
  // dropped, as is a value whose making threw). `counts.compiled` or `counts.reused` goes up by one.
  take(key, make, counts) {
    if (this.entries.has(key)) {
      counts.reused++;
      return this.entries.get(key);
    }
    const value = make();
    counts.compiled++;
    this.entries.set(key, value);
    if (value instanceof Promise) value.catch(() => this.entries.delete(key));
    return value;
  }
}
