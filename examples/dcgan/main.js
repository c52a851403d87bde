// @ts-check
// The digits page: the seed's flow (a digit typed, Generate, the 28x28 image drawn large) plus a 10x10 grid of
// every digit, on the backend and weight encoding chosen. ?model=DIR loads another converted generator.
import { $, backendLine, chosenBackend, fail, kgen, modelParam, runnerFor, say } from "../common.js";

const NOISE = 100;
const CLASSES = 10;
/** The runners that have run once: a runner's first run includes its shader or module compilation. */
const warm = new WeakSet();
/** What the page last drew, for tests and the console: the inputs it fed and the outputs it drew. */
const state = /** @type {any} */ (window).kgenDemo = { mode: null, digits: [], inputs: [], outputs: [], backend: null };

function gaussian() {
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

/** 100 fresh normal values and the one-hot label of `digit`. @param {number} digit */
function inputFor(digit) {
  const values = new Float32Array(NOISE + CLASSES);
  for (let i = 0; i < NOISE; i++) values[i] = gaussian();
  values[NOISE + digit] = 1;
  return values;
}

function digitAsked() {
  const text = $("digit").value.trim();
  const digit = Number(text);
  if (text === "" || !Number.isInteger(digit) || digit < 0 || digit > 9) {
    throw new Error(`'${text}' is not a digit: type one from 0 to 9`);
  }
  return digit;
}

async function loaded() {
  const asked = chosenBackend();
  const runner = await runnerFor(modelParam($("encoding").value), asked);
  $("backend").textContent = backendLine(runner, asked);
  return runner;
}

/** Run the generator on `values`; the 28x28 image in [-1, 1]. @param {any} runner @param {Float32Array} values */
async function generateOne(runner, values) {
  runner.inputs[0].set(values);
  await runner.run();
  return runner.outputs[0].toActual().slice();
}

/**
 * Draw an image of [-1, 1] values into the canvas at (x, y), `size` pixels a side.
 * @param {Float32Array} image @param {number} x @param {number} y @param {number} size
 */
function draw(image, x, y, size) {
  kgen.Image.setImageArrayToCanvas(image, 28, 28, $("canvas"), {
    dstX: x, dstY: y, dstW: size, dstH: size, scale: [127.5], bias: [127.5],
    color: kgen.Image.Color.GREY, order: kgen.Image.Order.CHW,
  });
}

async function generate() {
  const digit = digitAsked();
  const runner = await loaded();
  const values = inputFor(digit);
  const first = !warm.has(runner);
  const started = performance.now();
  const image = await generateOne(runner, values);
  const ms = performance.now() - started;
  warm.add(runner);
  draw(image, 0, 0, $("canvas").width);
  $("ms").textContent = `${ms.toFixed(2)} ms for one image${first ? " (the first run: it compiles the kernels)" : ""}`;
  Object.assign(state, { mode: "one", digits: [digit], inputs: [Array.from(values)], outputs: [Array.from(image)], backend: runner.backendName });
  say(`drew a ${digit}`);
}

async function grid() {
  const runner = await loaded();
  if (!warm.has(runner)) await generateOne(runner, inputFor(0)); // compile first: the grid times warm runs
  warm.add(runner);
  const cell = $("canvas").width / 10;
  const inputs = [], outputs = [], digits = [];
  let ms = 0;
  for (let digit = 0; digit < CLASSES; digit++) {
    for (let k = 0; k < 10; k++) {
      const values = inputFor(digit);
      const started = performance.now();
      const image = await generateOne(runner, values);
      ms += performance.now() - started;
      draw(image, k * cell, digit * cell, cell);
      inputs.push(Array.from(values));
      outputs.push(Array.from(image));
      digits.push(digit);
    }
  }
  $("ms").textContent = `${(ms / 100).toFixed(2)} ms per image, 100 images`;
  Object.assign(state, { mode: "grid", digits, inputs, outputs, backend: runner.backendName });
  say("drew every digit, 10 samples each: row k is the digit k");
}

$("generate").addEventListener("click", () => generate().catch(fail));
$("grid").addEventListener("click", () => grid().catch(fail));
$("digit").addEventListener("keydown", (/** @type {KeyboardEvent} */ e) => {
  if (e.key === "Enter") generate().catch(fail);
});
