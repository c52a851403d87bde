"""Converted models in headless Chromium through the JS runtime (kgen/runtime/kgen.js): every reference model on
every backend it was converted for against onnxruntime, eightbit too; backend fallback; WebDNN's page calls
unchanged; hostile descriptors and bad inputs end in an Error, never a hang or a silently wrong result."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from kgen.checking import compare_model
from kgen.descriptor.assemble import Options
from kgen.descriptor.convert import convert, convert_many
from kgen.graph import zoo
from kgen.records.store import RecordStore

pytestmark = pytest.mark.browser

BACKENDS = ("wasm", "js", "webgpu", "webgl")
MODELS = {
    **dict.fromkeys(
        (
            *("mlp", "dcgan", "mobilenet_v2", "mobilenet_v3", "convnext"),
            *("vit", "bert", "roberta", "gpt2", "llama", "rnn_classifier"),
        ),
        BACKENDS,
    ),
    # the same seeded ResNet-50 runs on WebGPU and WebGL against onnxruntime in the example page's test
    "resnet50": ("wasm", "js"),
}  # name -> backends converted for
RUN = """async ([dir, backend, feeds]) => {
  const kgen = await import('/kgen.js');
  const runner = await kgen.load(dir, {backendOrder: backend});
  const float = (name) => runner.inputs.find((v) => v.name === name).dtype === 'float32';
  const typed = Object.entries(feeds).map(([k, v]) => [k, float(k) ? Float32Array.from(v) : Int32Array.from(v)]);
  const out = await runner.run(Object.fromEntries(typed));
  const outputs = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v)]));
  const result = {backend: runner.backendName, outputs};
  runner.destroy();
  return result;
}"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    jobs = []
    for name, backends in MODELS.items():
        zoo.save(zoo.MODELS[name](), root / f"{name}.onnx")
        jobs.append({"model": root / f"{name}.onnx", "out": root / name, "backends": backends})
    jobs.append({"model": root / "resnet50.onnx", "out": root / "resnet50_eightbit", "backends": ["wasm"]})
    jobs[-1]["encoding"] = "eightbit"
    convert_many(jobs)
    return root


@pytest.fixture(scope="module")
def page(models, browser):
    """The session's browser (one Playwright per process), serving the models too, with time for ResNet-50 on
    SwiftShader."""
    browser.server.mount("/models/", models)
    timeout, browser.job_timeout_s = browser.job_timeout_s, 240
    yield browser
    browser.job_timeout_s = timeout


def feeds_for(name, seed=1):
    return zoo.seeded_inputs(zoo.MODELS[name](), seed)


def run_in_page(page, folder, backend, feeds):
    plain = {k: v.ravel().tolist() for k, v in feeds.items()}
    return page.evaluate(RUN, [f"/models/{folder}", backend, plain])


@pytest.mark.parametrize(("name", "backend"), [(n, b) for n, bs in MODELS.items() for b in bs])
def test_model_matches_onnxruntime(models, page, name, backend):
    feeds = feeds_for(name)
    (want,) = zoo.onnxruntime_outputs(models / f"{name}.onnx", feeds)
    result = run_in_page(page, name, backend, feeds)
    assert result["backend"] == backend
    (got,) = result["outputs"].values()
    comparison = compare_model(np.array(got, np.float32).reshape(want.shape), want, backend)
    assert comparison.ok, f"{name} on {backend}: {comparison}"


def test_eightbit_resnet50_in_the_page(models, page):
    feeds = feeds_for("resnet50", seed=3)
    (want,) = zoo.onnxruntime_outputs(models / "resnet50.onnx", feeds)
    (got,) = run_in_page(page, "resnet50_eightbit", "wasm", feeds)["outputs"].values()
    got = np.array(got, np.float32).reshape(want.shape)
    assert compare_model(got, want, "wasm", "eightbit").ok
    assert got.argmax() == want.argmax()


