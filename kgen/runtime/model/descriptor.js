// @ts-check
// Reading a converted model folder: model.json and one backend's program, each checked before anything runs
// (schema version, sizes that add up, buffers that hold what names them). A check that fails is an Error
// naming the file and the field; nothing is launched on a descriptor that did not pass.

export const FORMAT = "kgen-model";
export const SCHEMA_VERSION = 1;
export const ENCODINGS = ["fp32", "fp16", "eightbit"];
// what a model input or output holds; kernels carry each in float32 (integers exactly up to 2^24, true as 1)
export const DTYPES = ["float32", "int32", "bool"];
const PAGE = 65536;

/** @param {string} where @param {string} what */
export function fail(where, what) {
  return new Error(`kgen: ${where}: ${what}`);
}

/** What a value is, for an error: its class's name, or its type. @param {any} v */
export function kindOf(v) {
  return v === null ? "null" : v?.constructor?.name ?? typeof v;
}

/** @param {unknown} v */
function isCount(v) {
  return Number.isSafeInteger(v) && /** @type {number} */ (v) >= 0;
}

/** @param {unknown} shape */
function isShape(shape) {
  return Array.isArray(shape) && shape.length > 0 && shape.every((d) => isCount(d) && d > 0);
}

/** @param {number[]} shape */
export function elements(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

/** Encoded bytes of `size` values. @param {number} size @param {string} encoding @param {number} block */
export function encodedBytes(size, encoding, block) {
  if (encoding === "fp32") return 4 * size;
  if (encoding === "fp16") return 2 * size;
  return 4 * Math.ceil(size / block) + size;
}

/**
 * How the files of a folder are fetched where its page said (`kgen.load(dir, {fetch})` or `{files}`), by folder.
 * @type {Map<string, (url: string) => Promise<Response>>}
 */
const fetchers = new Map();

/**
 * Fetch the files of folder `dir` with `fetcher` (null: the browser's fetch).
 * @param {string} dir @param {((url: string) => Promise<Response>) | null} fetcher
 */
export function fetchFolderWith(dir, fetcher) {
  if (fetcher) fetchers.set(dir, fetcher);
  else fetchers.delete(dir);
}

/** @param {string} url */
function fetcherFor(url) {
  for (const [dir, fetcher] of fetchers) if (url.startsWith(`${dir}/`)) return fetcher;
  return (/** @type {string} */ u) => fetch(u);
}

/**
 * A file's bytes; with `onBytes`, read as a stream that reports each chunk's length (weights' progress); with
 * `into`, read into that array (a window of the weight stream: no copy of its own to join), and a file longer
 * than it is an error. Errors name the URL and, with `what`, the kind of file.
 * @param {string} url @param {((n: number) => void) | null} [onBytes] @param {string} [what]
 * @param {Uint8Array<ArrayBuffer> | null} [into]
 * @returns {Promise<Uint8Array<ArrayBuffer>>}
 */
export async function fetchBytes(url, onBytes = null, what = "", into = null) {
  let response;
  try {
    response = await fetcherFor(url)(url);
    if (!(response instanceof Response)) throw new Error(`the page's fetch gave ${kindOf(response)}, not a Response`);
  } catch (err) {
    throw fail(url, `${what}could not be fetched (${/** @type {Error} */ (err).message})`);
  }
  if (!response.ok) throw fail(url, `${what}HTTP ${response.status} ${response.statusText}`.trim());
  if (!(onBytes || into) || !response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (onBytes) onBytes(bytes.length);
    return into ? placed(url, what, bytes, into) : bytes;
  }
  const reader = response.body.getReader();
  /** @type {Uint8Array[]} */
  const chunks = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (into) placed(url, what, value, into, length);
    else chunks.push(value);
    length += value.length;
    onBytes?.(value.length);
  }
  if (into) return into.subarray(0, length);
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * `bytes` written into `into` at `at`; the window written so far.
 * @param {string} url @param {string} what @param {Uint8Array} bytes @param {Uint8Array<ArrayBuffer>} into
 */
function placed(url, what, bytes, into, at = 0) {
  if (at + bytes.length > into.length) throw fail(url, `${what}has more than the ${into.length} bytes model.json says`);
  into.set(bytes, at);
  return into.subarray(0, at + bytes.length);
}

/** @param {Uint8Array} bytes @param {string} where */
function parseJSON(bytes, where) {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw fail(where, `not valid JSON (${/** @type {Error} */ (err).message})`);
  }
}

