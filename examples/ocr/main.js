// @ts-check
// Text detection and recognition: the detector's probability map (DBNet) becomes boxes (a threshold, connected
// regions, each grown by DBNet's unclip distance); each box, cut from the photo at height 48, goes through the
// recognizer, whose per-column character scores are read greedily (CTC: repeats merged, blanks dropped).
import { $, backendLine, chosenBackend, fail, imagePicker, kgen, loadImage, runnerFor, say } from "../common.js";

const SAMPLES = ["page", "text"];
const DET = { dir: "det", height: 192, width: 384 }; // the shapes the models were converted for
const REC = { dir: "rec", height: 48, width: 640 };
const THRESHOLD = 0.3; // a pixel is text (DBNet's binarisation)
const BOX_SCORE = 0.6; // a region's mean probability to keep it
const MIN_AREA = 9; // pixels of the map
const UNCLIP = 1.5; // DBNet's ratio: a region grows by area * ratio / perimeter
/** @type {string[]} blank, the recognizer's dictionary, space */
let characters = [];
/** @type {HTMLCanvasElement | null} the photo at its own size */
let photo = null;
/** What the page last computed, for tests and the console. */
const state = /** @type {any} */ (window).kgenDemo = {
  backend: null, detInput: null, probability: null, regions: [], boxes: [], recInputs: [], texts: [], confidences: [],
};

/** @param {string} url */
async function loadPhoto(url) {
  const img = await loadImage(url);
  photo = document.createElement("canvas");
  [photo.width, photo.height] = [img.naturalWidth, img.naturalHeight];
  /** @type {CanvasRenderingContext2D} */ (photo.getContext("2d")).drawImage(img, 0, 0);
  show([]);
  say(`image: ${url.startsWith("blob:") ? "the chosen file" : url} (${img.naturalWidth}x${img.naturalHeight})`);
}

/** The photo on the page's canvas (at most 768 wide), with `boxes` and their numbers. @param {number[][]} boxes */
function show(boxes) {
  if (!photo) return;
  const canvas = $("canvas");
  const scale = Math.min(2, 768 / photo.width);
  [canvas.width, canvas.height] = [Math.round(photo.width * scale), Math.round(photo.height * scale)];
  const ctx = canvas.getContext("2d");
  ctx.drawImage(photo, 0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = ctx.fillStyle = "rgb(230, 0, 60)";
  ctx.lineWidth = 2;
  ctx.font = "bold 13px sans-serif";
  boxes.forEach(([y0, x0, y1, x1], k) => {
    ctx.strokeRect(x0 * scale, y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale);
    ctx.fillText(String(k + 1), x0 * scale + 2, y0 * scale + 12);
  });
}

/**
 * Connected regions (8 neighbours) of the map's pixels above THRESHOLD, kept where large and sure enough: their
 * bounding boxes [y0, x0, y1, x1) in map pixels, top to bottom.
 * @param {Float32Array} map @param {number} h @param {number} w
 */
function regions(map, h, w) {
  const seen = new Uint8Array(h * w);
  const found = [];
  const stack = [];
  for (let start = 0; start < h * w; start++) {
    if (seen[start] || map[start] <= THRESHOLD) continue;
    let [y0, x0, y1, x1, area, sum] = [h, w, 0, 0, 0, 0];
    seen[start] = 1;
    stack.push(start);
    while (stack.length) {
      const p = /** @type {number} */ (stack.pop());
      const y = Math.floor(p / w), x = p % w;
      [y0, x0, y1, x1] = [Math.min(y0, y), Math.min(x0, x), Math.max(y1, y + 1), Math.max(x1, x + 1)];
      area += 1;
      sum += map[p];
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy, xx = x + dx, q = yy * w + xx;
          if (yy >= 0 && yy < h && xx >= 0 && xx < w && !seen[q] && map[q] > THRESHOLD) {
            seen[q] = 1;
            stack.push(q);
          }
        }
      }
    }
    if (area >= MIN_AREA && sum / area >= BOX_SCORE) found.push([y0, x0, y1, x1]);
  }
  return found.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}

/** A region grown by DBNet's unclip distance, in the photo's pixels. @param {number[]} region */
function box([y0, x0, y1, x1]) {
  const p = /** @type {HTMLCanvasElement} */ (photo);
  const [h, w] = [y1 - y0, x1 - x0];
  const d = (h * w * UNCLIP) / (2 * (h + w));
  const [sy, sx] = [p.height / DET.height, p.width / DET.width];
  return [Math.max(0, (y0 - d) * sy), Math.max(0, (x0 - d) * sx), Math.min(p.height, (y1 + d) * sy), Math.min(p.width, (x1 + d) * sx)];
}

