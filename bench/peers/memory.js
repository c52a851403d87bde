// Peak memory of whatever runs in the page, library-agnostic, for bench.models: the WebAssembly memories it
// makes (created by `new WebAssembly.Memory` or defined by an instantiated module; a memory only grows, so its
// size at the end is its peak), and the peak bytes of live WebGPU buffers and WebGL textures (counted at
// creation, uncounted at destroy / deleteTexture). `track()` must run before the library under test is imported.
// JS heap (ArrayBuffers of weights held by the library) is not counted.

const state = (globalThis.__kgenMemory ??= {
  installed: false,
  memories: new Set(),
  gpuLive: 0,
  gpuPeak: 0,
  buffers: new WeakMap(),
  texLive: 0,
  texPeak: 0,
  textures: new Map(),
});

const TEXEL_BYTES = { 0x8814: 16, 0x881a: 8, 0x822e: 4, 0x8230: 8, 0x8058: 4, 0x8229: 1, 0x822d: 2, 0x8d70: 16 };
// RGBA32F, RGBA16F, R32F, RG32F, RGBA8, R8, R16F, RGBA32UI; unsized formats count 4 bytes a texel
const texelBytes = (internalFormat) => TEXEL_BYTES[internalFormat] ?? 4;

function rememberMemoriesOf(result) {
  const instance = result instanceof WebAssembly.Instance ? result : result?.instance;
  for (const value of Object.values(instance?.exports ?? {})) {
    if (value instanceof WebAssembly.Memory) state.memories.add(value);
  }
  return result;
}

export function track() {
  if (state.installed) return;
  state.installed = true;
  const NativeMemory = WebAssembly.Memory;
  const Memory = function (descriptor) {
    const memory = new NativeMemory(descriptor);
    state.memories.add(memory);
    return memory;
  };
  Memory.prototype = NativeMemory.prototype;
  WebAssembly.Memory = Memory;
  for (const name of ["instantiate", "instantiateStreaming"]) {
    const native = WebAssembly[name];
    WebAssembly[name] = (...args) => native.apply(WebAssembly, args).then(rememberMemoriesOf);
  }
  const NativeInstance = WebAssembly.Instance;
  const Instance = function (module, imports) {
    return rememberMemoriesOf(new NativeInstance(module, imports));
  };
  Instance.prototype = NativeInstance.prototype;
  WebAssembly.Instance = Instance;

  if (globalThis.GPUDevice) {
    const create = GPUDevice.prototype.createBuffer;
    GPUDevice.prototype.createBuffer = function (descriptor) {
      const buffer = create.call(this, descriptor);
      state.buffers.set(buffer, descriptor.size);
      state.gpuLive += descriptor.size;
      state.gpuPeak = Math.max(state.gpuPeak, state.gpuLive);
      return buffer;
    };
    const destroy = GPUBuffer.prototype.destroy;
    GPUBuffer.prototype.destroy = function () {
      state.gpuLive -= state.buffers.get(this) ?? 0;
      state.buffers.delete(this);
      return destroy.call(this);
    };
  }
  if (globalThis.WebGL2RenderingContext) {
    const gl = WebGL2RenderingContext.prototype;
    const bound = new WeakMap(); // context -> the TEXTURE_2D (or TEXTURE_2D_ARRAY) texture bound
    const setSize = (ctx, bytes) => {
      const texture = bound.get(ctx);
      if (!texture) return;
      state.texLive += bytes - (state.textures.get(texture) ?? 0);
      state.textures.set(texture, bytes);
      state.texPeak = Math.max(state.texPeak, state.texLive);
    };
    const bindTexture = gl.bindTexture;
    gl.bindTexture = function (target, texture) {
      if (target === this.TEXTURE_2D || target === this.TEXTURE_2D_ARRAY) bound.set(this, texture);
      return bindTexture.call(this, target, texture);
    };
    const texStorage2D = gl.texStorage2D;
    gl.texStorage2D = function (target, levels, internalFormat, width, height) {
      setSize(this, width * height * texelBytes(internalFormat));
      return texStorage2D.apply(this, arguments);
    };
    const texStorage3D = gl.texStorage3D;
    gl.texStorage3D = function (target, levels, internalFormat, width, height, depth) {
      setSize(this, width * height * depth * texelBytes(internalFormat));
      return texStorage3D.apply(this, arguments);
    };
    const texImage2D = gl.texImage2D;
    gl.texImage2D = function (target, level, internalFormat, width, height) {
      if (level === 0 && typeof width === "number" && typeof height === "number") {
        setSize(this, width * height * texelBytes(internalFormat));
      }
      return texImage2D.apply(this, arguments);
    };
    const deleteTexture = gl.deleteTexture;
    gl.deleteTexture = function (texture) {
      state.texLive -= state.textures.get(texture) ?? 0;
      state.textures.delete(texture);
      return deleteTexture.call(this, texture);
    };
  }
}

// {wasmBytes, gpuBufferPeakBytes, texturePeakBytes}: the peaks seen since track().
export function report() {
  let wasmBytes = 0;
  for (const memory of state.memories) wasmBytes += memory.buffer.byteLength;
  return { wasmBytes, gpuBufferPeakBytes: state.gpuPeak, texturePeakBytes: state.texPeak };
}
