// The DCGAN seed page's flow with the runtime imported as a package ("kgen", as the seed required "webdnn") and
// bundled by esbuild: a digit typed, Generate clicked, the 28x28 image drawn large.
import * as kgen from "kgen";

let runner = null;

function gaussian() {
  const u = 1 - Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

async function generate() {
  const status = document.getElementById("status");
  try {
    runner = runner || (await kgen.load("model", { backendOrder: "wasm" }));
    const digit = Number(document.getElementById("digit").value);
    if (!Number.isInteger(digit) || digit < 0 || digit > 9) throw new Error("type a digit from 0 to 9");
    const values = new Float32Array(110);
    for (let i = 0; i < 100; i++) values[i] = gaussian();
    values[100 + digit] = 1;
    runner.inputs[0].set(values);
    await runner.run();
    const y = runner.outputs[0].toActual();
    const canvas = document.getElementById("canvas");
    kgen.Image.setImageArrayToCanvas(y, 28, 28, canvas, {
      dstW: canvas.width, dstH: canvas.height, scale: [127.5], bias: [127.5],
      color: kgen.Image.Color.GREY, order: kgen.Image.Order.CHW,
    });
    window.generated = { input: Array.from(values), output: Array.from(y) };
    status.textContent = `drew a ${digit} on ${runner.backendName}`;
  } catch (err) {
    status.textContent = `error: ${err.message}`;
  }
}

document.getElementById("generate").addEventListener("click", generate);
