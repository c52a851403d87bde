// @ts-check
// The ResNet-50 page of WebDNN's examples on kgen: a backend chosen, an image drawn into a 224x224 canvas, Run, and
// the top-5 ImageNet classes with the milliseconds per image. Any converted folder loads with ?model=DIR; the
// input's order (CHW or HWC) is read from the model, the normalisation is chosen on the page (or ?prep=caffe).
import { $, backendLine, chosenBackend, fail, imagePicker, kgen, loadImage, modelParam, runnerFor, say } from "../common.js";

const MODEL = modelParam("model");
const SAMPLES = ["chelsea", "coffee", "astronaut", "rocket"];
const PREP = {
  // value = (pixel - bias) / scale, per pixel channel in R, G, B order (WebDNN's convention)
  torchvision: { color: kgen.Image.Color.RGB, bias: [123.675, 116.28, 103.53], scale: [58.395, 57.12, 57.375] },
  caffe: { color: kgen.Image.Color.BGR, bias: [123.68, 116.779, 103.939], scale: [1, 1, 1] },
};
/** @type {Map<any, {first: number, warm: number}>} the first and the last warm run of each loaded runner */
const timings = new Map();
/** @type {string[]} */
let classes = [];
let imageReady = false;
/** What the page last computed, for tests and the console. */
const state = /** @type {any} */ (window).kgenDemo = { model: MODEL, input: null, scores: null, top5: null, backend: null };

/** Draw the image at `url` into the 224x224 canvas. @param {string} url */
async function drawImage(url) {
  const img = await loadImage(url);
  const ctx = $("canvas").getContext("2d");
  ctx.drawImage(img, 0, 0, 224, 224);
  imageReady = true;
  say(`image: ${url.startsWith("blob:") ? "the chosen file" : url} (${img.naturalWidth}x${img.naturalHeight}, drawn at 224x224)`);
}

/** Probabilities: the scores themselves if they are some already. @param {number[]} scores */
function softmax(scores) {
  const isProbability = scores.every((v) => v >= 0) && Math.abs(scores.reduce((a, b) => a + b, 0) - 1) < 1e-3;
  if (isProbability) return scores;
  const top = Math.max(...scores);
  const e = scores.map((v) => Math.exp(v - top));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** @param {number[]} top5 @param {number[]} probabilities */
function showTop5(top5, probabilities) {
  const body = $("top5");
  body.replaceChildren();
  top5.forEach((k, rank) => {
    const row = body.insertRow();
    for (const text of [rank + 1, k, classes[k] ?? `class ${k}`, `${(100 * probabilities[k]).toFixed(2)}%`]) {
      row.insertCell().textContent = String(text);
    }
  });
}

async function run() {
  if (!imageReady) throw new Error("load an image first (a sample, a URL or a file)");
  const asked = chosenBackend();
  const runner = await runnerFor(MODEL, asked);
  $("backend").textContent = backendLine(runner, asked);
  const shape = runner.inputs[0].shape;
  const order = shape[1] === 3 ? kgen.Image.Order.CHW : kgen.Image.Order.HWC;
  const prep = PREP[/** @type {"torchvision" | "caffe"} */ ($("prep").value)];
  const input = await kgen.Image.getImageArray($("canvas"), { dstW: 224, dstH: 224, order, ...prep });
  runner.getInputViews()[0].set(input);
  const seen = timings.get(runner);
  const times = seen ?? { first: NaN, warm: NaN };
  for (const label of seen ? ["warm"] : ["first", "warm"]) {
    say(`running on ${runner.backendName} (${label} run)`);
    const started = performance.now();
    await runner.run();
    times[/** @type {"first" | "warm"} */ (label)] = performance.now() - started;
  }
  timings.set(runner, times);
  const scores = Array.from(runner.getOutputViews()[0].toActual());
  const top5 = kgen.Math.argmax(scores, 5);
  showTop5(top5, softmax(scores));
  $("first-ms").textContent = times.first.toFixed(1);
  $("warm-ms").textContent = times.warm.toFixed(1);
  Object.assign(state, { input: Array.from(input), scores, top5, backend: runner.backendName });
  say(`classified on ${runner.backendName}`);
}

/**
 * Run `action` on a click; an error goes to the message line and the page stays usable.
 * @param {string} id @param {() => Promise<void>} action
 */
function onClick(id, action) {
  $(id).addEventListener("click", () => action().catch(fail));
}

async function describeModel() {
  try {
    const info = await (await fetch(`${MODEL}/model.json`)).json();
    const seeded = MODEL === "model";
    $("model-note").textContent = seeded
      ? "The model is kgen's ResNet-50 with seeded random weights (no pretrained weights can be downloaded here): " +
        "the pipeline is real, the classes it names are not. Open ?model=DIR for your own converted folder."
      : `Model: ${MODEL} (${info.name ?? "converted"}).`;
  } catch {
    throw new Error(`no converted model at ${MODEL}/model.json (convert one with kgen convert, or give ?model=DIR)`);
  }
}

imagePicker(SAMPLES, drawImage);
onClick("load-url", () => drawImage($("url").value.trim()));
onClick("run", run);
const prep = new URLSearchParams(location.search).get("prep");
if (prep && prep in PREP) $("prep").value = prep;
fetch("imagenet_classes.json")
  .then((r) => r.json())
  .then((names) => (classes = names))
  .catch(() => say("the ImageNet class names could not be loaded: classes are shown by number", true));
describeModel().catch(fail);