/** The hex SHA-256 of `bytes`, or null where the page has no crypto.subtle (not a secure context). */
export async function sha256(/** @type {Uint8Array<ArrayBuffer>} */ bytes) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * model.json, checked: format, schema version, inputs and outputs, the weight stream and its tensors.
 * @param {string} dir
 */
export async function readModel(dir) {
  const where = `${dir}/model.json`;
  const model = parseJSON(await fetchBytes(where), where);
  if (typeof model !== "object" || model === null || model.format !== FORMAT) {
    throw fail(where, `not a kgen model (format ${JSON.stringify(model?.format)}, expected "${FORMAT}")`);
  }
  if (model.schema_version !== SCHEMA_VERSION) {
    throw fail(where, `schema_version ${JSON.stringify(model.schema_version)} is not supported (this runtime reads ${SCHEMA_VERSION})`);
  }
  for (const key of ["inputs", "outputs"]) {
    if (!Array.isArray(model[key]) || model[key].length === 0) throw fail(where, `${key} must be a non-empty list`);
    model[key].forEach((/** @type {any} */ t, /** @type {number} */ k) => {
      if (typeof t?.name !== "string" || !isShape(t.shape) || !DTYPES.includes(t.dtype)) {
        throw fail(where, `${key}[${k}] must have a name, a shape of positive sizes and a dtype (${DTYPES.join(", ")})`);
      }
    });
  }
  const w = model.weights;
  if (typeof w !== "object" || w === null || !ENCODINGS.includes(w.encoding)) {
    throw fail(where, `weights.encoding must be one of ${ENCODINGS.join(", ")}`);
  }
  if (!Array.isArray(w.shards) || !Array.isArray(w.tensors) || !isCount(w.total_bytes) || !(isCount(w.block) && w.block > 0)) {
    throw fail(where, "weights must list shards and tensors, with total_bytes and block");
  }
  let total = 0;
  w.shards.forEach((/** @type {any} */ s, /** @type {number} */ k) => {
    if (typeof s?.file !== "string" || !/^[A-Za-z0-9_\-/.]+$/.test(s.file) || s.file.includes("..") || !isCount(s.bytes)) {
      throw fail(where, `weights.shards[${k}] must name a file inside the folder and its bytes`);
    }
    total += s.bytes;
  });
  if (total !== w.total_bytes) throw fail(where, `weights.total_bytes is ${w.total_bytes} but the shards add up to ${total}`);
  let next = 0; // the converter lays tensors one after another, each on a 4-byte boundary: a moved one is a lie
  for (const t of w.tensors) {
    if (typeof t?.name !== "string" || !isShape(t.shape) || !isCount(t.offset) || !isCount(t.bytes)) {
      throw fail(where, `weight ${JSON.stringify(t?.name)}: needs a name, a shape, an offset and bytes`);
    }
    if (t.offset !== next) throw fail(where, `weight ${t.name}: offset ${t.offset}, where the stream puts it at ${next}`);
    next = Math.ceil((t.offset + t.bytes) / 4) * 4;
    const want = encodedBytes(elements(t.shape), w.encoding, w.block);
    if (t.bytes !== want || t.offset + t.bytes > total) {
      throw fail(where, `weight ${t.name}: ${t.bytes} bytes at ${t.offset} do not fit its shape [${t.shape}] (${want} bytes) in ${total}`);
    }
  }
  if (typeof model.backends !== "object" || model.backends === null) throw fail(where, "backends must be an object");
  model.gathers = checkGathers(model.gathers ?? [], model, where);
  return model;
}

/**
 * Host gathers (rows of a weight picked by an integer input): each names an int32 input, a weight of at least
 * one axis, and an output of the indices' shape followed by a row's.
 * @param {any} gathers @param {any} model @param {string} where
 */
