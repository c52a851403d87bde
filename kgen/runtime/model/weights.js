// @ts-check
// Weights: shards fetched in parallel with progress, each checked (size, SHA-256) and kept in the Cache API so a
// second load of the same model does not fetch them again; then decoded (fp32, fp16, eightbit) per tensor.
import { elements, fail, fetchBytes, sha256 } from "./descriptor.js";

const CACHE = "kgen-weights-v1";
/** Cache writes still under way. @type {Promise<void>[]} */
const pending = [];
/** Shards fetched but not yet kept: written once the page has its first output (`keepFetched`), since writing
 * 100 MB into the cache beside the load made ResNet-50's cold start on wasm 270 ms longer.
 * @type {[string, string, Uint8Array<ArrayBuffer>][]} */
const unkept = [];

/** Keep the fetched shards in the cache, each from a task of its own (a put copies its bytes on the page's
 * thread: not before the caller has its output, and 4 MiB at a time, where MobileNet-v2's 14 MB at once made one
 * 77 ms task); resolves when they are kept. */
export function keepFetched() {
  const shards = unkept.splice(0);
  if (shards.length === 0) return Promise.resolve();
  const kept = (async () => {
    for (const [url, digest, bytes] of shards) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      await remember(url, digest, bytes);
    }
  })();
  pending.push(kept);
  return kept;
}


/** Whether the page has kept weights before. */
async function hasCache() {
  try {
    return Boolean(globalThis.caches) && (await caches.has(CACHE));
  } catch {
    return false;
  }
}

/** @param {string} url @param {string} digest */
async function cached(url, digest) {
  if (!globalThis.caches) return null;
  try {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(`${url}#${digest}`);
    return hit ? new Uint8Array(await hit.arrayBuffer()) : null;
  } catch {
    return null; // no cache here (an opaque origin, storage off): fetch instead
  }
}

/** @param {string} url @param {string} digest @param {Uint8Array<ArrayBuffer>} bytes */
async function remember(url, digest, bytes) {
  if (!globalThis.caches) return;
  try {
    const cache = await caches.open(CACHE);
    await cache.put(`${url}#${digest}`, new Response(bytes, { headers: { "Content-Type": "application/octet-stream" } }));
  } catch {
    // a full or disabled cache only costs the next load a fetch
  }
}

/**
 * Every shard, checked, in one stream: each fetched (or read from the cache) into its window of the stream.
 * @param {string} dir @param {any} model @param {((loaded: number, total: number) => void) | undefined} progress
 * @returns {Promise<{stream: Uint8Array, fetched: number}>}
 */
export async function fetchWeights(dir, model, progress) {
  keepFetched(); // an earlier load's shards, before this load looks in the cache
  await Promise.all(pending.splice(0));
  const w = model.weights;
  let loaded = 0;
  let fetched = 0;
  const report = (/** @type {number} */ n) => {
    loaded += n;
    if (progress) progress(loaded, w.total_bytes);
  };
  // a page that has never kept weights does not open the cache storage (it costs a first load 100 ms)
  const warm = await hasCache();
  const stream = new Uint8Array(w.total_bytes);
  let start = 0;
  const windows = w.shards.map((/** @type {any} */ s) => stream.subarray(start, (start += s.bytes)));
  await Promise.all(
    w.shards.map(async (/** @type {any} */ s, /** @type {number} */ k) => {
      const url = `${dir}/${s.file}`;
      const hit = warm ? await cached(url, s.sha256) : null;
      if (hit && hit.length === s.bytes) {
        windows[k].set(hit);
        report(hit.length);
        return;
      }
      const bytes = await fetchBytes(url, report, "weight shard: ", windows[k]);
      fetched += 1;
      if (bytes.length !== s.bytes) throw fail(url, `weight shard has ${bytes.length} bytes, model.json says ${s.bytes}`);
      const digest = await sha256(bytes);
      if (digest !== null && digest !== s.sha256) throw fail(url, "weight shard corrupted: its SHA-256 differs from model.json's");
      unkept.push([url, s.sha256, bytes]); // kept after the first output, or at the next load
    }),
  );
  return { stream, fetched };
}

/**
 * Every weight tensor's float32 values by name: the shards fetched (or read from the cache), then decoded.
 * @param {string} dir @param {any} model @param {((loaded: number, total: number) => void) | undefined} progress
 * @returns {Promise<Map<string, Float32Array>>}
 */
export async function loadWeights(dir, model, progress) {
  const { stream } = await fetchWeights(dir, model, progress);
  const w = model.weights;
  return new Map(w.tensors.map((/** @type {any} */ t) => [t.name, decodeTensor(stream, t, w.encoding, w.block)]));
}

/** IEEE half floats to float32. @param {Uint16Array} half */
function fromHalf(half) {
  const out = new Float32Array(half.length);
  for (let i = 0; i < half.length; i++) {
    const h = half[i];
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * frac * 2 ** -24;
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  return out;
}

/**
 * One tensor's float32 values from the stream.
 * @param {Uint8Array} stream @param {any} tensor @param {string} encoding @param {number} block
 */
export function decodeTensor(stream, tensor, encoding, block) {
  const size = elements(tensor.shape);
  if (encoding === "fp32" && (stream.byteOffset + tensor.offset) % 4 === 0) {
    return new Float32Array(stream.buffer, stream.byteOffset + tensor.offset, size); // a view: no copy of 100 MB
  }
  const bytes = stream.slice(tensor.offset, tensor.offset + tensor.bytes); // a copy: aligned, and its own buffer
  if (encoding === "fp32") return new Float32Array(bytes.buffer, 0, size);
  if (encoding === "fp16") return fromHalf(new Uint16Array(bytes.buffer, 0, size));
  const blocks = Math.ceil(size / block);
  const scales = new Float32Array(bytes.buffer, 0, blocks);
  const codes = new Int8Array(bytes.buffer, 4 * blocks, size);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = codes[i] * scales[Math.floor(i / block)];
  return out;
}
