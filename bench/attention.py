"""The fused attention kernel against the chain of kernels it replaces, in the same models on each backend.

    python -m bench.attention [--model minilm --model deit_small] [--backend wasm ...] [--rounds 2]

Each zoo model is converted twice, as shipped and with ``--unfused attention``. In each round, on each backend,
both are run side by side in fresh pages: every node's kernels timed alone (``kgen run --profile``) and the whole
model (``kgen run --bench``). Attention's time is the attention nodes' in the first, and the nodes they replace
(scores, softmax, product with V) in the second. Both conversions take the same tuning records. WebGPU and WebGL
run on SwiftShader here: software figures. The rows measured replace those of the same model and backend in
--out; each row names its date, CPU and commit. Run it on a quiet machine."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.store import code_version, replace_rows
from kgen.atomic import write_text_atomic
from kgen.browser.model_run import run_model
from kgen.descriptor.assemble import Options
from kgen.descriptor.convert import convert
from kgen.graph import zoo
from kgen.graph.onnx import from_model
from kgen.graph.passes import optimize
from kgen.records.store import RecordStore, host_cpu

BACKENDS = ("wasm", "js", "webgpu", "webgl")
SOFTWARE = ("webgpu", "webgl")


def chain_nodes(model) -> tuple[set[str], set[str]]:
    """The names of the attention nodes (fused) and of the nodes of their chains (unfused)."""
    graph = from_model(model)
    fused, unfused = optimize(graph), optimize(graph, unfused=["attention"])
    attention = {n.name for n in fused.nodes if n.op == "attention"}
    kept = {n.name for n in fused.nodes}
    return attention, {n.name for n in unfused.nodes if n.name not in kept or n.name in attention}


def measure(folder: Path, backend: str, feeds, names: set[str], runs: int) -> dict[str, float]:
    profiled = run_model(folder, backend, feeds, profile=3)["profile"]
    timed = run_model(folder, backend, feeds, bench=runs)
    return {
        "attention_ms": sum(r["ms"] for r in profiled if r["node"] in names),
        "model_median_ms": timed["median_ms"],
        "model_iqr_ms": timed["iqr_ms"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", choices=("minilm", "deit_small", "vit", "bert"))
    parser.add_argument("--backend", action="append", choices=("wasm", "js", "webgpu", "webgl"))
    parser.add_argument("--rounds", type=int, default=2, help="side-by-side rounds (default 2)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs of the whole model per round")
    parser.add_argument("--records", default="results/records.jsonl", help="the tuning records both conversions use")
    parser.add_argument("--out", default="results/attention.json")
    args = parser.parse_args(argv)
    options = Options(records=RecordStore(args.records))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.model or ["minilm"]:
            model = getattr(zoo, name)()
            feeds = zoo.seeded_inputs(model)
            path = zoo.save(model, Path(tmp) / f"{name}.onnx")
            attention, chain = chain_nodes(model)
            backends = args.backend or list(BACKENDS)
            folders = {}
            for variant, unfused in (("fused", []), ("unfused", ["attention"])):
                folders[variant] = Path(tmp) / f"{name}-{variant}"
                convert(path, folders[variant], backends, options=options, unfused=unfused)
            for backend in backends:
                seen: dict[str, list[dict[str, float]]] = {"fused": [], "unfused": []}
                for _ in range(args.rounds):
                    for variant, names in (("fused", attention), ("unfused", chain)):
                        seen[variant].append(measure(folders[variant], backend, feeds, names, args.runs))
                row: dict[str, Any] = {"model": name, "backend": backend, "software": backend in SOFTWARE}
                for variant, results in seen.items():
                    for key in results[0]:
                        row[f"{variant}_{key}"] = statistics.median(r[key] for r in results)
                row["attention_gain"] = row["unfused_attention_ms"] / row["fused_attention_ms"]
                row["model_gain"] = row["unfused_model_median_ms"] / row["fused_model_median_ms"]
                rows.append(row)
                label = " (software)" if row["software"] else ""
                print(
                    f"{name} {backend}{label}: attention {row['fused_attention_ms']:.2f} ms fused, "
                    f"{row['unfused_attention_ms']:.2f} ms as the chain ({row['attention_gain']:.2f}x); model "
                    f"{row['fused_model_median_ms']:.1f} against {row['unfused_model_median_ms']:.1f} ms",
                    flush=True,
                )
    stamp = {"date": time.strftime("%Y-%m-%d"), "cpu": host_cpu(), **code_version(), "rounds": args.rounds}
    out = Path(args.out)
    merged = replace_rows(out, [{**stamp, **r} for r in rows], key=lambda r: (r["model"], r["backend"]))
    write_text_atomic(out, json.dumps({"rows": merged}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