def test_weights_larger_than_a_texture_are_uploaded_in_blocks_of_rows(models, page):
    """The MLP for WebGL in textures of 32x32 texels (4096 values RGBA): its 128x64 and 64x128 weights are two
    blocks of rows each, uploaded from their ranges of the weights' values (and the bias of each, in two); a
    device with smaller textures than a descriptor needs gets an error naming the texture."""
    convert(models / "mlp.onnx", models / "mlp_blocks", ["webgl"], options=Options(max_texture_size=32))
    weights = json.loads((models / "mlp_blocks" / "webgl.json").read_text())["weights"]
    blocks = [w for w in weights if "offset" in w]
    shapes = sorted((w["shape"], w["offset"]) for w in blocks if len(w["shape"]) == 2)
    assert shapes == [([32, 128], 0), ([32, 128], 4096), ([64, 64], 0), ([64, 64], 4096)]
    error = page.evaluate(
        """async () => {
          const get = WebGL2RenderingContext.prototype.getParameter;
          WebGL2RenderingContext.prototype.getParameter = function (p) {
            return p === this.MAX_TEXTURE_SIZE ? 16 : get.call(this, p);
          };
          const kgen = await import('/kgen.js');
          try { await kgen.load('/models/mlp_blocks', {backendOrder: ['webgl']}); return 'loaded'; }
          catch (e) { return e.message; }
        }"""
    )
    page.restart()  # the page with the small textures stays behind
    assert "texture is larger than this device's 16" in error, error
    feeds = feeds_for("mlp")
    (want,) = zoo.onnxruntime_outputs(zoo.MODELS["mlp"](), feeds)
    result = run_in_page(page, "mlp_blocks", "webgl", feeds)
    assert result["backend"] == "webgl"
    (got,) = result["outputs"].values()
    assert compare_model(np.array(got, np.float32).reshape(want.shape), want, "webgl").ok


def test_a_page_without_webgpu_loads_the_next_backend(page):
    result = page.evaluate(
        """async () => {
          Object.defineProperty(Navigator.prototype, 'gpu', {get: () => undefined, configurable: true});
          const kgen = await import('/kgen.js');
          const runner = await kgen.load('/models/mlp', {backendOrder: ['webgpu', 'wasm']});
          return {backend: runner.backendName, reasons: runner.fallbackReasons};
        }"""
    )
    page.restart()  # the page without WebGPU stays behind
    assert result["backend"] == "wasm"
    assert result["reasons"] == ["webgpu: WebGPU is not available in this browser"]


def test_the_page_loads_the_best_wasm_variant_it_can_run(models, page, tmp_path):
    """Variants for 1 and 2 threads, each with and without relaxed SIMD: this cross-origin isolated page with 2
    cores loads 2 threads and relaxed SIMD; a page that validates no relaxed SIMD loads the plain SIMD128 one."""
    folder = models / "variants"
    records = Options(RecordStore("results/records.jsonl"))  # the shipped tuned configs use relaxed SIMD's fma
    summary = convert(models / "dcgan.onnx", folder, ["wasm"], options=records, wasm_threads=[1, 2])
    assert summary["backends"]["wasm"]["variants"] == ["wasm-2t", "wasm-2t-simd128", "wasm", "wasm-simd128"]
    script = """async () => {
      const kgen = await import('/kgen.js');
      const runner = await kgen.load('/models/variants', {backendOrder: 'wasm'});
      const out = await runner.run({z: new Float32Array(110).fill(0.1)});
      return {threads: runner.descriptor.program.threads, relaxed: runner.descriptor.program.relaxed_simd,
              first: Array.from(Object.values(out)[0].slice(0, 4))};
    }"""
    best = page.evaluate(script)
    assert (best["threads"], best["relaxed"]) == (2, True)
    page.evaluate("() => { WebAssembly.validate = () => false; }")  # as a browser without relaxed SIMD says
    plain = page.evaluate(script)
    page.restart()
    assert (plain["threads"], plain["relaxed"]) == (2, False)
    np.testing.assert_allclose(plain["first"], best["first"], atol=1e-5)


