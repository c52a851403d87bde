// @ts-check
// A fleet worker: this page pulls candidates from `kgen fleet serve`, checks each one's output against the
// reference the server sent, times the ones that pass with the local tuner's harness and launchers, and posts
// the output with the timing (the server checks it again). It runs no code but the kernels the server built.
import "../kgen/harness.js";

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** @param {string} text */
const show = (text) => {
  const el = document.getElementById("status");
  if (el) el.textContent = text;
};

/** The harness the module above installed (typed loosely: it is not type-checked itself). */
const harness = () => /** @type {any} */ (window).kgenHarness;

/**
 * @param {string} name
 * @param {object} body
 */
async function post(name, body) {
  const response = await fetch(new URL(`../api/${name}`, location.href), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`kgen fleet: ${name}: ${data.error || `HTTP ${response.status}`}`);
  return data;
}

/**
 * A harness job to its end (the harness starts it in a later task and reports it done).
 * @param {string} method
 * @param {...any} args
 */
async function call(method, ...args) {
  const H = harness();
  const id = H[method](...args);
  while (!H.finished(id)) await sleep(50);
  return H.result(id);
}

/** @param {string} b64 */
function decode(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

/**
 * Why ``got`` is not ``want`` within the tolerance (kgen.checking's rule), or "" where it is.
 * @param {Float32Array} got
 * @param {Float32Array} want
 * @param {{rtol: number, atol: number}} tolerance
 */
function mismatch(got, want, { rtol, atol }) {
  if (got.length !== want.length) return `the output has ${got.length} values, expected ${want.length}`;
  let squares = 0;
  let finite = 0;
  for (const w of want) {
    if (Number.isFinite(w)) {
      squares += w * w;
      finite++;
    }
  }
  const scale = Math.max(1, finite ? Math.sqrt(squares / finite) : 1);
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if ((Number.isNaN(g) && Number.isNaN(w)) || (!Number.isFinite(w) && g === w)) continue;
    if (!(Math.abs(g - w) <= atol * scale + rtol * Math.abs(w))) return `element ${i}: ${g} vs ${w}`;
  }
  return "";
}

/**
 * Check, then time, one job; what the server is told.
 * @param {any} job
 * @param {string} inputsKey
 * @param {Float32Array} want
 */
async function measure(job, inputsKey, want) {
  const run = await call("startRun", { id: job.id, inputsKey, program: job.program });
  try {
    if (run.status !== "ok") return { status: run.status, message: run.message };
    const wrong = mismatch(decode(run.output), want, job.tolerance);
    if (wrong) return { status: "wrong", message: wrong, output: run.output };
    const t = await call("startTime", job.id, job.timing);
    if (t.status !== "ok") return { status: t.status, message: t.message };
    return {
      status: "ok",
      output: run.output,
      median_ms: t.medianMs,
      iqr_ms: t.iqrMs,
      samples: t.samples,
      k: t.k,
      wall_median_ms: t.wallMedianMs,
      clock: t.clock,
      estimate: t.estimate,
    };
  } finally {
    harness().release(job.id);
  }
}

async function main() {
  while (!harness()?.ready) await sleep(20);
  const fingerprint = await harness().fingerprint();
  const hello = await post("hello", { fingerprint });
  const { worker } = hello;
  show(`worker ${worker}: ${Object.values(hello.classes).join(", ")}`);
  /** each workload's inputs (base64) and reference, by key: a job carries them where it is the first of its workload
   * @type {Map<string, {arrays: string[], want: Float32Array}>} */
  const inputs = new Map();
  let current = "";
  let done = 0;
  for (;;) {
    const next = await post("job", { worker });
    if (next.done) break;
    if (next.wait_ms) {
      await sleep(next.wait_ms);
      continue;
    }
    const { job } = next;
    if (job.inputs) inputs.set(job.inputs.key, { arrays: job.inputs.arrays, want: decode(job.inputs.want) });
    const set = inputs.get(job.inputs_key);
    if (!set) throw new Error(`job ${job.id}: the server sent no inputs for workload ${job.workload}`);
    if (current !== job.inputs_key) harness().setInputs(job.inputs_key, set.arrays);
    current = job.inputs_key;
    const result = await measure(job, job.inputs_key, set.want);
    await post("result", { worker, job: job.id, ...result });
    done++;
    show(`worker ${worker}: ${done} candidates measured (${job.device}, ${job.workload})`);
  }
  show(`worker ${worker}: done, ${done} candidates measured`);
  /** @type {any} */ (window).kgenFleetDone = { worker, measured: done };
}

main().catch((err) => {
  show(String(err.message || err));
  /** @type {any} */ (window).kgenFleetError = String(err.message || err);
});