/** The recognizer's input for one box: the cut at height 48, values in [-1, 1], zeros to the right. @param {number[]} b */
async function line([y0, x0, y1, x1]) {
  const width = Math.min(REC.width, Math.max(1, Math.ceil((REC.height * (x1 - x0)) / (y1 - y0))));
  const cut = await kgen.Image.getImageArray(/** @type {HTMLCanvasElement} */ (photo), {
    srcX: x0, srcY: y0, srcW: x1 - x0, srcH: y1 - y0, dstW: width, dstH: REC.height,
    order: kgen.Image.Order.CHW, bias: [127.5, 127.5, 127.5], scale: [127.5, 127.5, 127.5],
  });
  const input = new Float32Array(3 * REC.height * REC.width);
  for (let row = 0; row < 3 * REC.height; row++) input.set(cut.subarray(row * width, (row + 1) * width), row * REC.width);
  return input;
}

/** Greedy CTC: the best character per column, repeats merged, blanks dropped; and the mean score of those kept.
 * @param {Float32Array} scores @param {number} classes */
function decode(scores, classes) {
  let text = "", sum = 0, kept = 0, last = 0;
  for (let t = 0; t < scores.length / classes; t++) {
    const column = scores.subarray(t * classes, (t + 1) * classes);
    const best = kgen.Math.argmax(Array.from(column), 1)[0];
    if (best !== 0 && best !== last) {
      text += characters[best] ?? "?";
      sum += column[best];
      kept += 1;
    }
    last = best;
  }
  return { text, confidence: kept ? sum / kept : 0 };
}

async function read() {
  if (!photo) throw new Error("load an image first (a sample or a file)");
  if (!characters.length) throw new Error("the recognizer's characters (characters.json) are not loaded");
  const asked = chosenBackend();
  const [det, rec] = await Promise.all([runnerFor(DET.dir, asked), runnerFor(REC.dir, asked)]);
  $("backend").textContent = backendLine(det, asked);
  say(`detecting on ${det.backendName}`);
  let started = performance.now();
  const detInput = await kgen.Image.getImageArray(photo, {
    dstW: DET.width, dstH: DET.height, order: kgen.Image.Order.CHW,
    bias: [123.675, 116.28, 103.53], scale: [58.395, 57.12, 57.375],
  });
  det.getInputViews()[0].set(detInput);
  await det.run();
  const probability = det.getOutputViews()[0].toActual();
  $("det-ms").textContent = (performance.now() - started).toFixed(0);
  const found = regions(probability, DET.height, DET.width);
  const boxes = found.map(box);
  show(boxes);
  started = performance.now();
  /** @type {number[][]} */
  const recInputs = [];
  /** @type {string[]} */
  const texts = [];
  /** @type {number[]} */
  const confidences = [];
  for (const [k, b] of boxes.entries()) {
    say(`reading line ${k + 1} of ${boxes.length} on ${rec.backendName}`);
    const input = await line(b);
    rec.getInputViews()[0].set(input);
    await rec.run();
    const scores = rec.getOutputViews()[0].toActual();
    const { text, confidence } = decode(scores, characters.length);
    recInputs.push(Array.from(input));
    texts.push(text);
    confidences.push(confidence);
  }
  $("rec-ms").textContent = (performance.now() - started).toFixed(0);
  const body = $("lines");
  body.replaceChildren();
  texts.forEach((text, k) => {
    const row = body.insertRow();
    for (const cell of [k + 1, text, confidences[k].toFixed(2)]) row.insertCell().textContent = String(cell);
  });
  Object.assign(state, {
    backend: det.backendName, detInput: Array.from(detInput), probability: Array.from(probability), regions: found,
    boxes, recInputs, texts, confidences,
  });
  say(`read ${texts.length} lines on ${det.backendName}`);
}

imagePicker(SAMPLES, loadPhoto);
$("run").addEventListener("click", () => read().catch(fail));
fetch("characters.json")
  .then((r) => {
    if (!r.ok) throw new Error(`characters.json: HTTP ${r.status} (make examples builds it)`);
    return r.json();
  })
  .then((list) => (characters = ["blank", ...list, " "]))
  .catch(fail);