def test_webgl_kernels_keep_their_records_render_targets_and_a_4_target_device_loads_its_variant(models, page):
    """The shipped WebGL records write 8 render targets (planes) a fragment; tensors written so are 2D array
    textures that the next layer reads through a conversion, except a fused residual, which the kernel adding it
    reads from the array itself. A device with 4 render targets (WebGL2's guarantee) loads the variant whose
    kernels write at most 4. Both match onnxruntime."""
    zoo.save(zoo.mobilenet_v2(size=64), models / "mobilenet_64.onnx")
    records = Options(RecordStore("results/records.jsonl"))
    summary = convert(models / "mobilenet_64.onnx", models / "planes", ["webgl"], options=records)
    assert summary["backends"]["webgl"]["variants"] == ["webgl", "webgl-4"]
    variants = json.loads((models / "planes" / "model.json").read_text())["backends"]["webgl"]["variants"]
    assert [v["draw_buffers"] for v in variants] == [8, 4]
    program = json.loads((models / "planes" / "webgl.json").read_text())["program"]
    planed = [b["name"] for b in program["buffers"] if b["layout"].get("planes", [0, 1])[1] == 8]
    read = {b["buffer"] for k in program["kernels"] for b in k["bindings"] if b["access"] == "read"}
    assert set(planed) & read  # a tensor in 8 planes read by a later kernel
    nodes_read = {
        b["buffer"]
        for k in program["kernels"]
        if "convert" not in k["name"]
        for b in k["bindings"]
        if b["access"] == "read"
    }
    assert set(planed) & nodes_read  # a fused residual, read by the kernel that adds it
    feeds = {"input": np.random.default_rng(5).standard_normal((1, 3, 64, 64)).astype(np.float32)}
    (want,) = zoo.onnxruntime_outputs(models / "mobilenet_64.onnx", feeds)
    script = """async ([x, module]) => {
      const kgen = await import(module);
      const runner = await kgen.load('/models/planes', {backendOrder: 'webgl'});
      const out = await runner.run({input: Float32Array.from(x)});
      const result = {draw: runner.descriptor.program.draw_buffers, out: Array.from(Object.values(out)[0])};
      runner.destroy();
      return result;
    }"""
    best = page.evaluate(script, [feeds["input"].ravel().tolist(), "/kgen.js"])
    page.evaluate("""() => {  // as a device with WebGL2's 4 render targets says
      const get = WebGL2RenderingContext.prototype.getParameter;
      WebGL2RenderingContext.prototype.getParameter = function (p) {
        return p === this.MAX_DRAW_BUFFERS || p === this.MAX_COLOR_ATTACHMENTS ? 4 : get.call(this, p);
      };
    }""")
    # a fresh instance of the runtime: the page's own keeps its WebGL launcher, which read the 8 targets
    fewer = page.evaluate(script, [feeds["input"].ravel().tolist(), "/kgen.js?device=4-targets"])
    page.restart()
    assert (best["draw"], fewer["draw"]) == (8, 4)
    for got in (best["out"], fewer["out"]):
        assert compare_model(np.array(got, np.float32).reshape(want.shape), want, "webgl").ok


def test_webdnn_page_calls_run_unchanged(models, page):
    """The ResNet-50 seed page's calls (SEEDS.md), with `WebDNN` bound to kgen's module."""
    result = page.evaluate(
        """async () => {
          const WebDNN = await import('/kgen.js');
          const canvas = document.createElement('canvas');
          canvas.width = 300; canvas.height = 200;
          const ctx = canvas.getContext('2d');
          const g = ctx.createLinearGradient(0, 0, 300, 200);
          g.addColorStop(0, '#ff8000'); g.addColorStop(1, '#0040c0');
          ctx.fillStyle = g; ctx.fillRect(0, 0, 300, 200);
          const runner = await WebDNN.load('/models/resnet50', {backendOrder: 'wasm'});
          const image = await WebDNN.Image.getImageArray(canvas, {dstW: 224, dstH: 224,
            order: WebDNN.Image.Order.CHW, color: WebDNN.Image.Color.BGR, bias: [123.68, 116.779, 103.939]});
          runner.getInputViews()[0].set(image);
          await runner.run();
          const scores = runner.getOutputViews()[0].toActual();
          const top5 = WebDNN.Math.argmax(scores, 5);
          const out = document.createElement('canvas');
          out.width = 224; out.height = 224;
          WebDNN.Image.setImageArrayToCanvas(image, 224, 224, out, {order: WebDNN.Image.Order.CHW,
            color: WebDNN.Image.Color.BGR, bias: [103.939, 116.779, 123.68]});  // per array channel, as WebDNN's
          const pixel = Array.from(out.getContext('2d').getImageData(0, 0, 1, 1).data);
          return {backend: runner.backendName, image: Array.from(image), scores: Array.from(scores), top5, pixel};
        }"""
    )
    assert result["backend"] == "wasm"
    image = np.array(result["image"], np.float32).reshape(1, 3, 224, 224)
    assert abs(image[0, 0, 0, 0] - (0 - 103.939)) < 1.5  # blue channel first (BGR) at the orange corner
    assert abs(image[0, 2, 0, 0] - (255 - 123.68)) < 1.5
    (want,) = zoo.onnxruntime_outputs(models / "resnet50.onnx", {"input": image})
    assert result["top5"] == list(np.argsort(-want[0], kind="stable")[:5])
    assert compare_model(np.array(result["scores"], np.float32).reshape(want.shape), want, "wasm").ok
    assert abs(result["pixel"][0] - 255) <= 2 and result["pixel"][3] == 255


