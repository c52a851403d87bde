// A thread of the WebAssembly launcher's pool: instantiates the program's modules on the shared memory, then
// waits on the control block for each launch, runs its share of the kernel's tiles and acknowledges that launch.
import { CTRL, MATH, share } from "./wasm.js";

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
    Atomics.wait(ctrl, CTRL.generation, seen);
    seen = Atomics.load(ctrl, CTRL.generation);
    if (seen < 0) return;
    const [begin, end] = share(thread, threads, Atomics.load(ctrl, CTRL.tiles));
    try {
      runs[Atomics.load(ctrl, CTRL.kernel)](begin, end);
    } catch {
      Atomics.store(ctrl, CTRL.failed, 1);
    }
    Atomics.store(ctrl, CTRL.ack + thread - 1, seen);
  }
};
