"""Weight encodings against fp32 on ResNet-50: size, and agreement of the outputs over many seeded inputs.

    .venv/bin/python -m bench.encodings [--inputs 100] [--records results/records.jsonl] \\
        [--out results/bench/encodings.json]

For each encoding, the seeded ResNet-50 (kgen.graph.zoo) is converted for wasm and run natively (wasmtime: the
same kernels the page runs) on ``--inputs`` seeded inputs; onnxruntime's fp32 outputs are the reference. Reports
the weight bytes against fp32, how many inputs keep onnxruntime's top-1 class, and the lowest output cosine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from kgen.atomic import write_text_atomic
from kgen.descriptor.assemble import Options
from kgen.descriptor.convert import convert
from kgen.graph import zoo
from kgen.native import model as native
from kgen.records.store import RecordStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=100)
    parser.add_argument("--records", default="results/records.jsonl")
    parser.add_argument("--out", default="results/bench/encodings.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kgen-bench-encodings-") as tmp:  # removed however the run ends
        work = Path(tmp)
        model = zoo.resnet50()
        path = zoo.save(model, work / "resnet50.onnx")
        store = RecordStore(args.records) if Path(args.records).is_file() else None
        feeds = [zoo.seeded_inputs(model, seed) for seed in range(args.inputs)]
        want = [zoo.onnxruntime_outputs(path, f)[0].ravel() for f in feeds]
        report = {"model": "resnet50 (kgen.graph.zoo, seeded)", "inputs": args.inputs, "encodings": {}}
        for encoding in ("fp32", "fp16", "eightbit"):
            summary = convert(path, work / encoding, ["wasm"], encoding=encoding, options=Options(store))
            same, cosines = 0, []
            for f, w in zip(feeds, want, strict=True):
                (got,) = native.run(work / encoding, "wasm", f).values()
                got = got.ravel().astype(np.float64)
                same += int(got.argmax() == w.argmax())
                cosines.append(float(got @ w / (np.linalg.norm(got) * np.linalg.norm(w))))
            row = {
                "weight_bytes": summary["weight_bytes"],
                "ratio_to_fp32": summary["weight_ratio"],
                "top1_same": same,
                "min_cosine": min(cosines),
            }
            report["encodings"][encoding] = row
            print(
                f"{encoding:<9} {row['weight_bytes'] / 1e6:7.2f} MB ({row['ratio_to_fp32']:.3f}x)  top-1 same "
                f"{same}/{args.inputs}  lowest cosine {row['min_cosine']:.5f}",
                flush=True,
            )
        write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
        return 0


if __name__ == "__main__":
    sys.exit(main())
