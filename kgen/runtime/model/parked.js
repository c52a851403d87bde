// @ts-check
// A destroyed runner's program, kept for the page's next load of the same model: its buffers (on wasm, the memory
// with the weights written and packed), its bound kernels and workers. A page that destroys a model and loads it
// again (a component mounted again, a switch back to a backend) then reads model.json and its program file, and
// runs: MobileNet-v2 on wasm took 0.4x its cold start to load again without this (the weights read again from
// the Cache API and written, the workers started, the packing kernels run on fresh memory). What is parked is
// released by the next load of anything else, before it allocates, and after KEEP_MS in any case.

const KEEP_MS = 5000;

/** @type {{key: string, launcher: any, state: any, timer: any} | null} */
let parked = null;

/** The model's weights: its shards' digests. @param {any} model @returns {string[]} */
function shardDigests(model) {
  return model.weights.shards.map((/** @type {any} */ s) => s.sha256);
}

/** What a program's takeover must match: the backend, its file and the weights. @param {string} backend
 * @param {any} descriptor @param {any} model */
export function parkingKey(backend, descriptor, model) {
  return [backend, descriptor.variant?.sha256, ...shardDigests(model)].join(" ");
}

/** Whether what is parked holds `model`'s weights (its load need not fetch them). @param {any} model */
export function parkedHolds(model) {
  return parked !== null && parked.key.endsWith(` ${shardDigests(model).join(" ")}`);
}

/** Release what is parked, unless it holds `model`'s weights. @param {any} [model] */
export function releaseParked(model) {
  if (!parked || (model && parkedHolds(model))) return;
  const { launcher, state, timer } = parked;
  parked = null;
  clearTimeout(timer);
  launcher.destroy(state.compiled, state.buffers);
  state.single?.then((/** @type {any} */ s) => s && launcher.unbind?.(s.compiled));
}

/**
 * Keep a destroyed runner's state ({compiled, buffers, bound, gathers, single}) for a takeover, in place of what
 * was parked before.
 * @param {string} key @param {any} launcher @param {any} state
 */
export function park(key, launcher, state) {
  releaseParked();
  parked = { key, launcher, state, timer: setTimeout(() => releaseParked(), KEEP_MS) };
}

/** @param {any} a @param {any} b */
function sameKernels(a, b) {
  return (
    a.prepare === b.prepare &&
    a.kernels.length === b.kernels.length &&
    a.kernels.every((/** @type {any} */ k, /** @type {number} */ i) => {
      const o = b.kernels[i];
      return k.name === o.name && k.binary === o.binary && k.source === o.source && k.threads === o.threads;
    })
  );
}

/**
 * The parked state of this program on this launcher, taken (null where what is parked is something else, which is
 * then released).
 * @param {string} key @param {any} launcher @param {any} program
 */
export function takeParked(key, launcher, program) {
  if (!parked) return null;
  const { state } = parked;
  if (parked.key !== key || parked.launcher !== launcher || !sameKernels(state.compiled.program, program)) {
    releaseParked();
    return null;
  }
  clearTimeout(parked.timer);
  parked = null;
  return state;
}