function checkGathers(gathers, model, where) {
  if (!Array.isArray(gathers)) throw fail(where, "gathers must be a list");
  const tensors = new Map(model.weights.tensors.map((/** @type {any} */ t) => [t.name, t]));
  const inputs = new Map(model.inputs.map((/** @type {any} */ t) => [t.name, t]));
  const names = new Set(inputs.keys());
  for (const g of gathers) {
    const table = tensors.get(g?.table);
    const ids = inputs.get(g?.indices);
    // the rows of every id in order, shaped as the ids are (or a view of them: the same count) and then a row
    const row = table ? table.shape.slice(1) : [];
    const fits = table && ids && isShape(g?.shape) && elements(g.shape) === elements(ids.shape) * elements(row) && g.shape.slice(g.shape.length - row.length).join() === row.join();
    if (typeof g?.output !== "string" || names.has(g.output) || !fits || ids.dtype !== "int32") {
      throw fail(where, `gather ${JSON.stringify(g?.output)} must name a new output, a weight, an int32 input and their shape`);
    }
    names.add(g.output);
  }
  return gathers;
}

/**
 * One backend's program file: the first of its variants (best first) that `whyNot` does not rule out (it says
 * why a variant cannot run here, or returns null), checked against its size and digest in model.json and
 * against itself: every buffer a kernel, an input, an output or a weight names exists and is large enough;
 * wasm/js buffers lie in the memory.
 * @param {string} dir @param {any} model @param {string} backend
 * @param {(variant: any) => string | null} [whyNot]
 */
export async function readProgram(dir, model, backend, whyNot = () => null) {
  const where = `${dir}/model.json`;
  const variants = model.backends[backend]?.variants;
  if (!model.backends[backend]) throw fail(where, `no ${backend} program (converted: ${Object.keys(model.backends).join(", ") || "none"})`);
  if (!Array.isArray(variants) || variants.length === 0) throw fail(where, `backends.${backend}.variants must be a non-empty list`);
  /** @type {string[]} */
  const reasons = [];
  const entry = variants.find((/** @type {any} */ v) => {
    const why = whyNot(v);
    if (why) reasons.push(`${v?.file}: ${why}`);
    return !why;
  });
  if (!entry) throw new Error(`no ${backend} variant can run here (${reasons.join("; ")})`);
  const { doc, file } = await readEntry(dir, entry, `backends.${backend}: a variant`);
  if (doc.backend !== backend) throw fail(file, `is a ${doc.backend} program, not ${backend}`);
  if (backend === "wasm" && ((doc.program?.threads ?? 1) !== entry.threads || Boolean(doc.program?.relaxed_simd) !== Boolean(entry.relaxed_simd))) {
    throw fail(file, "its threads or relaxed SIMD differ from model.json's entry");
  }
  checkProgram(doc, model, backend, file);
  doc.variant = entry; // its entry in model.json: the file, its digest, its candidates
  return doc;
}

/**
 * Each kernel has a name, its code (a wasm kernel its module, the others their text) and a grid, and binds only
 * buffers that exist.
 * @param {any[]} kernels @param {Map<string, any>} buffers @param {string} backend @param {string} where
 */
export function checkKernels(kernels, buffers, backend, where) {
  const code = backend === "wasm" ? "binary" : "source";
  kernels.forEach((/** @type {any} */ k, /** @type {number} */ i) => {
    if (typeof k?.name !== "string" || typeof k[code] !== "string" || !Array.isArray(k.grid) || !k.grid.every(isCount)) {
      throw fail(where, `kernel ${i} needs a name, a ${code} and a grid`);
    }
    for (const b of k.bindings ?? []) {
      if (!buffers.has(b?.buffer)) throw fail(where, `kernel ${k.name} binds buffer ${JSON.stringify(b?.buffer)}, which does not exist`);
    }
  });
}

/**
 * A file named by an entry of model.json ({file, bytes, sha256}), fetched and checked against its size and digest,
 * then parsed.
 * @param {string} dir @param {any} entry @param {string} what
 */
export async function readEntry(dir, entry, what) {
  if (typeof entry?.file !== "string" || entry.file.includes("/") || !isCount(entry.bytes)) {
    throw fail(`${dir}/model.json`, `${what} must name a file in the folder and its bytes`);
  }
  const file = `${dir}/${entry.file}`;
  const bytes = await fetchBytes(file);
  if (bytes.length !== entry.bytes) throw fail(file, `truncated or changed: ${bytes.length} bytes, model.json says ${entry.bytes}`);
  const digest = await sha256(bytes);
  if (digest !== null && digest !== entry.sha256) throw fail(file, "corrupted: its SHA-256 differs from model.json's");
  const doc = parseJSON(bytes, file);
  if (doc.schema_version !== SCHEMA_VERSION) throw fail(file, `schema_version ${JSON.stringify(doc.schema_version)} is not supported`);
  return { doc, file };
}

