"""The three example pages (examples/), built as `make demo` builds them and clicked through in headless Chromium
on every backend: the ResNet-50 page's top-5 against onnxruntime's for the image the page fed, the digits page's
canvas against the generator's output for the page's noise, the OCR page's boxes and text against onnxruntime's
on the inputs the page fed, and bad input shown in the page, which keeps working.

Screenshots go to $KGEN_SCREENSHOTS (`make screenshots` sets results/examples), else to a temporary folder."""

import base64
import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from examples.build import OCR_MODELS, build, ocr_model
from examples.ocr import pipeline
from kgen.browser.server import RUNTIME_DIR
from kgen.checking import compare_model

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BACKENDS = ("webgpu", "webgl", "wasm", "js")
BUILT = shutil.ignore_patterns(
    "model", "model-eightbit", "samples", "resnet50.onnx", "det", "rec", "characters.json", "__pycache__"
)
SEEDED_RANDOM = """(() => {  // Math.random from a seeded generator (mulberry32), so that a page's noise repeats
  let s = 12345;
  Math.random = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
})();"""
BASE64 = """const base64 = (bytes) => {  // chunks: a spread of every byte at once overflows the stack
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};"""
CANVAS = f"""() => {{
  {BASE64}
  const c = document.getElementById('canvas');
  return base64(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
}}"""
DEMO = f"""() => {{  // window.kgenDemo, its long number arrays as float32 bytes: JSON of 10^5 numbers takes seconds
  {BASE64}
  const pack = (v) => {{
    if (Array.isArray(v) && v.length >= 512 && v.every((x) => typeof x === 'number')) {{
      return {{ float32: base64(new Uint8Array(new Float32Array(v).buffer)) }};
    }}
    if (Array.isArray(v)) return v.map(pack);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, pack(x)]));
    return v;
  }};
  return pack(window.kgenDemo);
}}"""


def demo_state(page):
    """The page's ``window.kgenDemo``, its long number arrays as float32 numpy arrays."""

    def unpack(v):
        if isinstance(v, dict) and set(v) == {"float32"}:
            return np.frombuffer(base64.b64decode(v["float32"]), np.float32)
        if isinstance(v, list):
            return [unpack(x) for x in v]
        if isinstance(v, dict):
            return {k: unpack(x) for k, x in v.items()}
        return v

    return unpack(page.evaluate(DEMO))