def test_second_load_takes_weights_from_the_cache(models, page):
    shutil.copytree(models / "dcgan", models / "cache_probe")  # a folder no other test has loaded
    seen: list[str] = []
    page.page.on("request", lambda r: seen.append(r.url))
    script = """async () => {
      const kgen = await import('/kgen.js');
      await kgen.load('/models/cache_probe', {backendOrder: 'wasm'});
    }"""
    page.evaluate(script)
    first = [u for u in seen if "/weights/" in u]
    seen.clear()
    page.evaluate(script)
    assert first and not [u for u in seen if "/weights/" in u]


def test_weights_go_into_the_cache_after_the_first_output_not_during_the_load(models, page):
    """Writing them beside the load made ResNet-50's cold start 270 ms longer: they are kept once the page has
    its first output (and by the next load at the latest)."""
    shutil.copytree(models / "dcgan", models / "cache_after_run")
    shards = len(json.loads((models / "dcgan" / "model.json").read_text())["weights"]["shards"])
    script = """async (shards) => {
      const kgen = await import('/kgen.js');
      const kept = async () => (await caches.has('kgen-weights-v1'))
        ? (await (await caches.open('kgen-weights-v1')).keys()).filter((r) => r.url.includes('cache_after_run')).length
        : 0;
      const runner = await kgen.load('/models/cache_after_run', {backendOrder: 'wasm'});
      const atLoad = await kept();
      await runner.run({z: new Float32Array(110).fill(0.1)});
      const until = performance.now() + 10000;
      while ((await kept()) < shards && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
      return [atLoad, await kept()];
    }"""
    assert page.evaluate(script, shards) == [0, shards]


def test_bad_inputs_are_errors_and_the_runner_stays_usable(page):
    result = page.evaluate(
        """async () => {
          const kgen = await import('/kgen.js');
          const runner = await kgen.load('/models/mlp', {backendOrder: 'wasm'});
          const errors = [];
          for (const bad of [() => runner.run({x: new Float32Array(3)}), () => runner.run({x: new Int32Array(64)}),
                             () => runner.run({y: new Float32Array(64)}), () => runner.run({})]) {
            try { await bad(); errors.push(null); } catch (e) { errors.push(e.message); }
          }
          try { runner.inputs[0].set(new Float32Array(65)); errors.push(null); } catch (e) { errors.push(e.message); }
          const out = await runner.run({x: new Float32Array(64).fill(0.5)});
          return {errors, sum: out[runner.outputs[0].name].reduce((a, b) => a + b, 0)};
        }"""
    )
    errors = result["errors"]
    assert "input 'x' needs 64 values (shape [1,64]), got 3" in errors[0]
    assert "takes float32 values" in errors[1] and "Int32Array" in errors[1]
    assert "no input named 'y'" in errors[2]
    assert "input 'x' is not given" in errors[3]
    assert "holds 64 values" in errors[4]
    assert abs(result["sum"] - 1.0) < 1e-5  # a softmax: the runner still runs


