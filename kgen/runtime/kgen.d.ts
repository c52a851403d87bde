// Types of kgen's model runtime (kgen.js). A WebDNN page ports by changing its import.

export type BackendName = "webgpu" | "webgl" | "wasm" | "js";

export interface LoadOptions {
  /** The backends to try, in order (a name or a list; WebDNN's "webassembly" and "fallback" are accepted).
   * Each is feature-detected; the first that loads wins. Default: every backend the model was converted for. */
  backendOrder?: BackendName | "webassembly" | "fallback" | Array<BackendName | "webassembly" | "fallback">;
  /** Called as weight bytes arrive: (loaded, total). */
  progressCallback?: (loaded: number, total: number) => void;
  /** wasm: load the program variant of this many threads and run it on that many (an Error lists the variants
   * where none has it). Default: the variant of the most threads this page can run, run on as many as are faster
   * (`runner.threads`). */
  threads?: number;
  /** Tuning on this device, for a model converted with `--candidates K`:
   * - "off": the shipped kernels;
   * - "cached" (default): the choices this device made on an earlier visit, else the descriptor's records of
   *   this device class;
   * - {budgetMs, sliceMs}: as "cached", then, after the first output, try the other candidates in idle time for at
   *   most budgetMs of the page's time, in tasks of about sliceMs (default 50) at most; faster kernels are swapped
   *   in between runs and kept for the next visit. */
  tune?: "off" | "cached" | { budgetMs: number; sliceMs?: number };
  /** Called as tuning goes, with `runner.tuning`. */
  tuningCallback?: (progress: TuningProgress) => void;
  /** Fetch the folder's files this way (URLs under `dir`): for models kept in IndexedDB, bundled, or behind
   * authentication. */
  fetch?: (url: string) => Promise<Response>;
  /** Or the folder's files themselves, by name within it (model.json, webgpu.json, weights/000.bin, ...). */
  files?: Record<string, ArrayBuffer | ArrayBufferView | string> | Map<string, ArrayBuffer | ArrayBufferView | string>;
}

export interface TuningProgress {
  /** idle, tuning, done, "budget spent", or failed (with `error`). */
  state: "idle" | "tuning" | "done" | "budget spent" | "failed";
  /** This device's class, as tuning records name it (e.g. "google-swiftshader", "wasm-8threads"). */
  deviceClass: string;
  /** Kernels (nodes) to tune and tuned so far. */
  kernels: number;
  kernelsDone: number;
  /** Candidates tried, swapped in, and rejected (their output differed, or they failed or hung). */
  tried: number;
  swapped: number;
  rejected: { node: string; option: number; why: string }[];
  /** The page's time tuning took, in ms, and when it started (performance.now()). */
  spentMs: number;
  startedAt: number | null;
  /** Its longest task (wall time, a GPU's wait included) and what it did. */
  longestTask: { ms: number; what: string };
  /** The run's estimated speed-up over the start of tuning. */
  speedup: number;
  /** Choices applied at load (kept from an earlier visit, or records of this device class). */
  fromStart: number;
  error: string | null;
}

/** What an input takes: float32 values for a float32 input; integers (or booleans) for int32 and bool ones. */
export type Feed = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | number[] | bigint[] | boolean[];

/** A model input or output: WebDNN's view. */
export class TensorView {
  readonly name: string;
  readonly shape: number[];
  readonly length: number;
  /** What it holds: float32, or int32 (int64 in the model: token ids, masks) and bool, given and read as integers. */
  readonly dtype: "float32" | "int32" | "bool";
  /** Copy values in (row-major in this tensor's shape); an Error if they do not fit or are not of its dtype (an
   * int32 tensor takes an Int32Array, a BigInt64Array or integers within ±2^24; a bool tensor booleans or 0/1). */
  set(array: Feed, offset?: number): void;
  /** The values (for an output, after a run); an int32 or bool output's are whole numbers (true is 1). */
  toActual(): Float32Array;
}

