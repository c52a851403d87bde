// @ts-check
// What the example pages share: the backend radio buttons, a runner loaded once per model folder and backend
// (as WebDNN's pages cache theirs), load progress, a message line that shows an error without stopping the page,
// and the photo pages' sample buttons, file input and image loading. The runtime comes from /kgen/kgen.js, where `kgen serve` puts it.
import * as kgen from "/kgen/kgen.js";

export { kgen };

/** @param {string} id */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return /** @type {any} */ (el);
}

/**
 * The message line: `say(text)` informs, `fail(error)` shows what went wrong; both replace the last message.
 * @param {string} text
 */
export function say(text, isError = false) {
  const line = $("message");
  line.textContent = text;
  line.className = isError ? "error" : "";
}

/** @param {unknown} error */
export function fail(error) {
  say(error instanceof Error ? error.message : String(error), true);
  console.error(error);
}

/**
 * The image at `url`, decoded; an Error naming the URL where it cannot be.
 * @param {string} url
 */
export async function loadImage(url) {
  const img = new Image();
  img.crossOrigin = "anonymous";
  img.src = url;
  try {
    await img.decode();
  } catch {
    throw new Error(`the image at ${url} could not be loaded`);
  }
  return img;
}

/**
 * A button per sample photo (`samples/NAME.png`) in #samples, and the #file input: each calls `show(url)`, and
 * an error goes to the message line.
 * @param {string[]} names @param {(url: string) => Promise<void>} show
 */
export function imagePicker(names, show) {
  for (const name of names) {
    const button = document.createElement("button");
    button.textContent = name;
    button.dataset.sample = name;
    button.addEventListener("click", () => show(`samples/${name}.png`).catch(fail));
    $("samples").append(" ", button);
  }
  $("file").addEventListener("change", () => {
    const file = $("file").files[0];
    if (file) show(URL.createObjectURL(file)).catch(fail);
  });
}

/** The backend the radio buttons name (webgpu, webgl, wasm or js). */
export function chosenBackend() {
  const checked = /** @type {HTMLInputElement | null} */ (document.querySelector("input[name=backend]:checked"));
  return checked ? checked.value : "wasm";
}

/** @type {Map<string, Promise<any>>} */
const runners = new Map();

/**
 * The runner for `dir` on `backend`, loaded on first use. The chosen backend comes first and the others follow,
 * so a browser without it still runs the model; `runner.backendName` and `runner.fallbackReasons` say what
 * happened. A failed load is forgotten, so the next click tries again.
 * @param {string} dir @param {string} backend
 */
export function runnerFor(dir, backend) {
  const key = `${dir}|${backend}`;
  let runner = runners.get(key);
  if (!runner) {
    const order = [backend, ...kgen.BACKENDS.filter((b) => b !== backend)];
    const started = performance.now();
    runner = kgen
      .load(dir, {
        backendOrder: order,
        progressCallback: (loaded, total) => say(`loading ${dir}: ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`),
      })
      .then((r) => Object.assign(r, { loadMs: performance.now() - started }));
    runner.catch(() => runners.delete(key));
    runners.set(key, runner);
  }
  return runner;
}

/**
 * A line on which backend runs: the one asked for, or the one that loaded instead and why.
 * @param {any} runner @param {string} asked
 */
export function backendLine(runner, asked) {
  if (runner.backendName === asked) return `${runner.backendName} (loaded in ${runner.loadMs.toFixed(0)} ms)`;
  return `${runner.backendName}, not ${asked}: ${runner.fallbackReasons.join("; ")}`;
}

/** The model folder: `?model=DIR` (relative to the page, or absolute), else `fallback`. @param {string} fallback */
export function modelParam(fallback) {
  return new URLSearchParams(location.search).get("model") || fallback;
}
