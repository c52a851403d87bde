"""This machine's ceilings in the browser, the roofline point of reference beside every figure: register-only
WebAssembly SIMD128 loops (f32x4 mul + add, and relaxed SIMD's fused multiply-add) per thread and on every core
together, and a WebGPU vec4 fma loop. Nothing is read from memory in the loops, so these are the arithmetic peaks
that a kernel can approach and not pass.

    .venv/bin/python -m bench.peak [--out results/bench/peak.json]

Each figure is the median of 7 timed runs of about 100 ms after a 1 s warm-up, taken after the machine has gone
idle (bench.protocol). On SwiftShader the WebGPU figure is a software (CPU) figure."""

from __future__ import annotations

import argparse
import base64
import functools
import json
import sys
from pathlib import Path

import wasmtime

from bench import protocol
from kgen.atomic import write_text_atomic
from kgen.browser.session import BrowserSession

ACCUMULATORS = 12  # independent chains: enough to cover the fma latency of the cores seen here (4 cycles, 2 a cycle)


def wasm_loop(op: str) -> bytes:
    """A module exporting ``run(n)``: ``n`` rounds of ``ACCUMULATORS`` independent f32x4 updates, ``op`` "madd"
    (relaxed_madd: 8 flops a vector) or "mul_add" (mul then add: 8 flops a vector); returns a lane of the sum so that
    nothing is optimised away."""
    accs = range(ACCUMULATORS)
    update = {
        "madd": "(local.set $a{k} (f32x4.relaxed_madd (local.get $a{k}) (local.get $m) (local.get $c)))",
        "mul_add": "(local.set $a{k} (f32x4.add (f32x4.mul (local.get $a{k}) (local.get $m)) (local.get $c)))",
    }[op]
    body = "\n".join(update.format(k=k) for k in accs)
    total = "(local.get $a0)"
    for k in range(1, ACCUMULATORS):
        total = f"(f32x4.add {total} (local.get $a{k}))"
    locals_ = " ".join(f"(local $a{k} v128)" for k in accs)
    text = f"""(module
  (func (export "run") (param $n i32) (result f32)
    (local $m v128) (local $c v128) {locals_}
    (local.set $m (f32x4.splat (f32.const 0.999)))
    (local.set $c (f32x4.splat (f32.const 0.001)))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      {body}
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (f32x4.extract_lane 0 {total})))"""
    return bytes(wasmtime.wat2wasm(text))


WASM_PEAK = """async ([b64, threads, accs, warmMs, samples]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const module = await WebAssembly.compile(bytes);
  const source = `onmessage = async ({data: {module, n, warmMs, samples}}) => {
    const run = (await WebAssembly.instantiate(module)).exports.run;
    const t0 = performance.now();
    while (performance.now() - t0 < warmMs) run(n);
    const times = [];
    for (let s = 0; s < samples; s++) { const t = performance.now(); run(n); times.push(performance.now() - t); }
    postMessage(times.sort((a, b) => a - b)[samples >> 1]);
  };`;
  const url = URL.createObjectURL(new Blob([source], {type: "text/javascript"}));
  const probe = (await WebAssembly.instantiate(module)).exports.run;
  let n = 1 << 16, t = 0;
  while ((t = (() => { const s = performance.now(); probe(n); return performance.now() - s; })()) < 50) n *= 2;
  n = Math.ceil(n * 100 / t);
  const workers = Array.from({length: threads}, () => new Worker(url));
  const ms = await Promise.all(workers.map((w) => new Promise((resolve) => {
    w.onmessage = (e) => resolve(e.data);
    w.postMessage({module, n, warmMs, samples});
  })));
  workers.forEach((w) => w.terminate());
  const flops = n * accs * 8;
  return ms.map((m) => flops / m / 1e6);
}"""