export class Runner {
  /** The backend that loaded. */
  readonly backendName: BackendName;
  readonly inputs: TensorView[];
  readonly outputs: TensorView[];
  /** Why each backend tried before this one did not load. */
  fallbackReasons: string[];
  /** What the load compiled and what it took from programs the page had compiled before (kernels of one source,
   * in this model or an earlier one, are compiled once per page). */
  readonly compileCounts: { compiled: number; reused: number };
  getInputViews(): TensorView[];
  getOutputViews(): TensorView[];
  /** Run on the input views' values (filling the output views), or on `feeds` by input name, returning the outputs
   * by name. */
  run(feeds?: Record<string, Feed>): Promise<Record<string, Float32Array>>;
  /** Time each kernel of a run alone (median ms over `runs` rounds, launch order; prepare kernels excepted). The
   * kernel names start with their node's position in the descriptor's `nodes` (`n12_...`); WebGL's layout
   * conversions start with `c`. */
  profile(options?: { runs?: number }): Promise<{ kernel: string; ms: number }[]>;
  /** The program file that loaded, without .json (e.g. "wasm-2t", "webgl-4"). */
  readonly variant: string;
  /** The threads a run uses (wasm; 1 elsewhere). Where the program has several and the load gave no `threads`,
   * the page chooses on its own runs: a few with each count, then the faster, and again when runs slow down (a
   * busy core makes the workers wait). */
  readonly threads: number;
  /** Why a threaded program's kernels tuned on one thread (`<variant>.single.json`) could not be made: runs on one
   * thread then run the threaded kernels alone. Null while they could. */
  readonly singleProblem: string | null;
  /** This device's class for the backend, as tuning records name it. */
  readonly deviceClass: string | null;
  /** Where tuning on this device stands. */
  readonly tuning: TuningProgress | null;
  /** Tune now (as the `tune` load option does after the first output); resolves to the final progress. */
  tune(options?: { budgetMs?: number; sliceMs?: number; callback?: (progress: TuningProgress) => void }): Promise<TuningProgress>;
  /** What tuning measured here, as JSON lines that `kgen records import` takes. */
  exportTuning(): string;
  /** Release the backend's buffers and workers (tuning stops at its next step). An idle runner's are kept for
   * 5 s for a load of the same model, which takes them over; a load of another model releases them first. */
  destroy(): void;
}

/** Load a folder written by `kgen convert` (a URL relative to the page, or absolute). */
export function load(dir: string, options?: LoadOptions): Promise<Runner>;

export const version: string;
export const BACKENDS: BackendName[];

export interface ImageOptions {
  srcX?: number;
  srcY?: number;
  srcW?: number;
  srcH?: number;
  dstX?: number;
  dstY?: number;
  dstW?: number;
  dstH?: number;
  order?: "CHW" | "HWC";
  color?: "RGB" | "BGR" | "GREY" | "RGBA";
  /** getImageArray: per pixel channel in R, G, B order; setImageArrayToCanvas: per channel of the array. */
  bias?: number[];
  scale?: number[];
}

export namespace Image {
  const Order: { readonly CHW: "CHW"; readonly HWC: "HWC" };
  const Color: { readonly RGB: "RGB"; readonly BGR: "BGR"; readonly GREY: "GREY"; readonly RGBA: "RGBA" };
  /** Pixels as values (pixel - bias) / scale in the order and colours asked. */
  function getImageArray(
    source: HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | ImageData | string,
    options?: ImageOptions,
  ): Promise<Float32Array>;
  /** Draw values (value * scale + bias) into a canvas, resized to dstW x dstH. */
  function setImageArrayToCanvas(
    array: ArrayLike<number>,
    imageW: number,
    imageH: number,
    canvas: HTMLCanvasElement | OffscreenCanvas,
    options?: ImageOptions,
  ): void;
}

declare namespace KMath {
  /** Indices of the k largest values, largest first. */
  function argmax(values: ArrayLike<number>, k?: number): number[];
  /** Indices of the k smallest values, smallest first. */
  function argmin(values: ArrayLike<number>, k?: number): number[];
}
export { KMath as Math };