/** @param {any} doc @param {any} model @param {string} backend @param {string} where */
function checkProgram(doc, model, backend, where) {
  const p = doc.program;
  if (typeof p !== "object" || p === null || !Array.isArray(p.buffers) || !Array.isArray(p.kernels)) {
    throw fail(where, "program must have buffers and kernels");
  }
  const flat = backend === "wasm" || backend === "js";
  if (flat) {
    if (!isCount(p.memory_bytes) || p.memory_bytes > 4 * 1024 ** 3 || p.memory_bytes % 4) throw fail(where, "program.memory_bytes is not a valid size");
    if (backend === "wasm" && p.memory_bytes % PAGE) throw fail(where, "program.memory_bytes is not whole WebAssembly pages");
  }
  /** @type {Map<string, any>} */
  const buffers = new Map();
  for (const b of p.buffers) {
    if (typeof b?.name !== "string" || !(isCount(b.size) && b.size > 0) || buffers.has(b.name)) {
      throw fail(where, `buffer ${JSON.stringify(b?.name)} needs a unique name and a positive size`);
    }
    if (flat && !(isCount(b.offset) && b.offset % 4 === 0 && b.offset + 4 * b.size <= p.memory_bytes)) {
      throw fail(where, `buffer ${b.name}: ${b.size} values at byte ${b.offset} do not lie in the ${p.memory_bytes}-byte memory`);
    }
    if (backend === "webgl" && !(Array.isArray(b.texture) && b.layout && isShape(b.layout.shape))) {
      throw fail(where, `buffer ${b.name} needs a texture and a layout`);
    }
    buffers.set(b.name, b);
  }
  if (!isCount(p.prepare) || p.prepare > p.kernels.length) throw fail(where, "program.prepare must count kernels");
  checkKernels(p.kernels, buffers, backend, where);
  /**
   * Each entry names a tensor of `declared` (every one of them in order, with `all`) with its shape and a buffer
   * that holds it.
   * @param {string} key @param {any[]} declared @param {boolean} all
   */
  const ioCheck = (key, declared, all) => {
    const byName = new Map(declared.map((t) => [t.name, t]));
    const seen = new Set((Array.isArray(doc[key]) ? doc[key] : []).map((/** @type {any} */ t) => t?.name));
    if (!Array.isArray(doc[key]) || seen.size !== doc[key].length || (all && seen.size !== declared.length)) {
      throw fail(where, `${key} must match model.json's`);
    }
    doc[key].forEach((/** @type {any} */ t, /** @type {number} */ i) => {
      const d = byName.get(t?.name);
      const b = buffers.get(t?.buffer);
      if (!d || (all && d !== declared[i]) || t.shape?.join() !== d.shape.join() || !b || b.size < elements(d.shape)) {
        throw fail(where, `${key}[${i}] (${JSON.stringify(t?.name)}) must name one of model.json's with its shape and a buffer that holds it`);
      }
    });
  };
  // the kernels read the model's inputs (but those only a host gather reads) and the gathers' rows
  ioCheck("inputs", [...model.inputs, ...model.gathers.map((/** @type {any} */ g) => ({ name: g.output, shape: g.shape }))], false);
  ioCheck("outputs", model.outputs, true);
  const tensors = new Map(model.weights.tensors.map((/** @type {any} */ t) => [t.name, t]));
  if (!Array.isArray(doc.weights)) throw fail(where, "weights must be a list");
  for (const w of doc.weights) {
    const t = tensors.get(w?.tensor);
    const b = buffers.get(w?.buffer);
    if (w?.offset !== undefined) {
      // a block of the tensor's values, from the offset on
      const ok = t && isShape(w.shape) && Number.isInteger(w.offset) && w.offset >= 0 && w.offset + elements(w.shape) <= elements(t.shape);
      if (!ok || !b || b.size < elements(w.shape)) {
        throw fail(where, `weight ${JSON.stringify(w?.tensor)} at offset ${JSON.stringify(w?.offset)} must be a block inside a tensor of model.json and a buffer that holds it`);
      }
      continue;
    }
    const sameShape = t && Array.isArray(w.shape) && w.shape.join() === t.shape.join();
    if (!t || !sameShape || !b || b.size < elements(t.shape)) {
      throw fail(where, `weight ${JSON.stringify(w?.tensor)} must name a tensor of model.json of the same shape and a buffer that holds it`);
    }
  }
}
