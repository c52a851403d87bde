"""Tuning on the visitor's device (kgen/runtime/model/tuning.js): a model converted with candidates is tuned in
the page after its first output, in short tasks, computing what it computed before; the next load starts from
the choices made; a candidate made wrong on purpose is rejected; what the page measured imports as records that
a conversion then picks for that device class."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from kgen.descriptor.assemble import Options
from kgen.descriptor.convert import convert
from kgen.graph import zoo
from kgen.records.store import RecordStore

pytestmark = pytest.mark.browser

MODEL = "mobilenet_v3"
BACKENDS = ("webgpu", "wasm")
TUNE = """async ([dir, backend, feeds, tune]) => {
  const kgen = await import('/kgen.js');
  const longest = [];
  const seen = (list) => list.getEntries().forEach((e) => longest.push([e.startTime, e.duration]));
  const observer = new PerformanceObserver(seen);
  const runner = await kgen.load(dir, {backendOrder: backend, tune, threads: 1});
  const typed = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, Float32Array.from(v)]));
  const first = Array.from(Object.values(await runner.run(typed))[0]);
  const start = runner.tuning;
  let progress = start;
  if (typeof tune === 'object') {
    observer.observe({type: 'longtask'});
    progress = await runner.tune();  // the tuning the load started after the first output
    observer.disconnect();
  }
  const after = Array.from(Object.values(await runner.run(typed))[0]);
  const during = longest.filter(([s]) => progress.startedAt !== null && s >= progress.startedAt).map(([, ms]) => ms);
  const result = {first, after, start, progress, longTasks: during, variant: runner.variant,
                  records: runner.exportTuning(), device: runner.deviceClass};
  runner.destroy();
  return result;
}"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory, browser):
    root = tmp_path_factory.mktemp("tuning")
    zoo.save(zoo.MODELS[MODEL](), root / "model.onnx")
    options = Options(RecordStore("results/records.jsonl"), candidates=3)
    convert(root / "model.onnx", root / "tuned", BACKENDS, options=options)
    browser.server.mount("/tuning/", root)
    return root


