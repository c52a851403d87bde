// The WebGL2 launcher: takes a kgen program (GLSL ES 3.0 fragment shaders + launch info), compiles it once,
// keeps every buffer in a float texture (R32F, or RGBA32F for packed layouts) and runs each kernel as one
// full-screen triangle drawn into its output texture (an output split into planes is that many textures, the
// render targets of one framebuffer). Host data is packed into and unpacked from each buffer's layout here (see
// kgen/scheduling/layout.py for the layout rules).
import { KernelError } from "./errors.js";
import { Kept } from "./kept.js";

const VERTEX = `#version 300 es
void main() {
  vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
  gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}`;

const layoutCache = new Map();

// Storage index ((plane * texels + texel) * channels + channel) of every element of a tensor, in row-major
// element order.
export function storageIndices(layout) {
  const key = JSON.stringify(layout);
  if (layoutCache.has(key)) return layoutCache.get(key);
  const { shape, packing, channels } = layout;
  const [planeAxis, planes] = layout.planes || [-1, 1];
  const factor = shape.map(() => 1);
  for (const [axis, f] of packing) factor[axis] = f;
  // a plane axis that is packed too splits its texels among the planes
  const packed = shape.map((n, d) => Math.ceil(n / factor[d] / (d === planeAxis ? planes : 1)));
  const texels = Math.max(1, packed.reduce((a, b) => a * b, 1));
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Int32Array(n);
  const idx = new Array(shape.length).fill(0);
  for (let e = 0; e < n; e++) {
    let texel = 0;
    let plane = 0;
    for (let d = 0; d < shape.length; d++) {
      let at = Math.floor(idx[d] / factor[d]);
      if (d === planeAxis) {
        plane = at % planes;
        at = Math.floor(at / planes);
      }
      texel = texel * packed[d] + at;
    }
    let channel = 0;
    for (const [axis, f] of packing) channel = channel * f + (idx[axis] % f);
    out[e] = (plane * texels + texel) * channels + channel;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
  layoutCache.set(key, out);
  return out;
}

// Where storage index `s` of `buffer` lies in its planes' pixels laid one after another, `stride` floats a texel
// (its channels when uploading, 4 when read back as RGBA); a plane's texture may hold more texels than it uses.
function pixelIndex(buffer, s, stride) {
  const { width, height, channels, planes } = buffer;
  const planeSize = buffer.size / planes;
  const p = Math.floor(s / planeSize);
  const r = s - p * planeSize;
  return p * width * height * stride + Math.floor(r / channels) * stride + (r % channels);
}

export class WebGLLauncher {
  // `keep`: compiled programs stay for the launcher's lifetime, keyed by source (the runtime's page-wide launcher)
  static create({ keep = false } = {}) {
    const canvas = new OffscreenCanvas(1, 1);
    const gl = canvas.getContext("webgl2", { antialias: false, depth: false, stencil: false, alpha: true });
    if (!gl) throw new Error("WebGL2 is not available in this browser");
    if (!gl.getExtension("EXT_color_buffer_float")) {
      throw new Error("WebGL2: EXT_color_buffer_float is missing, so float textures cannot be rendered to");
    }
    return new WebGLLauncher(gl, keep ? new Kept() : null);
  }

  constructor(gl, kept = null) {
    this.gl = gl;
    this.kept = kept;
    /** render targets one draw may write (a program's planes) */
    this.maxDrawBuffers = Math.min(gl.getParameter(gl.MAX_DRAW_BUFFERS), gl.getParameter(gl.MAX_COLOR_ATTACHMENTS));
    this.vertex = this.#shader(gl.VERTEX_SHADER, VERTEX, "vertex");
    this.vao = gl.createVertexArray();
    this.pixel = new Float32Array(4);
  }

  #shader(type, source, name) {
    const gl = this.gl;
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
      const log = gl.getShaderInfoLog(shader) || "no log";
      gl.deleteShader(shader);
      throw new KernelError("compile_error", `${name}: ${log.trim()}`);
    }
    return shader;
  }

  // Compile and link every kernel; throws KernelError("compile_error") with the driver's log. Kernels of one
  // source (a model's repeated blocks, its layout conversions) share one program: each link, and each shader the
  // driver compiles at its first draw, is paid once (with `keep`, once per launcher).
  async compile(program) {
    const gl = this.gl;
    const kept = this.kept ?? new Kept();
    const counts = { compiled: 0, reused: 0 };
    const kernels = program.kernels.map((kernel) => {
      const prog = kept.take(kernel.source, () => this.#link(kernel), counts);
      const inputs = kernel.bindings
        .filter((b) => b.access === "read")
        // a model's kernels bind the model's textures to their own samplers: `uniform` names the sampler
        .map((b) => ({ location: gl.getUniformLocation(prog, b.uniform ?? `u_${b.buffer}`), buffer: b.buffer }))
        .filter((u) => u.location !== null);
      const output = kernel.bindings.find((b) => b.access === "write").buffer;
      return { kernel, prog, inputs, output };
    });
    return { program, kernels, counts };
  }

  #link(kernel) {
    const gl = this.gl;
    const fragment = this.#shader(gl.FRAGMENT_SHADER, kernel.source, kernel.name);
    const prog = gl.createProgram();
    gl.attachShader(prog, this.vertex);
    gl.attachShader(prog, fragment);
    gl.linkProgram(prog);
    gl.deleteShader(fragment);
    if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) {
      const log = (gl.getProgramInfoLog(prog) || "").trim();
      gl.deleteProgram(prog);
      throw new KernelError("compile_error", `${kernel.name}: link: ${log}`);
    }
    return prog;
  }

  // One texture per program buffer, sized by its launch info, and a framebuffer with it as its render target. A
  // buffer split into planes is a 2D array texture with a layer per plane, each layer a render target, so that a
  // kernel reading it samples one sampler2DArray with the plane as the layer.
  createBuffers(program) {
    const gl = this.gl;
    const buffers = {};
    const largest = gl.getParameter(gl.MAX_TEXTURE_SIZE);
    for (const b of program.buffers) {
      const [width, height] = b.texture;
      if (width > largest || height > largest) {
        throw new KernelError("runtime_error", `${b.name}: a ${width}x${height} texture is larger than this device's ${largest}`);
      }
      const channels = b.layout.channels;
      const planes = b.layout.planes ? b.layout.planes[1] : 1;
      const target = planes > 1 ? gl.TEXTURE_2D_ARRAY : gl.TEXTURE_2D;
      const format = channels === 4 ? gl.RGBA32F : gl.R32F;
      const fb = gl.createFramebuffer();
      gl.bindFramebuffer(gl.FRAMEBUFFER, fb);
      const tex = gl.createTexture();
      gl.bindTexture(target, tex);
      if (planes > 1) gl.texStorage3D(target, 1, format, width, height, planes);
      else gl.texStorage2D(target, 1, format, width, height);
      for (const f of [gl.TEXTURE_MIN_FILTER, gl.TEXTURE_MAG_FILTER]) gl.texParameteri(target, f, gl.NEAREST);
      if (planes > 1) {
        for (let p = 0; p < planes; p++) gl.framebufferTextureLayer(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0 + p, tex, 0, p);
        gl.drawBuffers(Array.from({ length: planes }, (_, p) => gl.COLOR_ATTACHMENT0 + p));
      } else {
        gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, target, tex, 0);
      }
      const status = gl.checkFramebufferStatus(gl.FRAMEBUFFER);
      if (status !== gl.FRAMEBUFFER_COMPLETE) throw new KernelError("runtime_error", `${b.name}: framebuffer status ${status}`);
      buffers[b.name] = { tex, target, fb, width, height, channels, planes, layout: b.layout, size: b.size };
    }
    return buffers;
  }

  // `data`: the tensor's values in row-major order; packed into the buffer's layout (padding is 0).
  write(buffer, data) {
    const gl = this.gl;
    const { width, height, channels, planes, tex, target } = buffer;
    const texture = width * height * channels;
    const storage = new Float32Array(planes * texture);
    const where = storageIndices(buffer.layout);
    for (let e = 0; e < where.length; e++) storage[pixelIndex(buffer, where[e], channels)] = data[e];
    const format = channels === 4 ? gl.RGBA : gl.RED;
    gl.bindTexture(target, tex);
    if (planes > 1) gl.texSubImage3D(target, 0, 0, 0, 0, width, height, planes, format, gl.FLOAT, storage);
    else gl.texSubImage2D(target, 0, 0, 0, width, height, format, gl.FLOAT, storage);
  }

  bind(compiled, buffers) {
    return buffers;
  }

  // Draw the program's kernels[first..end - 1], `repeat` times.
  encode(compiled, buffers, repeat = 1, first = 0, end = compiled.kernels.length) {
    const gl = this.gl;
    gl.bindVertexArray(this.vao);
    for (let r = 0; r < repeat; r++) {
      for (const k of compiled.kernels.slice(first, end)) {
        const out = buffers[k.output];
        gl.bindFramebuffer(gl.FRAMEBUFFER, out.fb);
        gl.viewport(0, 0, out.width, out.height);
        gl.useProgram(k.prog);
        k.inputs.forEach((u, unit) => {
          gl.activeTexture(gl.TEXTURE0 + unit);
          const input = buffers[u.buffer];
          gl.bindTexture(input.target, input.tex);
          gl.uniform1i(u.location, unit);
        });
        gl.drawArrays(gl.TRIANGLES, 0, 3);
      }
    }
  }

  // Wait for the drawn work: a 1-pixel read of the output of kernels[last] (by default the program's last).
  sync(compiled, buffers, last = compiled.kernels.length - 1) {
    const gl = this.gl;
    gl.bindFramebuffer(gl.FRAMEBUFFER, buffers[compiled.kernels[last].output].fb);
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.FLOAT, this.pixel);
  }

  // Draw kernels[first..end - 1] (a profile draws one at a time) and wait for them.
  async run(compiled, buffers, first = 0, end = compiled.kernels.length) {
    this.encode(compiled, buffers, 1, first, end);
    this.sync(compiled, buffers, end - 1);
    const error = this.gl.getError();
    if (error !== this.gl.NO_ERROR) throw new KernelError("runtime_error", `WebGL error 0x${error.toString(16)}`);
    if (this.gl.isContextLost()) throw new KernelError("device_lost", "WebGL context lost");
  }

  // One sample: `k` back-to-back runs closed by a 1-pixel readPixels, timed by the wall clock.
  async sample(compiled, buffers, k) {
    const t0 = performance.now();
    this.encode(compiled, buffers, k);
    this.sync(compiled, buffers);
    const wall = (performance.now() - t0) / k;
    if (this.gl.isContextLost()) throw new KernelError("device_lost", "WebGL context lost");
    return { gpu: null, wall };
  }

  // The tensor's values in row-major order, unpacked from the buffer's layout (every plane's texture).
  async read(buffer) {
    const gl = this.gl;
    const { width, height, planes } = buffer;
    const texture = width * height * 4;
    const pixels = new Float32Array(planes * texture);
    gl.bindFramebuffer(gl.FRAMEBUFFER, buffer.fb);
    for (let p = 0; p < planes; p++) {
      gl.readBuffer(gl.COLOR_ATTACHMENT0 + p);
      gl.readPixels(0, 0, width, height, gl.RGBA, gl.FLOAT, pixels, p * texture);
    }
    gl.readBuffer(gl.COLOR_ATTACHMENT0); // what sync() reads
    const where = storageIndices(buffer.layout);
    const out = new Float32Array(where.length);
    for (let e = 0; e < where.length; e++) out[e] = pixels[pixelIndex(buffer, where[e], 4)];
    return out;
  }

  destroy(compiled, buffers) {
    if (!this.kept) for (const prog of new Set(compiled.kernels.map((k) => k.prog))) this.gl.deleteProgram(prog);
    for (const b of Object.values(buffers)) {
      this.gl.deleteFramebuffer(b.fb);
      this.gl.deleteTexture(b.tex);
    }
  }
}
