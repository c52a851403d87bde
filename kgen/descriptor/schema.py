"""The descriptor's schema, and a reader that checks a folder against it before anything runs.

model.json (``schema_version`` 1):

| field | meaning |
| --- | --- |
| ``format`` | ``"kgen-model"`` |
| ``schema_version`` | 1; a reader refuses any other |
| ``inputs``, ``outputs`` | ``[{name, shape, dtype}]``: what the page sets and reads, row-major; dtype ``float32``, |
| | ``int32`` (int64 in the model: token ids, masks) or ``bool``; kernels carry each in float32 |
| ``gathers`` | ``[{output, shape, table, indices}]``: rows of the weight ``table`` picked by the integer input |
| | (``shape``: the ids', or a view's of them, then a row's) |
| | ``indices`` (an embedding lookup), which the runtime gathers on the host after checking each id; the |
| | kernels read ``output`` as an input |
| ``weights.encoding`` | ``fp32``, ``fp16`` or ``eightbit`` (``weights.py``); ``block``: eightbit's block |
| ``weights.shards`` | ``[{file, bytes, sha256}]``: joined in order, they are one stream of ``total_bytes`` |
| ``weights.tensors`` | ``[{name, shape, offset, bytes}]``: each tensor's encoded bytes in that stream |
| ``backends`` | ``{backend: {variants: [{file, bytes, sha256, threads?, relaxed_simd?, draw_buffers?}]}}``: best first|
| | a variant may name side files (``{file, bytes, sha256}``): ``candidates`` (other configs per node, to tune |
| | in the page) and, on a threaded wasm variant, ``single`` (nodes' kernels on one thread, where a record |
| | measured on one thread differs: run in place of theirs while the page chooses one thread) |
| ``summary`` | what ``kgen convert`` reported (informational) |

A page loads the first variant it can run: wasm ``threads`` and ``relaxed_simd``, WebGL ``draw_buffers`` (the
render targets its kernels write; WebGL2 guarantees 4, most devices have 8).

<backend>.json: ``program`` (``buffers`` ``[{name, dtype, size, role, offset?}]``, ``kernels`` ``[{name, source
or, on wasm, binary (base64; the modules' text is in <variant>.wat, which no reader needs), workgroup, grid,
bindings}]``, ``prepare`` (kernels run once, after the weights are written),
``memory_bytes`` and ``threads`` on wasm/js), ``inputs``/``outputs`` ``[{name, shape, dtype, buffer}]`` (the
inputs the kernels read: the model's, then each gather's output),
``weights`` ``[{tensor, buffer, shape, offset?}]`` (``offset``: a block of the tensor's values from there on, where a
WebGL texture holds less than the tensor), ``nodes`` (how each kernel was chosen) and ``memory`` (the plan's sizes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from kgen.descriptor import weights as wt
from kgen.errors import KgenError

FORMAT = "kgen-model"
SCHEMA_VERSION = 1


class DescriptorError(KgenError):
    pass


def _fail(where: str, what: str) -> DescriptorError:
    return DescriptorError(f"{where}: {what}")


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise _fail(str(path), "missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _fail(str(path), f"not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise _fail(str(path), "not a JSON object")
    return data


def read_model(folder: Path | str) -> dict[str, Any]:
    folder = Path(folder)
    where = str(folder / "model.json")
    model = read_json(folder / "model.json")
    if model.get("format") != FORMAT:
        raise _fail(where, f"format is {model.get('format')!r}, not {FORMAT!r}")
    if model.get("schema_version") != SCHEMA_VERSION:
        raise _fail(
            where, f"schema_version {model.get('schema_version')!r} is not supported (supported: {SCHEMA_VERSION})"
        )
    return model


def read_weights(folder: Path | str, model: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every weight tensor decoded, after checking each shard's size and digest and that the tensors lie in the
    stream."""
    folder = Path(folder)
    w = model["weights"]
    encoding = w.get("encoding")
    if encoding not in wt.ENCODINGS:
        raise _fail("model.json", f"weights.encoding {encoding!r} is unknown")
    shards = []
    for s in w["shards"]:
        path = folder / s["file"]
        if not path.resolve().is_relative_to(folder.resolve()):
            raise _fail(s["file"], "outside the model folder")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _fail(str(path), "weight shard missing") from None
        if len(data) != s["bytes"] or wt.digest(data) != s["sha256"]:
            raise _fail(str(path), f"weight shard corrupted ({len(data)} bytes, expected {s['bytes']} with its digest)")
        shards.append(data)
    total = sum(len(s) for s in shards)
    if total != w["total_bytes"]:
        raise _fail("model.json", f"weights.total_bytes {w['total_bytes']} but the shards hold {total}")
    expected = 0  # tensors one after another, each on a 4-byte boundary
    for t in w["tensors"]:
        if t["offset"] != expected:
            where = f"weight {t['name']}: offset {t['offset']}"
            raise _fail("model.json", f"{where}, where the stream puts it at {expected}")
        expected = -(-(t["offset"] + t["bytes"]) // 4) * 4
        size = math.prod(t["shape"])
        if t["bytes"] != wt.encoded_bytes(size, encoding) or t["offset"] < 0 or t["offset"] + t["bytes"] > total:
            raise _fail("model.json", f"weight {t['name']}: offset {t['offset']} + {t['bytes']} bytes do not fit")
    return wt.decode(w["tensors"], shards, encoding)


def read_backend(folder: Path | str, model: dict[str, Any], backend: str, threads: int | None = None) -> dict[str, Any]:
    """The backend's program: its first (best) variant, or on wasm the first with ``threads`` threads."""
    folder = Path(folder)
    entry = model["backends"].get(backend)
    if entry is None:
        raise _fail("model.json", f"no {backend} program (converted: {', '.join(model['backends']) or 'none'})")
    variants = [v for v in entry["variants"] if threads is None or v.get("threads") == threads]
    if not variants:
        raise _fail("model.json", f"no {backend} variant with {threads} threads")
    entry = variants[0]
    path = folder / entry["file"]
    raw = path.read_bytes() if path.exists() else b""
    if not raw:
        raise _fail(str(path), "missing")
    if len(raw) != entry["bytes"] or wt.digest(raw) != entry["sha256"]:
        raise _fail(str(path), "corrupted (size or digest differs from model.json)")
    program = read_json(path)
    if program.get("schema_version") != SCHEMA_VERSION:
        raise _fail(str(path), f"schema_version {program.get('schema_version')!r} is not supported")
    return program