WEBGPU_PEAK = """async ([accs]) => {
  const adapter = await navigator.gpu.requestAdapter();
  const device = await adapter.requestDevice();
  const body = Array.from({length: accs}, (_, k) => `a${k} = fma(a${k}, m, c);`).join(" ");
  const decl = Array.from({length: accs}, (_, k) => `var a${k} = vec4f(${k}.0);`).join(" ");
  const sum = Array.from({length: accs}, (_, k) => `a${k}`).join(" + ");
  const code = `@group(0) @binding(0) var<storage, read_write> out: array<vec4f>;
    @group(0) @binding(1) var<uniform> n: vec4u;
    @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
      let m = vec4f(0.999); let c = vec4f(0.001); ${decl}
      for (var i = 0u; i < n.x; i++) { ${body} }
      out[id.x] = ${sum};
    }`;
  const module = device.createShaderModule({code});
  const pipeline = device.createComputePipeline({layout: "auto", compute: {module, entryPoint: "main"}});
  const groups = 1024, invocations = groups * 64;
  const out = device.createBuffer({size: invocations * 16, usage: GPUBufferUsage.STORAGE});
  const uni = device.createBuffer({size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST});
  const bind = device.createBindGroup({layout: pipeline.getBindGroupLayout(0), entries: [
    {binding: 0, resource: {buffer: out}}, {binding: 1, resource: {buffer: uni}}]});
  const once = async (n) => {
    device.queue.writeBuffer(uni, 0, new Uint32Array([n, 0, 0, 0]));
    const e = device.createCommandEncoder(); const p = e.beginComputePass();
    p.setPipeline(pipeline); p.setBindGroup(0, bind); p.dispatchWorkgroups(groups); p.end();
    const t = performance.now(); device.queue.submit([e.finish()]); await device.queue.onSubmittedWorkDone();
    return performance.now() - t;
  };
  let n = 16, t = 0;
  while ((t = await once(n)) < 50 && n < (1 << 24)) n *= 2;
  n = Math.ceil(n * 100 / t);
  const t0 = performance.now();
  while (performance.now() - t0 < 1000) await once(n);
  const times = [];
  for (let s = 0; s < 7; s++) times.push(await once(n));
  const ms = times.sort((a, b) => a - b)[3];
  const info = adapter.info || {};
  return {gflops: invocations * n * accs * 8 / ms / 1e6, adapter: `${info.vendor} ${info.architecture}`};
}"""


@functools.cache
def _wasm_loop_b64(op: str) -> str:
    return base64.b64encode(wasm_loop(op)).decode()


def probe_wasm(session: BrowserSession, op: str, threads: int, warmup_ms: int = 1000, samples: int = 7) -> float:
    """The ``op`` loop's GFLOP/s on ``threads`` workers at once (their sum) in ``session``'s page: per worker the
    median of ``samples`` runs of about 100 ms after ``warmup_ms`` of warm-up. The kernel suite calls it beside
    every wasm kernel, so that kgen's share of the peak is a ratio of two figures taken a few seconds apart."""
    return sum(session.evaluate(WASM_PEAK, [_wasm_loop_b64(op), threads, ACCUMULATORS, warmup_ms, samples]))


def measure() -> tuple[dict, list[dict]]:
    """(the browser's fingerprint, one row per ceiling: backend, peak, threads, gflops, busy_before, software)."""
    rows = []
    with BrowserSession(job_timeout_s=120) as session:
        fp = session.fingerprint()
        cores = int(fp["hardwareConcurrency"])
        for op in ("mul_add", "madd"):
            for threads in sorted({1, cores}):
                busy = protocol.wait_idle()
                rows.append(
                    {
                        "backend": "wasm",
                        "peak": f"f32x4 {op}",
                        "threads": threads,
                        "gflops": probe_wasm(session, op, threads),
                        "busy_before": busy,
                        "software": False,
                    }
                )
        if fp["webgpu"].get("available"):
            busy = protocol.wait_idle()
            gpu = session.evaluate(WEBGPU_PEAK, [8])
            rows.append(
                {
                    "backend": "webgpu",
                    "peak": "vec4 fma",
                    "threads": None,
                    "gflops": gpu["gflops"],
                    "adapter": gpu["adapter"],
                    "busy_before": busy,
                    "software": fp["software"],
                }
            )
    return fp, rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    fp, rows = measure()
    for r in rows:
        label = " (software: SwiftShader)" if r["software"] else ""
        threads = f" {r['threads']} thread(s)" if r["threads"] else ""
        print(f"{r['backend']:<7} {r['peak']:<14}{threads:<12} {r['gflops']:8.1f} GFLOP/s{label}")
    if args.out:
        write_text_atomic(args.out, json.dumps({"browser": fp.get("browser"), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
