// A page's use of the runtime, type-checked against kgen.d.ts (the types a user's editor sees).
import * as kgen from "kgen";

export async function classify(canvas: HTMLCanvasElement): Promise<number[]> {
  const runner: kgen.Runner = await kgen.load("./resnet50", { backendOrder: ["webgpu", "wasm"], progressCallback: (a, b) => a / b });
  const image = await kgen.Image.getImageArray(canvas, { dstW: 224, dstH: 224, order: kgen.Image.Order.CHW, color: kgen.Image.Color.BGR });
  runner.getInputViews()[0].set(image);
  await runner.run();
  const scores: Float32Array = runner.getOutputViews()[0].toActual();
  const named: Record<string, Float32Array> = await runner.run({ [runner.inputs[0].name]: image });
  kgen.Image.setImageArrayToCanvas(named[runner.outputs[0].name], 28, 28, canvas, { color: "GREY", scale: [255] });
  const name: kgen.BackendName = runner.backendName;
  return name === "js" ? kgen.Math.argmin(scores, 5) : kgen.Math.argmax(scores, 5);
}

export async function embed(ids: number[]): Promise<Float32Array> {
  const runner = await kgen.load("./minilm", { backendOrder: "wasm" });
  const mask = ids.map((id) => id !== 0);
  const [tokens] = runner.getInputViews();
  if (tokens.dtype === "int32") tokens.set(BigInt64Array.from(ids, (id) => BigInt(id)));
  const out = await runner.run({ input_ids: Int32Array.from(ids), attention_mask: mask });
  return out[runner.outputs[0].name];
}

export async function tuned(): Promise<string> {
  const runner = await kgen.load("./mobilenet", { backendOrder: ["webgpu", "wasm"], threads: 1, tune: { budgetMs: 10000 }, tuningCallback: (p) => p.speedup });
  await runner.run();
  const progress: kgen.TuningProgress = await runner.tune({ budgetMs: 100 });
  return `${runner.variant} ${runner.threads} ${runner.deviceClass} ${progress.kernelsDone} ${runner.exportTuning()}`;
}
