"""Build what the example pages load and is not in git: the sample photos, the seeded ResNet-50 and its converted
folder, and the digits generator's converted folders (float32 and eightbit). What exists is kept (--force rebuilds).

    python -m examples.build [--root examples] [--force]      (make examples; make demo serves the result)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from kgen.descriptor.assemble import Options
from kgen.descriptor.convert import convert
from kgen.errors import KgenError
from kgen.graph import zoo
from kgen.records.store import RecordStore

HERE = Path(__file__).resolve().parent
RECORDS = HERE.parent / "results" / "records.jsonl"
BACKENDS = ("webgpu", "webgl", "wasm", "js")
SAMPLES = ("chelsea", "coffee", "astronaut", "rocket")  # skimage.data; licences in the page and the README
THREADS = (1, 2)  # wasm variants; the page loads the best it can run


def samples(folder: Path, force: bool) -> None:
    import skimage.data
    import skimage.io

    folder.mkdir(parents=True, exist_ok=True)
    for name in SAMPLES:
        path = folder / f"{name}.png"
        if force or not path.exists():
            tmp = path.with_suffix(".tmp.png")
            skimage.io.imsave(tmp, getattr(skimage.data, name)(), check_contrast=False)
            tmp.replace(path)


def converted(model: Path, out: Path, options: Options, force: bool, encoding: str = "fp32") -> None:
    if (out / "model.json").exists() and not force:
        print(f"examples: {out} is there (--force rebuilds it)")
        return
    started = time.perf_counter()
    summary = convert(model, out, BACKENDS, encoding, options, force=True, wasm_threads=THREADS)
    if summary["failed"]:
        raise KgenError(f"{model}: conversion failed for {', '.join(summary['failed'])}")
    print(f"examples: {model.name} -> {out} ({encoding}, {time.perf_counter() - started:.0f} s)")


def build(root: Path = HERE, force: bool = False, records: Path = RECORDS) -> None:
    generator = root / "dcgan" / "generator.onnx"
    if not generator.exists():
        raise KgenError(f"{generator}: missing (it is in git; python -m examples.dcgan.train makes it anew)")
    options = Options(RecordStore(records) if records.is_file() else None)
    samples(root / "resnet50" / "samples", force)
    resnet = root / "resnet50" / "resnet50.onnx"
    if force or not resnet.exists():
        zoo.save(zoo.resnet50(), resnet)  # seeded weights: none can be downloaded here
    converted(resnet, root / "resnet50" / "model", options, force)
    converted(generator, root / "dcgan" / "model", options, force)
    converted(generator, root / "dcgan" / "model-eightbit", options, force, "eightbit")


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