def test_token_ids_and_masks_take_integers_and_bad_ones_are_errors_naming_the_input(models, page):
    feeds = feeds_for("bert")
    (want,) = zoo.onnxruntime_outputs(models / "bert.onnx", feeds)
    plain = {k: v.ravel().tolist() for k, v in feeds.items()}
    result = page.evaluate(
        """async (feeds) => {
          const kgen = await import('/kgen.js');
          const runner = await kgen.load('/models/bert', {backendOrder: 'wasm'});
          const n = feeds.input_ids.length;
          const good = {
            input_ids: BigInt64Array.from(feeds.input_ids, (v) => BigInt(v)),  // int64 as a page has them
            token_type_ids: feeds.token_type_ids,  // plain numbers
            attention_mask: feeds.attention_mask.map((v) => v === 1),  // booleans
          };
          const errors = [];
          const bad = [
            {...good, input_ids: Int32Array.from(feeds.input_ids, (v, i) => (i === 3 ? 100 : v))},  // past the table
            {...good, input_ids: Int32Array.from(feeds.input_ids, (v, i) => (i === 5 ? -101 : v))},
            {...good, input_ids: BigInt64Array.from(feeds.input_ids, (v, i) => BigInt(i === 2 ? 2 ** 40 : v))},
            {...good, input_ids: new Float32Array(n)},  // the wrong dtype
            {...good, input_ids: new Int32Array(n + 1)},  // the wrong length
            {...good, token_type_ids: feeds.token_type_ids.map((v, i) => (i === 1 ? 0.5 : v))},
            {...good, input_ids: Int32Array.from(feeds.input_ids, (v, i) => (i === 0 ? 2 ** 25 : v))},
          ];
          for (const feedsOf of bad) {
            try { await runner.run(feedsOf); errors.push(null); } catch (e) { errors.push(e.message); }
          }
          const out = await runner.run(good);
          const negative = await runner.run({...good, input_ids: good.input_ids.map((v) => v - 100n)});
          const result = {errors, out: Array.from(out[runner.outputs[0].name]),
                          negative: Array.from(negative[runner.outputs[0].name]),
                          dtypes: runner.inputs.map((v) => v.dtype)};
          runner.destroy();
          return result;
        }""",
        plain,
    )
    errors = result["errors"]
    assert "input 'input_ids': id 100 at [3] is not a row of" in errors[0] and "which has 100" in errors[0]
    assert "input 'input_ids': id -101 at [5] is not a row" in errors[1]
    assert "input 'input_ids': value 1099511627776 at [2] is beyond int32" in errors[2]
    assert "input 'input_ids' takes int32 values" in errors[3] and "Float32Array" in errors[3]
    assert f"input 'input_ids' needs {len(plain['input_ids'])} values" in errors[4]
    assert "input 'token_type_ids': value 0.5 at [1] is not an integer" in errors[5]
    assert "value 33554432 at [0] is beyond 2^24" in errors[6]
    assert result["dtypes"] == ["int32", "int32", "int32"]
    for got in (result["out"], result["negative"]):  # a negative id counts from the table's end, as in ONNX
        assert compare_model(np.array(got, np.float32).reshape(want.shape), want, "wasm").ok


@pytest.mark.parametrize(
    ("field", "value"),
    [("table", "nothing"), ("indices", "attention_maskx"), ("shape", [1, 16, 33]), ("output", "input_ids")],
)
def test_a_gather_that_lies_is_an_error(models, page, field, value):
    folder = models / f"bert_gather_{field}"
    if not folder.exists():
        shutil.copytree(models / "bert", folder)
        model = json.loads((folder / "model.json").read_text())
        model["gathers"][0][field] = value
        (folder / "model.json").write_text(json.dumps(model))
    error = page.evaluate(
        """async (dir) => {
          const kgen = await import('/kgen.js');
          try { await kgen.load(dir, {backendOrder: 'js'}); return null; } catch (e) { return e.message; }
        }""",
        f"/models/{folder.name}",
    )
    assert "must name a new output, a weight, an int32 input and their shape" in error


# -- hostile descriptors -----------------------------------------------------------------------------------------


def _rehash(folder):
    """Make model.json's sizes and digests agree with the backend files again (a lie the digests cannot see)."""
    model = json.loads((folder / "model.json").read_text())
    for backend in model["backends"].values():
        for entry in backend["variants"]:
            data = (folder / entry["file"]).read_bytes()
            entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (folder / "model.json").write_text(json.dumps(model))