def canvas(page):
    """The canvas's RGBA bytes."""
    return np.frombuffer(base64.b64decode(page.evaluate(CANVAS)), np.uint8)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site") / "examples"
    shutil.copytree(EXAMPLES, root, ignore=BUILT)
    build(root, threads=(1,))  # as make demo builds them, but for one wasm thread count (no test needs two)
    return root


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("KGEN_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(site, browser):
    """A fresh tab beside the harness page, on the examples as `kgen serve examples` serves them."""
    browser.server.mount("/kgen/", RUNTIME_DIR)
    browser.server.mount("/examples/", site)
    tab = browser.page.context.new_page()
    tab.add_init_script(SEEDED_RANDOM)
    tab.set_default_timeout(30_000)
    errors = []
    tab.on("pageerror", lambda error: errors.append(error))
    tab.goto_example = lambda path: tab.goto(browser.server.url(f"/examples/{path}"))
    yield tab
    tab.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def wait_for_message(page, prefix, timeout_s=300, stale=None):
    """Wait until the message line starts with ``prefix`` or shows an error other than ``stale`` (one shown
    before the action waited for, which its message has not replaced yet); its text."""
    page.wait_for_function(
        """([prefix, stale]) => { const m = document.getElementById('message');
                         return m.textContent.startsWith(prefix)
                           || (m.className === 'error' && m.textContent !== stale); }""",
        arg=[prefix, stale],
        timeout=timeout_s * 1000,
    )
    text = page.text_content("#message")
    assert page.get_attribute("#message", "class") != "error", text
    return text


def wait_for_error(page, stale=None):
    """Wait until the message line shows an error other than ``stale`` (one shown before); its text."""
    page.wait_for_function(
        """(stale) => { const m = document.getElementById('message');
                        return m.className === 'error' && m.textContent !== stale; }""",
        arg=stale,
    )
    return page.text_content("#message")


def open_sample_and_run(page, example, backend, sample):
    """Open an example page, pick the backend and a sample image, and click Run."""
    page.goto_example(f"{example}/index.html")
    page.check(f"input[name=backend][value={backend}]")
    page.click(f"button[data-sample={sample}]")
    wait_for_message(page, "image:")
    page.click("#run")


def onnxruntime(model, x):
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (name,) = (i.name for i in session.get_inputs())
    return session.run(None, {name: x})[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_resnet50_page_top5_matches_onnxruntime(page, site, shots, backend):
    open_sample_and_run(page, "resnet50", backend, "chelsea")
    assert wait_for_message(page, "classified on") == f"classified on {backend}"
    demo = demo_state(page)
    assert demo["backend"] == backend
    assert page.text_content("#backend").startswith(f"{backend} (loaded in")
    first, warm = float(page.text_content("#first-ms")), float(page.text_content("#warm-ms"))
    assert first > 0 and warm > 0
    x = np.array(demo["input"], np.float32).reshape(1, 3, 224, 224)
    assert x.std() > 0.1  # the photo, normalised, not an empty canvas
    want = onnxruntime(site / "resnet50" / "resnet50.onnx", x)[0]
    assert compare_model(np.array(demo["scores"], np.float32), want, backend).ok
    expected_top5 = list(np.argsort(-want)[:5])
    assert demo["top5"] == expected_top5
    rows = [[td.text_content() for td in tr.query_selector_all("td")] for tr in page.query_selector_all("#top5 tr")]
    names = json.loads((EXAMPLES / "resnet50" / "imagenet_classes.json").read_text())
    assert [(int(r[1]), r[2]) for r in rows] == [(int(k), names[k]) for k in expected_top5]
    page.screenshot(path=shots / f"resnet50-{backend}.png", full_page=True)


def test_resnet50_page_reports_bad_input_and_keeps_working(page):
    page.goto_example("resnet50/index.html")
    page.click("#run")
    first = wait_for_error(page)
    assert first == "load an image first (a sample, a URL or a file)"
    page.fill("#url", "/examples/resnet50/samples/no-such-photo.png")
    page.click("#load-url")
    second = wait_for_error(page, stale=first)
    assert second == "the image at /examples/resnet50/samples/no-such-photo.png could not be loaded"
    page.fill("#url", "/examples/resnet50/samples/coffee.png")
    page.click("#load-url")
    wait_for_message(page, "image: /examples/resnet50/samples/coffee.png", stale=second)
    page.check("input[name=backend][value=wasm]")
    page.click("#run")
    assert wait_for_message(page, "classified on") == "classified on wasm"


def test_resnet50_page_on_a_missing_model_folder_says_so(page):
    page.goto_example("resnet50/index.html?model=/examples/nowhere")
    error = wait_for_error(page)
    assert "no converted model at /examples/nowhere/model.json" in error
    page.click("button[data-sample=rocket]")
    wait_for_message(page, "image:", stale=error)  # the page still works
    page.click("#run")
    assert "/examples/nowhere" in wait_for_error(page, stale=error)


def generator_images(site, inputs):
    model = site / "dcgan" / "generator.onnx"
    return np.stack([onnxruntime(model, np.array(z, np.float32)[None])[0, 0] for z in inputs])


def canvas_cells(pixels, size, cells):
    """The grey level at the centre of each image pixel of a canvas showing ``cells`` x ``cells`` 28x28 images."""
    grey = np.array(pixels, np.uint8).reshape(size, size, 4)[:, :, 0].astype(np.float64)
    step = size / (28 * cells)
    centres = ((np.arange(28 * cells) + 0.5) * step).astype(int)
    return grey[np.ix_(centres, centres)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_digits_page_draws_the_generators_output(page, site, shots, backend):
    page.goto_example("dcgan/index.html")
    page.check(f"input[name=backend][value={backend}]")
    page.fill("#digit", "7")
    page.click("#generate")
    assert wait_for_message(page, "drew a") == "drew a 7"
    demo = demo_state(page)
    assert demo["backend"] == backend
    (z,) = demo["inputs"]
    assert z[107] == 1 and sum(z[100:]) == 1
    (want,) = generator_images(site, demo["inputs"])
    got = np.array(demo["outputs"][0], np.float32).reshape(28, 28)
    assert compare_model(got, want, backend).ok
    drawn = canvas_cells(canvas(page), 280, 1)
    assert drawn.std() > 20  # not blank
    assert np.abs(drawn - np.clip(want * 127.5 + 127.5, 0, 255)).max() <= 2.0
    page.screenshot(path=shots / f"dcgan-{backend}.png", full_page=True)


def test_digits_page_grid_and_eightbit_weights(page, site, shots):
    page.goto_example("dcgan/index.html")
    page.select_option("#encoding", "model-eightbit")
    page.click("#grid")
    wait_for_message(page, "drew every digit")
    demo = demo_state(page)
    assert demo["digits"] == [d for d in range(10) for _ in range(10)]
    assert all(z[100 + d] == 1 for z, d in zip(demo["inputs"], demo["digits"], strict=True))
    want = generator_images(site, demo["inputs"])
    got = np.array(demo["outputs"], np.float32).reshape(want.shape)
    assert compare_model(got, want, "wasm", "eightbit").ok
    drawn = canvas_cells(canvas(page), 280, 10)
    tiles = np.clip(want * 127.5 + 127.5, 0, 255).reshape(10, 10, 28, 28).transpose(0, 2, 1, 3).reshape(280, 280)
    assert np.abs(drawn - tiles).mean() < 3.0
    page.screenshot(path=shots / "dcgan-grid.png", full_page=True)


def test_digits_page_reports_bad_input_and_a_broken_model(page, site):
    broken = site / "dcgan" / "broken"
    shutil.copytree(site / "dcgan" / "model", broken, dirs_exist_ok=True)
    (broken / "model.json").write_text('{"format": "kgen-model", "schema_version": 1')  # cut short
    page.goto_example("dcgan/index.html?model=broken")
    page.fill("#digit", "12")
    page.click("#generate")
    assert wait_for_error(page) == "'12' is not a digit: type one from 0 to 9"
    page.fill("#digit", "4")
    page.click("#generate")
    page.wait_for_function("() => document.getElementById('message').textContent.includes('model.json')")
    assert page.get_attribute("#message", "class") == "error"
    page.goto_example("dcgan/index.html")
    page.fill("#digit", "4")
    page.click("#generate")
    assert wait_for_message(page, "drew a") == "drew a 4"


@pytest.mark.parametrize("backend", BACKENDS)
def test_ocr_page_reads_the_text_as_onnxruntime_does(page, site, shots, backend):
    open_sample_and_run(page, "ocr", backend, "page")
    demo_lines = wait_for_message(page, "read ")
    demo = demo_state(page)
    assert demo_lines == f"read {len(demo['texts'])} lines on {backend}" and demo["backend"] == backend
    (det_name, (_, _, h, w)), (rec_name, rec_shape) = ((n, s) for n, s in OCR_MODELS.values())
    x = np.array(demo["detInput"], np.float32).reshape(1, 3, h, w)
    want = onnxruntime(ocr_model(det_name), x)[0, 0]
    got = np.array(demo["probability"], np.float32).reshape(h, w)
    assert compare_model(got, want, backend).ok
    regions = pipeline.regions(want)
    assert len(demo["regions"]) == len(regions) >= 5
    for mine, theirs in zip(demo["regions"], regions, strict=True):
        assert np.abs(np.array(mine) - theirs).max() <= 1  # a pixel at the threshold may fall either way
    classes = pipeline.characters(ocr_model(rec_name))
    wants = [
        pipeline.ctc_text(onnxruntime(ocr_model(rec_name), np.array(v, np.float32).reshape(rec_shape))[0], classes)
        for v in demo["recInputs"]
    ]
    assert demo["texts"] == wants
    assert "Region-based segmentation" in wants  # the page's title line, read
    rows = [[td.text_content() for td in tr.query_selector_all("td")] for tr in page.query_selector_all("#lines tr")]
    assert [r[1] for r in rows] == wants
    drawn = canvas(page).reshape(-1, 4)
    assert ((drawn[:, 0] > 200) & (drawn[:, 1] < 40)).sum() > 500  # the boxes, drawn in red on a grey page
    page.screenshot(path=shots / f"ocr-{backend}.png", full_page=True)


def test_ocr_page_asks_for_an_image_first(page):
    page.goto_example("ocr/index.html")
    page.click("#run")
    assert wait_for_error(page) == "load an image first (a sample or a file)"
