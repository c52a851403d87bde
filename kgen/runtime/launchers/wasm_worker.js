// A thread of the WebAssembly launcher's pool: instantiates the modules of the programs bound over its shared
// memory as the launcher adds them, then waits on the control block for each launch, runs its share of the
// kernel's tiles and acknowledges that launch.
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

// Launches until a stop (generation -1) or a launch of kernel -1: the launcher has posted modules to add.
function serve(s) {
  const { ctrl, thread, threads } = s;
  for (;;) {
    s.seen = nextLaunch(ctrl, s.seen);
    if (s.seen < 0) return;
    const kernel = Atomics.load(ctrl, CTRL.kernel);
    if (kernel >= 0) {
      const first = Atomics.load(ctrl, CTRL.first);
      const [begin, end] = share(thread, threads, Atomics.load(ctrl, CTRL.tiles));
      try {
        s.runs[kernel](first + begin, first + end);
      } catch {
        Atomics.store(ctrl, CTRL.failed, 1);
      }
    }
    Atomics.store(ctrl, CTRL.ack + thread - 1, s.seen);
    if (kernel < 0) return;
  }
}

let state = null; // the memory, the control block, this thread, the instances' run functions, the last launch seen

// The first message brings the memory and the control block, every message modules to instantiate (kept at the
// indices the launcher gave them; one that fails leaves null there and is reported).
self.onmessage = ({ data }) => {
  if (data.ctrl) {
    const { memory, ctrl, thread, threads } = data;
    state = { memory, ctrl, thread, threads, runs: [], seen: Atomics.load(ctrl, CTRL.generation) }; // before "ready": no launch can start earlier
  }
  const imports = { env: { memory: state.memory }, math: MATH };
  try {
    state.runs.push(...data.modules.map((m) => new WebAssembly.Instance(m, imports).exports.run));
    self.postMessage({ ok: true });
  } catch (err) {
    state.runs.push(...data.modules.map(() => null));
    self.postMessage({ ok: false, message: `worker ${state.thread}: ${err.message}` });
  }
  serve(state);
};