def _numbers(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            if k != "summary":
                yield from _numbers(v, (*path, k))
    elif isinstance(node, list):
        for k, v in enumerate(node):
            yield from _numbers(v, (*path, k))
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield path


def _set(node, path, value):
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


HOSTILE = """async ([dir, x]) => {
  const kgen = await import('/kgen.js');
  try {
    const runner = await kgen.load(dir, {backendOrder: 'wasm'});
    const out = await runner.run({x: Float32Array.from(x)});
    return {ok: true, out: Array.from(Object.values(out)[0])};
  } catch (e) {
    return {ok: false, error: String(e.message)};
  }
}"""


def test_hostile_descriptors_end_in_errors(models, page):
    x = feeds_for("mlp")["x"]
    (want,) = zoo.onnxruntime_outputs(models / "mlp.onnx", {"x": x})
    cases = {}

    def variant(label, change):
        folder = models / f"hostile_{label}"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(models / "mlp", folder)
        change(folder)
        cases[label] = folder.name

    def edit_json(name, fn, rehash=False):
        def change(folder):
            data = json.loads((folder / name).read_text())
            fn(data)
            (folder / name).write_text(json.dumps(data))
            if rehash:
                _rehash(folder)

        return change

    variant("schema", edit_json("model.json", lambda m: m.update(schema_version=99)))
    variant("truncated_program", lambda f: (f / "wasm.json").write_bytes((f / "wasm.json").read_bytes()[:-100]))
    variant("flipped_program", lambda f: _flip(f / "wasm.json", 500))
    variant("flipped_shard", lambda f: _flip(f / "weights" / "000.bin", 40))
    variant("missing_shard", lambda f: (f / "weights" / "000.bin").unlink())
    variant(
        "long_shard", lambda f: (f / "weights" / "000.bin").write_bytes((f / "weights" / "000.bin").read_bytes() * 2)
    )
    variant(
        "short_shard", lambda f: (f / "weights" / "000.bin").write_bytes((f / "weights" / "000.bin").read_bytes()[:-8])
    )
    variant(
        "buffer_past_memory", edit_json("wasm.json", lambda p: p["program"]["buffers"][0].update(offset=1 << 40), True)
    )
    variant("weight_past_stream", edit_json("model.json", lambda m: m["weights"]["tensors"][0].update(offset=10**9)))
    variant("input_shape_lie", edit_json("model.json", lambda m: m["inputs"][0].update(shape=[1, 32])))
    variant(
        "truncated_kernel",
        edit_json(
            "wasm.json",
            lambda p: p["program"]["kernels"][0].update(binary=p["program"]["kernels"][0]["binary"][:40]),
            True,
        ),
    )
    expected = {
        "schema": "schema_version 99 is not supported",
        "truncated_program": "truncated or changed",
        "flipped_program": "corrupted",
        "flipped_shard": "weight shard corrupted",
        "missing_shard": "HTTP 404",
        "long_shard": "bytes model.json says",
        "short_shard": "weight shard has",
        "buffer_past_memory": "do not lie in the",
        "weight_past_stream": "where the stream puts it",
        "input_shape_lie": "must name one of model.json's with its shape",
        "truncated_kernel": "compile",
    }
    for label, folder in cases.items():
        r = page.evaluate(HOSTILE, [f"/models/{folder}", x.ravel().tolist()])
        assert not r["ok"] and expected[label] in r["error"], (label, r)

    # every number of model.json (outside the summary) changed in turn, two ways: an Error, or exactly the right
    # answer (a number that does not matter, such as eightbit's block size in an fp32 model)
    model = json.loads((models / "mlp" / "model.json").read_text())
    for path in _numbers(model):
        old = model
        for key in path:
            old = old[key]
        for value in (old * 2 + 1, -1):
            folder = models / "hostile_fuzz"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(models / "mlp", folder)
            mutated = json.loads(json.dumps(model))
            _set(mutated, path, value)
            (folder / "model.json").write_text(json.dumps(mutated))
            r = page.evaluate(HOSTILE, ["/models/hostile_fuzz", x.ravel().tolist()])
            if r["ok"]:
                got = np.array(r["out"]).reshape(want.shape)
                np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"{path} = {value}")
            else:
                assert r["error"].startswith("kgen"), (path, value, r["error"])


def _flip(path, at):
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0x55
    path.write_bytes(bytes(data))