def _feeds():
    return {k: v.ravel().tolist() for k, v in zoo.seeded_inputs(zoo.MODELS[MODEL](), 1).items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_page_tunes_after_its_first_output_and_the_next_load_starts_tuned(folder, browser, backend):
    tuned = browser.evaluate(TUNE, ["/tuning/tuned", backend, _feeds(), {"budgetMs": 4000, "sliceMs": 50}])
    progress = tuned["progress"]
    assert tuned["start"]["fromStart"] == 0 and progress["state"] in ("done", "budget spent"), progress
    assert progress["kernelsDone"] > 0 and progress["tried"] >= progress["kernelsDone"], progress
    assert progress["rejected"] == [] and progress["error"] is None, progress
    assert progress["spentMs"] < 4000 + 500 and progress["speedup"] >= 1
    # no task of the page's main thread over 50 ms while it tuned (a PerformanceObserver of long tasks)
    assert tuned["longTasks"] == [], (tuned["longTasks"], progress["longestTask"])
    np.testing.assert_allclose(tuned["after"], tuned["first"], rtol=1e-3, atol=1e-4)
    records = [json.loads(line) for line in tuned["records"].splitlines()]
    assert records and {r["device_class"] for r in records} == {tuned["device"]}
    assert all(r["backend"] == backend and r["median_ms"] > 0 for r in records)
    # the next load in this profile starts from the choices made, measures nothing, and computes the same
    again = browser.evaluate(TUNE, ["/tuning/tuned", backend, _feeds(), "cached"])
    assert again["start"]["fromStart"] == progress["swapped"] and again["start"]["tried"] == 0
    np.testing.assert_allclose(again["first"], tuned["after"], rtol=1e-5, atol=1e-6)


def test_the_pages_records_import_and_a_conversion_picks_them(folder, browser, tmp_path):
    tuned = browser.evaluate(TUNE, ["/tuning/tuned", "wasm", _feeds(), {"budgetMs": 3000}])
    (tmp_path / "page.jsonl").write_text(tuned["records"])
    store = tmp_path / "records.jsonl"
    imported = subprocess.run(
        [sys.executable, "-m", "kgen.cli", "records", "import", str(tmp_path / "page.jsonl"), "--records", str(store)],
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr
    page_records = RecordStore(store).best()
    assert page_records and {r.device_class for r in page_records} == {tuned["device"]}
    convert(folder / "model.onnx", tmp_path / "again", ["wasm"], options=Options(RecordStore(store)))
    nodes = json.loads((tmp_path / "again" / "wasm.json").read_text())["nodes"]
    exact = {n["record"] for n in nodes if n["how"] == "exact"}
    assert {r.key for r in page_records} <= exact


def _rehash(folder):
    model = json.loads((folder / "model.json").read_text())
    for backend in model["backends"].values():
        for entry in backend["variants"]:
            for e in (entry, entry.get("candidates")):
                if e:
                    data = (folder / e["file"]).read_bytes()
                    e["bytes"], e["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (folder / "model.json").write_text(json.dumps(model))


def test_a_candidate_made_wrong_is_rejected_and_never_used(folder, browser):
    """Each node's first candidate launches one tile (or workgroup) only: most of its output is left unwritten."""
    wrong = folder / "wrong"
    if not wrong.exists():
        import shutil

        shutil.copytree(folder / "tuned", wrong)
        path = wrong / "wasm.candidates.json"
        doc = json.loads(path.read_text())
        for node in doc["nodes"]:
            for kernel in node["options"][0]["kernels"]:
                kernel["grid"] = [1, 1, 1]
        path.write_text(json.dumps(doc))
        _rehash(wrong)
    tuned = browser.evaluate(TUNE, ["/tuning/wrong", "wasm", _feeds(), {"budgetMs": 4000}])
    rejected = tuned["progress"]["rejected"]
    assert rejected and {r["option"] for r in rejected} == {0}, rejected
    assert all("differs" in r["why"] for r in rejected)
    np.testing.assert_allclose(tuned["after"], tuned["first"], rtol=1e-3, atol=1e-4)


def test_threads_pick_the_variant_and_a_count_without_one_is_an_error(folder, browser):
    script = """async ([threads]) => {
      const kgen = await import('/kgen.js');
      try {
        const runner = await kgen.load('/tuning/tuned', {backendOrder: 'wasm', threads});
        const got = {variant: runner.variant, threads: runner.threads};
        runner.destroy();
        return got;
      } catch (err) { return {error: err.message}; }
    }"""
    assert browser.evaluate(script, [1]) == {"variant": "wasm", "threads": 1}
    error = browser.evaluate(script, [2])["error"]
    assert "1 threads, not the 2 asked for" in error, error


def test_a_page_loads_a_model_from_bytes_or_its_own_fetch(folder, browser):
    """`files` (name -> bytes, as a page that keeps models in IndexedDB has them) and `fetch` (the page's own) load
    the same model as the server does; a file missing from the map is an Error naming it."""
    script = """async ([feeds]) => {
      const kgen = await import('/kgen.js');
      const get = async (n) => new Uint8Array(await (await fetch(`/tuning/tuned/${n}`)).arrayBuffer());
      const shards = (await (await fetch('/tuning/tuned/model.json')).json()).weights.shards.map((s) => s.file);
      const names = ['model.json', 'wasm.json', 'wasm.candidates.json', ...shards];
      const files = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await get(n)])));
      const typed = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, Float32Array.from(v)]));
      const out = async (dir, options) => {
        const runner = await kgen.load(dir, {backendOrder: 'wasm', threads: 1, tune: 'off', ...options});
        const values = Array.from(Object.values(await runner.run(typed))[0]);
        runner.destroy();
        return values;
      };
      const asked = [];
      const own = (url) => { asked.push(url); return fetch(url.replace('memory://model', '/tuning/tuned')); };
      const { 'wasm.json': _, ...without } = files;
      let missing = null;
      try { await out('memory://model', {files: without}); } catch (err) { missing = err.message; }
      return {bytes: await out('memory://model', {files}), fetched: await out('memory://model', {fetch: own}),
              served: await out('/tuning/tuned', {}), asked, missing};
    }"""
    got = browser.evaluate(script, [_feeds()])
    assert got["bytes"] == got["served"] and got["fetched"] == got["served"]
    assert "memory://model/model.json" in got["asked"]
    assert "wasm.json" in got["missing"] and "not in files" in got["missing"], got["missing"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_fifty_loads_and_destroys_keep_one_device_and_the_page_working(folder, browser, backend):
    script = """async ([backend, feeds]) => {
      const kgen = await import('/kgen.js');
      let devices = 0;
      const request = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = function (...args) { devices++; return request.apply(this, args); };
      const typed = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, Float32Array.from(v)]));
      const outs = [];
      let compiled = 0;
      try {
        for (let k = 0; k < 50; k++) {
          const runner = await kgen.load('/tuning/tuned', {backendOrder: backend, threads: 1, tune: 'off'});
          outs.push(Array.from(Object.values(await runner.run(typed))[0]));
          if (k > 0) compiled += runner.compileCounts.compiled;
          runner.destroy();
        }
      } finally {
        GPUAdapter.prototype.requestDevice = request;
      }
      return {same: outs.every((o) => o.join() === outs[0].join()), devices, compiled};
    }"""
    got = browser.evaluate(script, [backend, _feeds()])
    assert got == {"same": True, "devices": got["devices"], "compiled": 0} and got["devices"] <= 1, got


BUSY = """async ([dir, feeds, runs]) => {
  const kgen = await import('/kgen.js');
  const typed = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, Float32Array.from(v)]));
  window.__runners ??= {};
  const time = async (runner, n) => {
    const ms = [];
    for (let k = 0; k < n; k++) {
      const t0 = performance.now();
      await runner.run(typed);
      ms.push(performance.now() - t0);
    }
    return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)];
  };
  window.__runners.chosen ??= await kgen.load(dir, {backendOrder: 'wasm', tune: 'off'});
  window.__runners.one ??= await kgen.load(dir, {backendOrder: 'wasm', tune: 'off', threads: 1});
  window.__runners.two ??= await kgen.load(dir, {backendOrder: 'wasm', tune: 'off', threads: 2});
  const {chosen, one, two} = window.__runners;
  // the runs at the chosen count: under load, a burst of slow 2-thread runs starts a comparison of 16 runs, half
  // of them on the other count by design, which are not the chosen count's
  const atChosen = async (runner, n) => {
    const ms = [];
    for (let k = 0; k < 300 && ms.length < n; k++) {
      const steady = runner.threadChoice.exploring === 0 && !runner.threadChoice.warming;
      const t0 = performance.now();
      await runner.run(typed);
      if (steady && runner.threadChoice.exploring === 0) ms.push(performance.now() - t0);
    }
    return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)];
  };
  await time(chosen, runs);  // the runs the choice is made on
  return {chosen: await atChosen(chosen, 30), one: await time(one, 15), two: await time(two, 15),
          threads: chosen.threads, comparisons: chosen.threadChoice.comparisons};
}"""


@pytest.fixture(scope="module")
def dcgan_threads(tmp_path_factory, browser):
    """The DCGAN generator converted for 2 threads and 1, with the shipped records (some of its nodes have records
    on one thread whose configs differ from their 2-thread ones) and candidates."""
    root = tmp_path_factory.mktemp("threads")
    zoo.save(zoo.MODELS["dcgan"](), root / "dcgan.onnx")
    options = Options(RecordStore("results/records.jsonl"), candidates=3)
    convert(root / "dcgan.onnx", root / "dcgan", ["wasm"], options=options, wasm_threads=[1, 2])
    browser.server.mount("/threads/", root)
    return root / "dcgan"


ALONE = """async ([dir, feeds, corrupt]) => {
  const kgen = await import('/kgen.js');
  const typed = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, Float32Array.from(v)]));
  const runner = await kgen.load(dir, {backendOrder: 'wasm', tune: 'off'});
  const one = await kgen.load(dir, {backendOrder: 'wasm', tune: 'off', threads: 1});
  if (corrupt) runner.descriptor.variant.single = {...runner.descriptor.variant.single, sha256: '00'};
  const two = Array.from(Object.values(await runner.run(typed))[0]);  // the single kernels are made after it
  Object.assign(runner.threadChoice, {chosen: 1, warming: null, exploring: 0, countdown: Infinity});
  const alone = Array.from(Object.values(await runner.run(typed))[0]);
  const single = await runner.alone();
  const profiled = (await runner.profile({runs: 1})).map((p) => p.kernel);
  const result = {two, alone, one: Array.from(Object.values(await one.run(typed))[0]), threads: runner.threads,
                  kernels: single && single.compiled.program.kernels.map((k) => k.name), profiled,
                  problem: runner.singleProblem};
  runner.destroy();
  one.destroy();
  return result;
}"""


def test_one_thread_of_a_threaded_program_runs_the_nodes_tuned_on_one_thread(dcgan_threads, browser):
    """Where the page chooses one thread, a threaded program runs each node's kernels of its record on one thread
    (``wasm-2t.single.json``) in place of its 2-thread kernels, with the same output; a single file that cannot be
    read leaves the threaded kernels, and says why."""
    model = json.loads((dcgan_threads / "model.json").read_text())
    entry = model["backends"]["wasm"]["variants"][0]
    assert entry["threads"] == 2 and entry["single"]["file"] == "wasm-2t.single.json", entry
    nodes = json.loads((dcgan_threads / "wasm-2t.single.json").read_text())["nodes"]
    program = json.loads((dcgan_threads / "wasm-2t.json").read_text())
    assert nodes and all(n["config"]["threads"] == 1 for n in nodes)
    for n in nodes:  # a config of its own, not the 2-thread one on one thread
        assert {**n["config"], "threads": 0} != {**program["nodes"][n["node"]]["config"], "threads": 0}, n
    feeds = {k: v.ravel().tolist() for k, v in zoo.seeded_inputs(zoo.MODELS["dcgan"](), 1).items()}
    got = browser.evaluate(ALONE, ["/threads/dcgan", feeds, False])
    assert got["threads"] == 1 and got["problem"] is None, got["problem"]
    ours = {k["name"] for n in nodes for k in n["kernels"]}
    assert ours and ours <= set(got["kernels"]) and ours <= set(got["profiled"])
    np.testing.assert_allclose(got["alone"], got["one"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["alone"], got["two"], rtol=1e-4, atol=1e-5)
    corrupt = browser.evaluate(ALONE, ["/threads/dcgan", feeds, True])
    assert corrupt["kernels"] is None and "wasm-2t.single.json: corrupted" in corrupt["problem"], corrupt["problem"]
    np.testing.assert_allclose(corrupt["alone"], got["two"], rtol=1e-4, atol=1e-5)


RANGES = """async ([dir, feeds]) => {
  const kgen = await import('/kgen.js');
  const r = await kgen.load(dir, {backendOrder: 'wasm', threads: 2, tune: 'off'});
  const typed = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, Float32Array.from(v)]));
  const want = Array.from(Object.values(await r.run(typed))[0]);
  const [d, launcher, size] = [r.descriptor, r.launcher, r.outputs[0].length];
  const out = r.buffers[d.outputs[0].buffer];
  launcher.write(out, new Float32Array(size).fill(NaN));
  for (const t of d.inputs) launcher.write(r.buffers[t.buffer], typed[t.name]);  // its storage is reused later
  const split = [];  // the threaded kernels run in ranges of 3 tiles, as tuning runs a long kernel
  for (let i = d.program.prepare; i < d.program.kernels.length; i++) {
    const tiles = launcher.tiles(r.compiled, i);
    for (let t = 0; t < tiles; t += 3) launcher.runTiles(r.compiled, r.bound, i, t, Math.min(tiles, t + 3));
    if (!r.compiled.kernels[i].alone && tiles > 3) split.push(r.compiled.kernels[i].name);
  }
  const got = Array.from((await launcher.read(out, {size})).subarray(0, size));
  const result = {want, got, split, threads: r.threads};
  r.destroy();
  return result;
}"""


def test_a_threaded_kernel_runs_in_ranges_of_its_tiles_split_between_the_threads(dcgan_threads, browser):
    """In-page tuning runs a long kernel a range of tiles per task, so that no task blocks the page: on 2 threads
    each range is split between them as a launch is (ResNet-50 tuned on 2 threads had 9 tasks of 50-104 ms)."""
    feeds = {k: v.ravel().tolist() for k, v in zoo.seeded_inputs(zoo.MODELS["dcgan"](), 1).items()}
    got = browser.evaluate(RANGES, ["/threads/dcgan", feeds])
    assert got["threads"] == 2 and len(got["split"]) >= 2, got["split"]
    np.testing.assert_allclose(got["got"], got["want"], rtol=1e-6, atol=1e-6)


POOL = """async ([dir, feeds]) => {
  const Original = window.Worker;
  let started = 0;
  window.Worker = class extends Original {
    constructor(...args) {
      super(...args);
      started++;
    }
  };
  try {
    const kgen = await import('/kgen.js');
    const r = await kgen.load(dir, {backendOrder: 'wasm', threads: 2, tune: 'off'});
    const typed = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, Float32Array.from(v)]));
    const before = Array.from(Object.values(await r.run(typed))[0]);
    const progress = await r.tune({budgetMs: 4000});
    const after = Array.from(Object.values(await r.run(typed))[0]);
    const result = {before, after, progress, started, threads: r.threads};
    r.destroy();
    return result;
  } finally {
    window.Worker = Original;
  }
}"""


def test_a_threaded_programs_candidates_and_swaps_share_its_workers(dcgan_threads, browser):
    """In-page tuning on 2 threads binds each candidate over the runner's memory: they join the memory's one pool
    of workers, so a runner starts one worker at most however many candidates it tries (it started one per candidate,
    whose spin after a launch took a core from the next candidate's) and computes what it computed before."""
    feeds = {k: v.ravel().tolist() for k, v in zoo.seeded_inputs(zoo.MODELS["dcgan"](), 1).items()}
    got = browser.evaluate(POOL, ["/threads/dcgan", feeds])
    progress = got["progress"]
    assert got["threads"] == 2 and progress["error"] is None and progress["tried"] >= 3, progress
    assert got["started"] <= 1, got["started"]  # none where the load took over a parked runner's
    np.testing.assert_allclose(got["after"], got["before"], rtol=1e-4, atol=1e-5)


def test_the_thread_count_is_chosen_on_the_pages_runs_and_again_when_a_core_is_taken(dcgan_threads, browser):
    """The DCGAN generator's 2-thread program, idle: the page keeps 2 threads where they beat its 1-thread program.
    With a process spinning on one of the two cores, the workers wait for it: the runs slow down, the page
    compares again and runs no slower than 1.15x the 1-thread program."""
    feeds = {k: v.ravel().tolist() for k, v in zoo.seeded_inputs(zoo.MODELS["dcgan"](), 1).items()}
    idle = browser.evaluate(BUSY, ["/threads/dcgan", feeds, 60])
    assert idle["comparisons"] >= 1, idle
    if idle["two"] < idle["one"] / 1.3:  # where 2 threads are clearly faster, the page runs 2
        assert idle["threads"] == 2, idle
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        loaded = browser.evaluate(BUSY, ["/threads/dcgan", feeds, 40])
    finally:
        busy.kill()
        busy.wait()
    browser.evaluate("() => { Object.values(window.__runners).forEach((r) => r.destroy()); window.__runners = {}; }")
    assert loaded["chosen"] <= 1.15 * loaded["one"], (idle, loaded)
