// The peers' timing protocol (as kgen's harness): warm up for `warmupMs` (and at least 3 runs), then `samples`
// samples of k back-to-back runs, k chosen so a sample lasts >= minSampleMs; the median of the per-run times.
const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  const m = (s.length - 1) / 2;
  return (s[Math.floor(m)] + s[Math.ceil(m)]) / 2;
};

// `run` (sync or async) does one op run and returns its output; the last output comes back for checking.
export async function timeRuns(run, { samples = 15, minSampleMs = 5, warmupMs = 300 } = {}) {
  let output = null;
  const t0 = performance.now();
  let runs = 0;
  while (performance.now() - t0 < warmupMs || runs < 3) {
    output = await run();
    runs++;
  }
  const single = (performance.now() - t0) / runs;
  const k = Math.max(1, Math.ceil(minSampleMs / single));
  const perRun = [];
  for (let s = 0; s < samples; s++) {
    const start = performance.now();
    for (let i = 0; i < k; i++) output = await run();
    perRun.push((performance.now() - start) / k);
  }
  return { medianMs: median(perRun), samples, k, sampleMs: perRun, output };
}