def test_a_bundled_page_imports_the_runtime_as_a_package(models, page, tmp_path):
    """The DCGAN seed page's flow (digit typed, Generate, canvas drawn), built with esbuild from `import * as kgen
    from "kgen"`."""
    import subprocess
    from pathlib import Path

    js = Path(__file__).parent / "js"
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(js / "bundle_page" / "index.html", site)
    shutil.copytree(models / "dcgan", site / "model")
    esbuild = js / "node_modules" / ".bin" / "esbuild"
    built = subprocess.run(
        [
            str(esbuild),
            str(js / "bundle_page" / "main.js"),
            "--bundle",
            "--format=esm",
            f"--outfile={site / 'bundle.js'}",
        ],
        capture_output=True,
        text=True,
        cwd=js,
    )
    assert built.returncode == 0, built.stderr
    assert "export async function load" not in (site / "bundle.js").read_text()[:0]  # one file, no imports left
    assert 'from "kgen"' not in (site / "bundle.js").read_text()
    page.server.mount("/site/", site)
    s = page
    try:
        s.page.goto(s.server.url("/site/index.html"))
        s.page.fill("#digit", "7")
        s.page.click("#generate")
        s.page.wait_for_function("() => document.getElementById('status').textContent !== ''", timeout=60_000)
        assert s.page.text_content("#status") == "drew a 7 on wasm"
        generated = s.page.evaluate("() => window.generated")
        pixels = s.page.evaluate(
            "() => Array.from(document.getElementById('canvas').getContext('2d').getImageData(0, 0, 224, 224).data)"
        )
        s.page.fill("#digit", "12")
        s.page.click("#generate")
        s.page.wait_for_function("() => document.getElementById('status').textContent.startsWith('error')")
    finally:
        s.restart()  # back to the harness page for the tests after this one
    z = np.array(generated["input"], np.float32).reshape(1, 110)
    assert z[0, 107] == 1 and z[0, 100:].sum() == 1
    (want,) = zoo.onnxruntime_outputs(models / "dcgan.onnx", {"z": z})
    got = np.array(generated["output"], np.float32).reshape(want.shape)
    assert compare_model(got, want, "wasm").ok
    grey = np.array(pixels, np.uint8).reshape(224, 224, 4)[:, :, 0]
    assert grey.std() > 10  # not blank
    expected = np.clip(want[0, 0] * 127.5 + 127.5, 0, 255)[(np.arange(224) * 28) // 224][
        :, (np.arange(224) * 28) // 224
    ]
    assert np.abs(grey.astype(np.float64) - expected).mean() < 2.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_load_compiles_nothing_and_one_after_a_destroy_takes_its_state_over(models, page, backend):
    """A page keeps what it compiled by source (WebGL programs, WebGPU pipelines, wasm modules, JS functions): a
    second load of a model, beside the first, takes every kernel from it, compiles none, and computes the same.
    Once a runner is destroyed, the next load of the same model takes over its buffers (weights written and
    prepared) and bound kernels; a load of another model releases them first."""
    script = """async ([dir, other, backend, feeds]) => {
      const kgen = await import('/kgen.js');
      const typed = Object.fromEntries(Object.entries(feeds).map(([n, v]) => [n, Float32Array.from(v)]));
      const load = (d) => kgen.load(d, {backendOrder: backend});
      const out = async (r) => Array.from(Object.values(await r.run(typed))[0]);
      const a = await load(dir);
      const first = {counts: a.compileCounts, out: await out(a)};
      const b = await load(dir);
      const own = b.buffers !== a.buffers && !b.prepared;
      const beside = {counts: b.compileCounts, out: await out(b), own};
      b.destroy();
      const c = await load(dir);
      const took = {prepared: c.prepared, same: c.buffers === b.buffers};
      took.out = await out(c);
      c.destroy();
      (await load(other)).destroy();
      const d = await load(dir);
      const after = {same: d.buffers === c.buffers, out: await out(d)};
      a.destroy();
      d.destroy();
      return {first, beside, took, after};
    }"""
    feeds = {k: v.ravel().tolist() for k, v in feeds_for("dcgan").items()}
    got = page.evaluate(script, ["/models/dcgan", "/models/mlp", backend, feeds])
    first, beside = got["first"], got["beside"]
    kernels = first["counts"]["compiled"] + first["counts"]["reused"]
    assert kernels > 0 and beside["counts"] == {"compiled": 0, "reused": kernels} and beside["own"]
    assert got["took"]["prepared"] and got["took"]["same"]
    assert not got["after"]["same"]  # the other model's load released what the destroyed runner left
    assert beside["out"] == first["out"] == got["took"]["out"] == got["after"]["out"]
