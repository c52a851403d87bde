"""A converted model run in headless Chromium through the JS runtime (``kgen run``), and the static server a
user's page is served from (``kgen serve``)."""

from __future__ import annotations

import base64
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from kgen.browser.server import RUNTIME_DIR, StaticServer
from kgen.descriptor.schema import read_model
from kgen.errors import KgenError

RUNTIME_PREFIX = "/kgen/"

_RUN = """async ([dir, backend, feeds, bench, profile, tune]) => {
  const kgen = await import('/kgen/kgen.js');
  const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
  const decode = ([dtype, b64]) => (dtype === 'float32' ? new Float32Array(bytes(b64)) : new Int32Array(bytes(b64)));
  const encode = (a) => {
    const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const t0 = performance.now();
  const runner = await kgen.load(dir, {backendOrder: backend, tune: tune ? {budgetMs: tune} : 'cached'});
  const loaded = performance.now();
  const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, decode(v)]));
  let outputs = await runner.run(inputs);
  const first = performance.now();
  const tuning = tune ? await runner.tune() : runner.tuning;  // the tuning the first output started
  if (tune) outputs = await runner.run(inputs);  // with the kernels tuning chose
  const times = [];
  if (bench || profile) {
    const until = performance.now() + 1000;  // warm-up: at least 1 s and 3 runs
    for (let k = 0; k < 3 || performance.now() < until; k++) await runner.run(inputs);
  }
  if (bench) {
    for (let k = 0; k < bench; k++) {
      const s = performance.now();
      await runner.run(inputs);
      times.push(performance.now() - s);
    }
  }
  const result = {backend: runner.backendName, fallback: runner.fallbackReasons,
    outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, encode(v)])),
    load_ms: loaded - t0, first_run_ms: first - loaded, times_ms: times, tuning, records: runner.exportTuning(),
    profile: profile ? {kernels: await runner.profile({runs: profile}), nodes: runner.descriptor.nodes ?? []} : null};
  runner.destroy();
  return result;
}"""


def _as(dtype: str, name: str, array: np.ndarray) -> np.ndarray:
    """An input's values as the page takes them: float32, or int32 for an int32 or bool input (range-checked here:
    numpy would wrap an int64 beyond int32 silently)."""
    if dtype == "float32":
        return np.ascontiguousarray(array, np.float32)
    if array.dtype.kind not in "iub" and not np.array_equal(array, np.trunc(array)):
        raise KgenError(f"input '{name}' takes {dtype} values; its array holds fractions")
    if array.size and np.abs(array.astype(np.float64)).max() >= 2**31:
        raise KgenError(f"input '{name}': a value is beyond int32 ({int(np.abs(array.astype(np.float64)).max())})")
    return np.ascontiguousarray(array, np.int32)


def run_model(
    folder: Path | str,
    backend: str,
    feeds: Mapping[str, np.ndarray],
    bench: int = 0,
    profile: int = 0,
    timeout_s: float = 600,
    tune_ms: float = 0,
) -> dict[str, Any]:
    """Outputs by name (float32 arrays of the model's shapes), the backend that loaded and timings (ms):
    ``load_ms`` (load() with the files served locally), ``first_run_ms`` and, with ``bench`` runs after a warm-up,
    ``median_ms`` and the IQR. With ``profile`` rounds, ``profile``: each node's kernels timed alone
    (``profile_nodes``). With ``tune_ms``, the page tunes for that much of its time after the first output (the
    outputs and timings are then the tuned program's): ``tuning`` (its progress) and ``records`` (JSON lines)."""
    from kgen.browser.session import BrowserSession

    folder = Path(folder).resolve()
    model = read_model(folder)
    declared = {i["name"]: i["shape"] for i in model["inputs"]}
    dtypes = {i["name"]: i["dtype"] for i in model["inputs"]}
    unknown = sorted(set(feeds) - set(declared))
    if unknown:
        raise KgenError(f"--input {unknown[0]}: the model has no such input (inputs: {', '.join(declared)})")
    payload = {}
    for name, shape in declared.items():
        if name not in feeds:
            raise KgenError(f"input '{name}' (shape {'x'.join(map(str, shape))}) is not given: --input {name}=FILE.npy")
        array = np.asarray(feeds[name])
        if array.size != int(np.prod(shape)):
            raise KgenError(f"input '{name}' needs shape {shape}, got {list(array.shape)}")
        payload[name] = [dtypes[name], base64.b64encode(_as(dtypes[name], name, array).tobytes()).decode()]
    with BrowserSession(job_timeout_s=timeout_s, mounts={"/model/": folder, RUNTIME_PREFIX: RUNTIME_DIR}) as session:
        result = session.evaluate(_RUN, ["/model", backend, payload, bench, profile, tune_ms])
    shapes = {o["name"]: o["shape"] for o in model["outputs"]}
    result["outputs"] = {
        k: np.frombuffer(base64.b64decode(v), np.float32).reshape(shapes[k]) for k, v in result["outputs"].items()
    }
    profiled = result.pop("profile")
    if profiled is not None:
        result["profile"] = profile_nodes(profiled["kernels"], profiled["nodes"])
    times = result.pop("times_ms")
    if times:
        q1, _, q3 = statistics.quantiles(times, n=4)
        result.update(median_ms=statistics.median(times), iqr_ms=q3 - q1, runs=len(times))
    return result


def profile_nodes(kernels: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kernel times summed per node (a kernel's name starts with its node's position, ``n12_``; WebGL's layout
    conversions, ``c3_``, are one row), slowest first, with each row's share of the sum and GFLOP/s where the
    descriptor gives the node's arithmetic."""
    rows: dict[str, dict[str, Any]] = {}
    for k in kernels:
        head = k["kernel"].split("_", 1)[0]
        index = int(head[1:]) if head[:1] == "n" and head[1:].isdigit() else None
        if index is not None and index < len(nodes):
            node = nodes[index]
            op = "+".join([node["op"], *node.get("epilogue", [])])
            row = rows.setdefault(node["name"], {"node": node["name"], "op": op, "how": node.get("how"), "ms": 0.0})
            row["flops"] = node.get("flops")
        else:
            row = rows.setdefault("(layout conversions)", {"node": "(layout conversions)", "op": "", "ms": 0.0})
        row["ms"] += k["ms"]
        row["kernels"] = row.get("kernels", 0) + 1
    total = sum(r["ms"] for r in rows.values()) or 1.0
    for r in rows.values():
        r["share"] = r["ms"] / total
        if r.get("flops") and r["ms"] > 0:  # a node faster than the timer's resolution has no rate
            r["gflops"] = r["flops"] / r["ms"] / 1e6
    return sorted(rows.values(), key=lambda r: -r["ms"])


def serve(folder: Path | str, port: int = 8000) -> None:
    """Serve ``folder`` at / and the runtime at /kgen/ on 127.0.0.1 (cross-origin isolated) until Ctrl-C."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KgenError(f"{folder}: not a directory")
    try:
        server = StaticServer({"/": folder, RUNTIME_PREFIX: RUNTIME_DIR}, port=port)
    except OSError as err:
        raise KgenError(f"cannot listen on 127.0.0.1:{port}: {err.strerror}") from None
    with server:
        print(
            f"kgen serve: {folder.resolve()} at {server.url('/')}  (the runtime at {server.url(RUNTIME_PREFIX)}kgen.js)"
        )
        for page in sorted(folder.glob("*/index.html")):
            print(f"kgen serve: page {server.url('/' + page.parent.name + '/')}")
        print("kgen serve: 127.0.0.1 only, cross-origin isolated (COOP/COEP); Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("kgen serve: stopped")
