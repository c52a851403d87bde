// @ts-check
// Image helpers with WebDNN's names and semantics: pixels of an image, canvas, ImageData or URL as a Float32Array
// in the order and colours a model wants, and back into a canvas. As in WebDNN, getImageArray's `bias` and
// `scale` are per pixel channel in R, G, B order whatever `color` is (value = (pixel - bias) / scale: Keras's
// BGR ResNet-50 takes `bias: [123.68, 116.779, 103.939]`), and setImageArrayToCanvas's are per channel of the
// array (pixel = value * scale + bias). GREY is the luminance 0.2126 R + 0.7152 G + 0.0722 B.

export const Order = Object.freeze({ CHW: "CHW", HWC: "HWC" });
export const Color = Object.freeze({ RGB: "RGB", BGR: "BGR", GREY: "GREY", RGBA: "RGBA" });

/** @typedef {{srcX?: number, srcY?: number, srcW?: number, srcH?: number, dstX?: number, dstY?: number,
 *  dstW?: number, dstH?: number, order?: string, color?: string, bias?: number[], scale?: number[]}} ImageOptions */

/** @param {number} w @param {number} h */
function makeCanvas(w, h) {
  if (typeof document !== "undefined") {
    const c = document.createElement("canvas");
    c.width = w;
    c.height = h;
    return c;
  }
  return new OffscreenCanvas(w, h);
}

/** @param {string} color */
function channelsOf(color) {
  const picks = { RGB: [0, 1, 2], BGR: [2, 1, 0], GREY: [-1], RGBA: [0, 1, 2, 3] };
  const c = /** @type {Record<string, number[]>} */ (picks)[color];
  if (!c) throw new Error(`kgen.Image: unknown color '${color}' (colors: ${Object.keys(Color).join(", ")})`);
  return c;
}

/** @param {string} order */
function checkOrder(order) {
  if (order !== Order.CHW && order !== Order.HWC) throw new Error(`kgen.Image: unknown order '${order}' (orders: CHW, HWC)`);
}

/** @param {string} url */
async function loadImage(url) {
  const img = new globalThis.Image();
  img.crossOrigin = "anonymous";
  img.src = url;
  try {
    await img.decode();
  } catch {
    throw new Error(`kgen.Image: the image at ${url} could not be loaded`);
  }
  return img;
}

/** @param {any} src */
function sizeOf(src) {
  return [src.naturalWidth || src.videoWidth || src.width, src.naturalHeight || src.videoHeight || src.height];
}

/**
 * @param {HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | ImageData | string} source
 * @param {ImageOptions} [options]
 * @returns {Promise<Float32Array>}
 */
export async function getImageArray(source, options = {}) {
  let src = typeof source === "string" ? await loadImage(source) : source;
  if (!src) throw new Error("kgen.Image.getImageArray: no image given");
  if (typeof ImageData !== "undefined" && src instanceof ImageData) {
    const c = makeCanvas(src.width, src.height);
    /** @type {any} */ (c.getContext("2d")).putImageData(src, 0, 0);
    src = c;
  }
  const [width, height] = sizeOf(src);
  if (!(width > 0 && height > 0)) throw new Error("kgen.Image.getImageArray: the image has no pixels (not loaded yet?)");
  const { srcX = 0, srcY = 0, srcW = width, srcH = height, dstX = 0, dstY = 0 } = options;
  const { dstW = srcW, dstH = srcH, order = Order.HWC, color = Color.RGB } = options;
  checkOrder(order);
  const picks = channelsOf(color);
  const bias = options.bias ?? [0, 0, 0, 0];
  const scale = options.scale ?? [1, 1, 1, 1];
  const canvas = makeCanvas(dstW, dstH);
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d", { willReadFrequently: true }));
  ctx.drawImage(/** @type {CanvasImageSource} */ (src), srcX, srcY, srcW, srcH, dstX, dstY, dstW - dstX, dstH - dstY);
  const pixels = ctx.getImageData(0, 0, dstW, dstH).data;
  const n = picks.length;
  const out = new Float32Array(dstW * dstH * n);
  /** @param {number} p @param {number} k */
  const value = (p, k) => (pixels[p + k] - (bias[k] ?? bias[0] ?? 0)) / (scale[k] ?? scale[0] ?? 1);
  for (let y = 0; y < dstH; y++) {
    for (let x = 0; x < dstW; x++) {
      const p = 4 * (y * dstW + x);
      for (let c = 0; c < n; c++) {
        const k = picks[c];
        const v = k < 0 ? 0.2126 * value(p, 0) + 0.7152 * value(p, 1) + 0.0722 * value(p, 2) : value(p, k);
        out[order === Order.HWC ? (y * dstW + x) * n + c : c * dstW * dstH + y * dstW + x] = v;
      }
    }
  }
  return out;
}

/**
 * Draw an image array (value * scale + bias per channel) into a canvas, resized to dstW x dstH.
 * @param {ArrayLike<number>} array @param {number} imageW @param {number} imageH
 * @param {HTMLCanvasElement | OffscreenCanvas} canvas @param {ImageOptions} [options]
 */
export function setImageArrayToCanvas(array, imageW, imageH, canvas, options = {}) {
  const { order = Order.HWC, color = Color.RGB } = options;
  checkOrder(order);
  const picks = channelsOf(color);
  const n = picks.length;
  if (!(Number.isSafeInteger(imageW) && Number.isSafeInteger(imageH) && imageW > 0 && imageH > 0)) {
    throw new Error(`kgen.Image.setImageArrayToCanvas: invalid size ${imageW}x${imageH}`);
  }
  if (array.length < imageW * imageH * n) {
    throw new Error(`kgen.Image.setImageArrayToCanvas: a ${imageW}x${imageH} ${color} image needs ${imageW * imageH * n} values, got ${array.length}`);
  }
  const bias = options.bias ?? picks.map(() => 0);
  const scale = options.scale ?? picks.map(() => 1);
  const { dstX = 0, dstY = 0, dstW = canvas.width, dstH = canvas.height } = options;
  const image = new ImageData(imageW, imageH);
  for (let y = 0; y < imageH; y++) {
    for (let x = 0; x < imageW; x++) {
      const p = 4 * (y * imageW + x);
      image.data[p + 3] = 255;
      for (let c = 0; c < n; c++) {
        const at = order === Order.HWC ? (y * imageW + x) * n + c : c * imageW * imageH + y * imageW + x;
        const v = array[at] * (scale[c] ?? 1) + (bias[c] ?? 0);
        const k = picks[c];
        if (k < 0) image.data[p] = image.data[p + 1] = image.data[p + 2] = v;
        else image.data[p + k] = v;
      }
    }
  }
  const tmp = makeCanvas(imageW, imageH);
  /** @type {any} */ (tmp.getContext("2d")).putImageData(image, 0, 0);
  const ctx = /** @type {any} */ (canvas.getContext("2d"));
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, imageW, imageH, dstX, dstY, dstW, dstH);
}
