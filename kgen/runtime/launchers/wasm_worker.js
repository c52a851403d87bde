// A thread of the WebAssembly launcher's pool: instantiates the program's modules on the shared memory, then
// waits on the control block for each launch, runs its share of the kernel's tiles and acknowledges that launch.
// After a launch it spins for SPIN_MS before it sleeps in Atomics.wait: a model's next kernel comes within
// microseconds, and waking a sleeping thread takes tens of them, which on a 0.1 ms kernel is most of the gain of
// a second thread (the main thread ran its share and then waited for the late one).
import { CTRL, MATH, share } from "./wasm.js";

const SPIN_MS = 0.5;

function nextLaunch(ctrl, seen) {
  const since = performance.now();
  for (let spins = 1; ; spins++) {
    const generation = Atomics.load(ctrl, CTRL.generation);
    if (generation !== seen) return generation;
    if (spins % 64 === 0 && performance.now() - since > SPIN_MS) {
      Atomics.wait(ctrl, CTRL.generation, seen);
      return Atomics.load(ctrl, CTRL.generation);
    }
  }
}

self.onmessage = ({ data: { modules, memory, ctrl, thread, threads } }) => {
  let runs;
  try {
    runs = modules.map((m) => new WebAssembly.Instance(m, { env: { memory }, math: MATH }).exports.run);
  } catch (err) {
    self.postMessage({ ok: false, message: `worker ${thread}: ${err.message}` });
    return;
  }
  let seen = Atomics.load(ctrl, CTRL.generation); // before "ready": no launch can start earlier
  self.postMessage({ ok: true });
  for (;;) {
    seen = nextLaunch(ctrl, seen);
    if (seen < 0) return;
    const first = Atomics.load(ctrl, CTRL.first);
    const [begin, end] = share(thread, threads, Atomics.load(ctrl, CTRL.tiles));
    try {
      runs[Atomics.load(ctrl, CTRL.kernel)](first + begin, first + end);
    } catch {
      Atomics.store(ctrl, CTRL.failed, 1);
    }
    Atomics.store(ctrl, CTRL.ack + thread - 1, seen);
  }
};
