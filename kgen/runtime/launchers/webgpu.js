// The WebGPU launcher: takes a kgen program (WGSL kernels + launch info), compiles it once, binds buffers
// and runs it. The measurement harness and, later, the model runtime both launch kernels through this file,
// so a kernel is timed exactly as a page runs it.

import { KernelError } from "./errors.js";
import { Kept } from "./kept.js";

const LIMITS = [
  "maxStorageBuffersPerShaderStage",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupStorageSize",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBufferBindingSize",
  "maxBufferSize",
];

export class WebGPULauncher {
  // `keep`: compiled pipelines stay for the launcher's lifetime, keyed by source (the runtime's page-wide launcher)
  static async create({ timestamps = false, keep = false } = {}) {
    if (!navigator.gpu) throw new Error("WebGPU is not available in this browser");
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error("WebGPU: requestAdapter() returned null");
    const requiredFeatures = timestamps && adapter.features.has("timestamp-query") ? ["timestamp-query"] : [];
    const requiredLimits = Object.fromEntries(LIMITS.map((k) => [k, adapter.limits[k]]));
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
    return new WebGPULauncher(adapter, device, keep ? new Kept() : null);
  }

  constructor(adapter, device, kept = null) {
    this.adapter = adapter;
    this.device = device;
    this.kept = kept;
    this.lost = null;
    device.lost.then((info) => {
      this.lost = `${info.reason}: ${info.message}`;
    });
  }

  get hasTimestamps() {
    return this.device.features.has("timestamp-query");
  }

  // Compile every kernel; throws KernelError("compile_error") with the compiler's messages. Kernels of one source
  // share one pipeline (with `keep`, once per launcher).
  async compile(program) {
    const kept = this.kept ?? new Kept();
    const counts = { compiled: 0, reused: 0 };
    const kernels = [];
    for (const kernel of program.kernels) {
      const pipeline = await kept.take(kernel.source, () => this.#pipeline(kernel), counts);
      kernels.push({ kernel, pipeline });
    }
    return { program, kernels, counts };
  }

  async #pipeline(kernel) {
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ code: kernel.source, label: kernel.name });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === "error");
    let pipeline = null;
    let failure = null;
    if (errors.length === 0) {
      try {
        pipeline = await this.device.createComputePipelineAsync({
          layout: "auto",
          compute: { module, entryPoint: "main" },
          label: kernel.name,
        });
      } catch (err) {
        failure = String(err.message || err);
      }
    }
    const scopeError = await this.device.popErrorScope();
    if (errors.length) {
      const text = errors.map((m) => `${kernel.name}:${m.lineNum}:${m.linePos}: ${m.message}`).join("\n");
      throw new KernelError("compile_error", text);
    }
    if (failure || scopeError) throw new KernelError("compile_error", `${kernel.name}: ${failure || scopeError.message}`);
    return pipeline;
  }

  // One GPU buffer per program buffer (inputs, temporaries, output).
  createBuffers(program) {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    const buffers = {};
    for (const b of program.buffers) {
      buffers[b.name] = this.device.createBuffer({ size: Math.max(16, 4 * b.size), usage, label: b.name });
    }
    return buffers;
  }

  write(buffer, data) {
    this.device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  }

  bind(compiled, buffers) {
    return compiled.kernels.map(({ kernel, pipeline }) =>
      this.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: kernel.bindings.map((b) => ({ binding: b.binding, resource: { buffer: buffers[b.buffer] } })),
      }),
    );
  }

  // Record the program's kernels[first..end - 1], `repeat` times, into one compute pass.
  encodeInto(pass, compiled, bindGroups, repeat = 1, first = 0, end = compiled.kernels.length) {
    for (let r = 0; r < repeat; r++) {
      compiled.kernels.forEach(({ kernel, pipeline }, i) => {
        if (i < first || i >= end) return;
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroups[i]);
        pass.dispatchWorkgroups(...kernel.grid);
      });
    }
  }

  // One submission of kernels[first..end - 1] (a model's later runs skip its prepare kernels; a profile
  // submits one kernel at a time).
  async run(compiled, bindGroups, first = 0, end = compiled.kernels.length) {
    this.device.pushErrorScope("validation");
    const encoder = this.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    this.encodeInto(pass, compiled, bindGroups, 1, first, end);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
    const error = await this.device.popErrorScope();
    if (error) throw new KernelError("runtime_error", error.message);
    await this.device.queue.onSubmittedWorkDone();
    if (this.lost) throw new KernelError("device_lost", this.lost);
  }

  // One sample: `k` back-to-back runs in one compute pass, timed by timestamp queries (and by the wall clock).
  async sample(compiled, bindGroups, k) {
    const device = this.device;
    const encoder = device.createCommandEncoder();
    const passDesc = {};
    let querySet = null;
    let resolve = null;
    let readback = null;
    if (this.hasTimestamps) {
      querySet = device.createQuerySet({ type: "timestamp", count: 2 });
      resolve = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
      readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
      passDesc.timestampWrites = { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 };
    }
    const pass = encoder.beginComputePass(passDesc);
    this.encodeInto(pass, compiled, bindGroups, k);
    pass.end();
    if (querySet) {
      encoder.resolveQuerySet(querySet, 0, 2, resolve, 0);
      encoder.copyBufferToBuffer(resolve, 0, readback, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([encoder.finish()]);
    let gpu = null;
    if (readback) {
      await readback.mapAsync(GPUMapMode.READ);
      const [begin, end] = new BigUint64Array(readback.getMappedRange());
      gpu = Number(end - begin) / 1e6 / k;
      readback.destroy();
      resolve.destroy();
      querySet.destroy();
    } else {
      await device.queue.onSubmittedWorkDone();
    }
    const wall = (performance.now() - t0) / k;
    if (this.lost) throw new KernelError("device_lost", this.lost);
    return { gpu, wall };
  }

  destroy(compiled, buffers) {
    Object.values(buffers).forEach((b) => b.destroy());
  }

  // `info`: the buffer's launch info (its size in elements).
  async read(buffer, info) {
    const size = info.size;
    const staging = this.device.createBuffer({ size: 4 * size, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, 4 * size);
    this.device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    return out;
  }
}
