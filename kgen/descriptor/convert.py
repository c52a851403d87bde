"""``kgen convert``: an ONNX model becomes a folder a page loads.

DIR/model.json          the descriptor (schema ``SCHEMA_VERSION``, see ``kgen/descriptor/schema.py``): inputs,
                        outputs, weight shards and their tensors, and one program file per backend
DIR/<backend>.json      that backend's program: buffers (the memory plan), kernels in run order, which buffer
                        holds each input, output and weight, and how each node's kernel was chosen
DIR/<backend>.candidates.json  other configs of its nodes' kernels, which a page may try (``--candidates``)
DIR/wasm-Nt.single.json  a threaded program's nodes on one thread, where records on one thread differ: the page
                        runs them while it chooses one thread
DIR/weights/NNN.bin     the weights, in shards of at most 4 MiB

The folder is written under a temporary name beside DIR and renamed at the end: a failed conversion leaves
nothing. A backend that fails is reported and skipped.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from kgen import backends
from kgen.descriptor import weights as wt
from kgen.descriptor.assemble import Options, assemble
from kgen.descriptor.nodes import NodeCache
from kgen.descriptor.schema import FORMAT, SCHEMA_VERSION
from kgen.errors import KgenError
from kgen.graph import onnx as onnx_frontend
from kgen.graph.execute import evaluate, sample_feeds
from kgen.graph.ir import Graph
from kgen.graph.passes import optimize
from kgen.scheduling.space import DEFAULT_LIMITS

Progress = Callable[[str], None]

GUARANTEED_DRAW_BUFFERS = DEFAULT_LIMITS["max_draw_buffers"]  # WebGL2's render targets on any device
#: what a variant's entry in model.json says of its program, where the program has it: what a page must offer to
#: run it (wasm threads and relaxed SIMD, WebGL render targets)
VARIANT_KEYS = ("threads", "relaxed_simd", "draw_buffers")


def agreement(graph: Graph, encoding: str, encoded: wt.Encoded, seed: int = 0) -> dict[str, float]:
    """How the model's outputs with the decoded weights agree with fp32 on one seeded input (numpy references):
    cosine, the largest difference, and whether the top-1 index is the same."""
    rng = np.random.default_rng(seed)
    feeds = sample_feeds(graph, rng)
    want = evaluate(graph, feeds)
    decoded = wt.decode(encoded.entries, encoded.shards, encoding)
    got = evaluate(_with_constants(graph, decoded), feeds)
    a = np.concatenate([want[o].ravel() for o in graph.outputs]).astype(np.float64)
    b = np.concatenate([got[o].ravel() for o in graph.outputs]).astype(np.float64)
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) or 1.0))
    return {"cosine": cosine, "max_abs_diff": float(np.abs(a - b).max()), "top1_same": bool(a.argmax() == b.argmax())}


def _with_constants(graph: Graph, constants: Mapping[str, np.ndarray]) -> Graph:
    return dataclasses.replace(graph, constants={k: np.asarray(v, np.float32) for k, v in constants.items()})


def convert(
    model: Path | str,
    out: Path | str,
    backends: Sequence[str],
    encoding: str = "fp32",
    options: Options | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    force: bool = False,
    progress: Progress | None = None,
    wasm_threads: Sequence[int] | None = None,
    unfused: Sequence[str] = (),
) -> dict[str, Any]:
    """Convert and write; the summary (also written into model.json). Raises ``KgenError`` when nothing can be
    written (bad model, existing folder, every backend failed). On wasm, one variant per thread count in
    ``wasm_threads`` (default: the options' count), each also without relaxed SIMD where it uses it; the page
    loads the best variant it can run. Patterns named in ``unfused`` stay chains of kernels (to compare)."""
    say = progress or (lambda _: None)
    out = Path(out)
    if encoding not in wt.ENCODINGS:
        raise KgenError(f"unknown --encoding '{encoding}' (encodings: {', '.join(wt.ENCODINGS)})")
    if out.exists() and not force:
        raise KgenError(f"{out}: already exists (give --force to replace it)")
    options = options or Options()
    started = time.perf_counter()
    graph = onnx_frontend.load(model, input_shapes)
    say(f"read {model}: opset {graph.opset}, {len(graph.nodes)} nodes")
    if graph.fixed:
        say("fixed: " + ", ".join(f"{d}={n}" for d, n in graph.fixed.items()) + " (the model runs at these sizes only)")
    optimized = optimize(graph, unfused)
    say(f"passes: {len(graph.nodes)} -> {len(optimized.nodes)} nodes ({_ops_line(optimized)})")
    encoded = wt.encode(_in_use_order(optimized), encoding)
    fp32_bytes = sum(4 * int(np.prod(a.shape)) for a in optimized.constants.values())
    mb = encoded.nbytes / 1e6
    say(f"weights: {len(optimized.constants)} tensors, {mb:.1f} MB {encoding} in {len(encoded.shards)} shards")
    cache = NodeCache()
    assemblies, failures = {}, {}
    for backend in backends:
        t0 = time.perf_counter()
        try:
            assemblies[backend] = _variants(optimized, backend, options, cache, wasm_threads)
        except KgenError as err:
            failures[backend] = str(err)
            say(f"{backend}: FAILED: {err}")
            continue
        a = assemblies[backend][0][1]
        variants = f", {len(assemblies[backend])} variants" if len(assemblies[backend]) > 1 else ""
        say(
            f"{backend}: {len(a.program['kernels'])} kernels, planned memory {a.memory['planned_bytes'] / 1e6:.1f} MB "
            f"{variants}({time.perf_counter() - t0:.1f} s)"
        )
    if not assemblies:
        raise KgenError("no backend converted: " + "; ".join(f"{b}: {e}" for b, e in failures.items()))
    summary: dict[str, Any] = {
        "model": str(model),
        "fixed_dimensions": graph.fixed,
        "nodes_before": len(graph.nodes),
        "nodes_after": len(optimized.nodes),
        "ops_before": graph.summary(),
        "ops_after": optimized.summary(),
        "encoding": encoding,
        "weight_bytes": encoded.nbytes,
        "weight_bytes_fp32": fp32_bytes,
        "weight_ratio": encoded.nbytes / fp32_bytes if fp32_bytes else 1.0,
        "backends": {
            b: {
                "kernels": len(variants[0][1].program["kernels"]),
                "chosen": _chosen(variants[0][1].nodes),
                "memory": variants[0][1].memory,
                "reused_programs": sum(a.reused for _, a in variants),
                "variants": [name for name, _ in variants],
            }
            for b, variants in assemblies.items()
        },
        "failed": failures,
    }
    if encoding != "fp32":
        summary["agreement"] = agreement(optimized, encoding, encoded)
        say(f"{encoding} against fp32: cosine {summary['agreement']['cosine']:.5f}")
    descriptor = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "name": optimized.name,
        "inputs": [{"name": v.name, "shape": list(v.shape), "dtype": v.dtype} for v in optimized.inputs],
        "gathers": [
            {"output": g.output, "shape": list(optimized.shape(g.output)), "table": g.table, "indices": g.indices}
            for g in optimized.gathers
        ],
        "outputs": [
            {"name": o, "shape": list(optimized.shape(o)), "dtype": optimized.values[o].dtype}
            for o in optimized.outputs
        ],
        "weights": {
            "encoding": encoding,
            "block": wt.BLOCK,
            "total_bytes": encoded.nbytes,
            "shards": [],
            "tensors": encoded.entries,
        },
        "backends": {},
        "summary": summary,
    }
    _write(out, force, descriptor, encoded, assemblies)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    say(f"wrote {out} in {summary['seconds']:.1f} s")
    return summary


def convert_many(jobs: Sequence[Mapping[str, Any]], workers: int | None = None) -> list[dict[str, Any]]:
    """``convert(**job)`` for each job, a process a core (converting is Python, on one core): the summaries in the
    jobs' order. The processes are spawned, not forked, since a caller may hold threads (a browser's)."""
    workers = min(len(jobs), workers or os.cpu_count() or 1)
    if workers <= 1:
        return [convert(**job) for job in jobs]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_convert_job, jobs))


def _convert_job(job: Mapping[str, Any]) -> dict[str, Any]:
    return convert(**job)


def _write(out: Path, force: bool, descriptor: dict[str, Any], encoded: wt.Encoded, assemblies) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        (tmp / "weights").mkdir()
        for k, shard in enumerate(encoded.shards):
            name = f"weights/{k:03d}.bin"
            (tmp / name).write_bytes(shard)
            descriptor["weights"]["shards"].append({"file": name, "bytes": len(shard), "sha256": wt.digest(shard)})
        for backend, variants in assemblies.items():
            entries = []
            for variant, a in variants:
                data = json.dumps({"schema_version": SCHEMA_VERSION, **a.to_json()}, separators=(",", ":")).encode()
                name = variant + ".json"
                (tmp / name).write_bytes(data)
                if a.text:  # for people and tools; the page does not fetch it
                    (tmp / f"{variant}.wat").write_text(a.text)
                entry = {"file": name, "bytes": len(data), "sha256": wt.digest(data)}
                entry.update({k: a.program[k] for k in VARIANT_KEYS if k in a.program})
                if a.candidates:
                    entry["candidates"] = _write_candidates(tmp, variant, backend, a.candidates)
                if a.singles:  # fetched where the page chooses one thread
                    entry["single"] = _write_side(tmp, f"{variant}.single.json", {"nodes": a.singles})
                entries.append(entry)
            descriptor["backends"][backend] = {"variants": entries}
        (tmp / "model.json").write_text(json.dumps(descriptor, indent=1))
        if out.exists():
            if not force:
                raise KgenError(f"{out}: already exists (give --force to replace it)")
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_side(folder: Path, name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """A file beside a program that the page fetches only when it needs it; its entry in model.json."""
    data = json.dumps({"schema_version": SCHEMA_VERSION, **doc}, separators=(",", ":")).encode()
    (folder / name).write_bytes(data)
    return {"file": name, "bytes": len(data), "sha256": wt.digest(data)}


def _write_candidates(folder: Path, variant: str, backend: str, offers: list[dict[str, Any]]) -> dict[str, Any]:
    """``<variant>.candidates.json``, which a page fetches only to tune or where it holds a record of the page's
    device class; its entry in model.json, naming those device classes."""
    doc = {"tolerance": list(backends.get(backend).tolerance), "nodes": offers}
    devices = sorted({o["device"] for n in offers for o in n["options"] if o["device"]})
    return {**_write_side(folder, f"{variant}.candidates.json", doc), "devices": devices}


def _variants(graph: Graph, backend: str, options: Options, cache: NodeCache, wasm_threads) -> list:
    """The backend's programs as (name, assembly), best first: one; on wasm one per thread count (``wasm``,
    ``wasm-2t``), each followed by one without relaxed SIMD (``-simd128``) where it uses it; on WebGL, where a
    kernel writes more than the 4 render targets WebGL2 guarantees, one with at most 4 after it (``webgl-4``)."""
    spec = backends.get(backend)
    if spec.storage == "textures":
        a = assemble(graph, backend, options, cache)
        if a.program["draw_buffers"] <= GUARANTEED_DRAW_BUFFERS:
            return [(backend, a)]
        portable = dataclasses.replace(options, draw_buffers=GUARANTEED_DRAW_BUFFERS)
        return [(backend, a), (f"{backend}-{GUARANTEED_DRAW_BUFFERS}", assemble(graph, backend, portable, cache))]
    if not spec.threads:
        return [(backend, assemble(graph, backend, options, cache))]
    out = []
    for threads in sorted(set(wasm_threads or [options.threads]), reverse=True):
        name = backend + (f"-{threads}t" if threads > 1 else "")
        a = assemble(graph, backend, dataclasses.replace(options, threads=threads, relaxed_simd=True), cache)
        out.append((name, a))
        if a.program["relaxed_simd"]:
            plain = dataclasses.replace(options, threads=threads, relaxed_simd=False)
            out.append((name + "-simd128", assemble(graph, backend, plain, cache)))
    return out


def _in_use_order(graph: Graph) -> dict[str, np.ndarray]:
    """The graph's constants in the order its nodes first read them (the rest after, by name): the weights file is
    the same whatever order the passes left them in, and a page that streams it gets the first layers' first."""
    used = [t for node in graph.nodes for t in node.all_inputs if t in graph.constants]
    order = dict.fromkeys([*used, *sorted(graph.constants)])
    return {name: graph.constants[name] for name in order}


def _chosen(nodes: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for n in nodes:
        counts[n["how"]] = counts.get(n["how"], 0) + 1
    return counts


def _ops_line(graph: Graph) -> str:
    return ", ".join(f"{n} {op}" for op, n in graph.summary().items())
