"""`kgen convert`, `kgen run` and `kgen serve` as a user runs them: progress and a summary, one-line errors with a
non-zero exit and nothing left behind."""

import json
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from onnx import TensorProto, helper

from kgen.graph import zoo


def kgen(*args, cwd=None, timeout=300):
    cmd = [sys.executable, "-m", "kgen.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    zoo.save(zoo.dcgan_generator(), root / "dcgan.onnx")
    zoo.save(zoo.mlp(), root / "mlp.onnx")
    return root


def test_convert_prints_progress_and_a_summary(onnx_files, tmp_path):
    args = ["--out", str(tmp_path / "d"), "--backend", "wasm,js,webgl", "--explain", "--records", "none"]
    out = kgen("convert", str(onnx_files / "dcgan.onnx"), *args)
    assert out.returncode == 0, out.stderr
    assert "kgen convert: passes: 9 -> 4 nodes" in out.stderr
    assert "nodes: 9 before the passes, 4 after" in out.stdout
    assert "wasm: 5 kernels (3 default)" in out.stdout  # a transposed conv: its phases, then their interleaving
    assert "conv_transpose2d+relu" in out.stdout and "template default (no records given)" in out.stdout
    names = ["js.json", "model.json", "wasm.json", "wasm.wat", "webgl.json", "weights"]  # wasm.wat: the modules' text
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == names


def test_convert_json_and_a_skipped_backend_exit_1(tmp_path):
    from tests.test_descriptor import too_large_for_a_texture

    model = too_large_for_a_texture(tmp_path / "big.onnx")
    out = kgen("convert", str(model), "--out", str(tmp_path / "m"), "--backend", "js,webgl", "--json")
    assert out.returncode == 1
    summary = json.loads(out.stdout)
    assert list(summary["backends"]) == ["js"] and "webgl" in summary["failed"]
    assert out.stderr == ""


def _unsupported_op_model(path):
    node = helper.make_node("Det", ["a"], ["y"], name="mix")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])],
    )
    zoo.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def _dynamic_model(path):
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 224, 224])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 224, 224])],
    )
    zoo.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


def test_bad_models_are_one_line_errors_leaving_nothing(onnx_files, tmp_path):
    good = (onnx_files / "mlp.onnx").read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(good[: len(good) // 3])
    (tmp_path / "text.onnx").write_text("hello\n")
    _unsupported_op_model(tmp_path / "det.onnx")
    _dynamic_model(tmp_path / "dynamic.onnx")
    old = zoo.mlp()
    old.opset_import[0].version = 5
    zoo.save(old, tmp_path / "opset5.onnx")
    (tmp_path / "exists").mkdir()
    cases = [
        ("truncated.onnx", "out", "truncated.onnx: not a valid ONNX file"),
        ("text.onnx", "out", "text.onnx: not"),
        ("det.onnx", "out", "node 'mix' (Det): op type Det is not supported"),
        ("opset5.onnx", "out", "opset 5 is not supported (supported: 7 to 23)"),
        ("dynamic.onnx", "out", "graph input 'x' has a dynamic shape [nx3x224x224]: give it with --input-shape"),
        ("mlp.onnx", "exists", "exists: already exists (give --force to replace it)"),
    ]
    before = sorted(p.name for p in tmp_path.iterdir())
    running = []  # side by side: each is a process of its own
    for model, target, _ in cases:
        src = onnx_files / model if model == "mlp.onnx" else tmp_path / model
        cmd = [sys.executable, "-m", "kgen.cli", "convert", str(src), "--out", str(tmp_path / target), "--backend"]
        running.append(subprocess.Popen([*cmd, "wasm"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for (model, _, message), process in zip(cases, running, strict=True):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 2, (model, stderr)
        lines = [line for line in stderr.splitlines() if not line.startswith("kgen convert: ")]
        assert len(lines) == 1 and lines[0].startswith("kgen: error: ") and message in lines[0], (model, stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    ok = kgen(
        "convert",
        str(tmp_path / "dynamic.onnx"),
        "--out",
        str(tmp_path / "dyn"),
        "--backend",
        "js",
        "--input-shape",
        "x=1x3x8x8",
    )
    assert ok.returncode == 0, ok.stderr
    described = json.loads((tmp_path / "dyn" / "model.json").read_text())
    assert described["inputs"][0]["shape"] == [1, 3, 8, 8]
    assert described["summary"]["fixed_dimensions"] == {"x.n": 1}
    assert "fixed: x.n=1 (the model runs at these sizes only)" in ok.stderr


@pytest.mark.browser
def test_run_tune_writes_the_pages_records_and_is_an_error_without_candidates(onnx_files, tmp_path):
    z = tmp_path / "z.npy"
    np.save(z, np.random.default_rng(0).standard_normal((1, 110)).astype(np.float32))
    for name, k in (("plain", "1"), ("tunable", "3")):
        args = ["--out", str(tmp_path / name), "--backend", "wasm", "--records", "none", "--candidates", k]
        assert kgen("convert", str(onnx_files / "dcgan.onnx"), *args).returncode == 0
    run = ["--backend", "wasm", "--input", f"z={z}", "--tune", "2000", "--out", str(tmp_path / "o.npz")]
    out = kgen("run", str(tmp_path / "tunable"), *run, "--tune-out", str(tmp_path / "page.jsonl"))
    assert out.returncode == 0, out.stderr
    assert "tuning (wasm-" in out.stdout and "candidates tried" in out.stdout
    records = [json.loads(line) for line in (tmp_path / "page.jsonl").read_text().splitlines()]
    assert records and all(r["backend"] == "wasm" and r["median_ms"] > 0 for r in records)
    (tmp_path / "o.npz").unlink()
    none = kgen("run", str(tmp_path / "plain"), *run, "--tune-out", str(tmp_path / "none.jsonl"))
    assert none.returncode == 2 and "--tune: kgen: wasm has no candidates" in none.stderr, none.stderr
    assert not (tmp_path / "none.jsonl").exists() and not (tmp_path / "o.npz").exists()


def test_run_writes_outputs_and_times_runs(onnx_files, tmp_path):
    folder = tmp_path / "d"
    assert kgen("convert", str(onnx_files / "dcgan.onnx"), "--out", str(folder), "--backend", "wasm").returncode == 0
    z = np.random.default_rng(0).standard_normal((1, 110)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    out = kgen(
        "run",
        str(folder),
        "--backend",
        "wasm",
        "--input",
        f"z={tmp_path / 'z.npy'}",
        "--out",
        str(tmp_path / "o.npz"),
        "--bench",
        "--runs",
        "10",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["backend"] == "wasm" and summary["runs"] == 10 and summary["median_ms"] > 0
    (image,) = np.load(tmp_path / "o.npz").values()
    assert image.shape == (1, 1, 28, 28) and np.abs(image).max() <= 1.0
    missing = kgen("run", str(folder), "--backend", "wasm")
    assert missing.returncode == 2 and "input 'z' (shape 1x110) is not given" in missing.stderr
    wrong = kgen("run", str(folder), "--input", f"q={tmp_path / 'z.npy'}")
    assert wrong.returncode == 2 and "--input q: the model has no such input (inputs: z)" in wrong.stderr


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["wasm", "webgl"])
def test_run_profile_times_every_node_that_launches_kernels(onnx_files, tmp_path, backend):
    folder = tmp_path / "d"
    convert = kgen("convert", str(onnx_files / "dcgan.onnx"), "--out", str(folder), "--backend", backend)
    assert convert.returncode == 0, convert.stderr
    np.save(tmp_path / "z.npy", np.zeros((1, 110), np.float32))
    args = ["run", str(folder), "--backend", backend, "--input", f"z={tmp_path / 'z.npy'}", "--profile", "3"]
    out = kgen(*args, "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["profile"]
    nodes = json.loads((folder / f"{backend}.json").read_text())["nodes"]
    # WebGL's layout conversions between kernels (where the records chose other layouts) are a row of their own
    assert {r["node"] for r in rows} - {"(layout conversions)"} == {n["name"] for n in nodes if n["kernels"]}
    assert all(r["ms"] >= 0 for r in rows) and sum(r["ms"] for r in rows) > 0
    assert [r["ms"] for r in rows] == sorted((r["ms"] for r in rows), reverse=True)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    conv = next(r for r in rows if r["op"] == "conv_transpose2d+relu")
    assert conv["flops"] == 2 * 128 * 64 * 4 * 4 * 7 * 7 and conv["gflops"] > 0  # each input pixel to a 4x4 patch
    table = kgen(*args)
    assert table.returncode == 0, table.stderr
    assert "profile: each kernel alone, median of 3 rounds" in table.stdout and "convtranspose_13" in table.stdout
    bad = kgen(*args[:-1], "-1")
    assert bad.returncode == 2 and "--profile -1" in bad.stderr


def test_profile_rows_sum_a_nodes_kernels_and_keep_layout_conversions_apart():
    from kgen.browser.model_run import profile_nodes

    nodes = [
        {"name": "conv", "op": "conv2d", "epilogue": ["relu"], "how": "exact", "flops": 4_000_000},
        {"name": "pool", "op": "max_pool2d", "epilogue": [], "how": "default"},
    ]
    kernels = [
        {"kernel": "n0_conv2d_relu_0", "ms": 1.0},
        {"kernel": "n0_conv2d_relu_1", "ms": 1.0},
        {"kernel": "c2_convert", "ms": 0.5},
        {"kernel": "n1_max_pool2d", "ms": 1.5},
    ]
    rows = profile_nodes(kernels, nodes)
    assert [(r["node"], r["kernels"], r["ms"]) for r in rows] == [
        ("conv", 2, 2.0),
        ("pool", 1, 1.5),
        ("(layout conversions)", 1, 0.5),
    ]
    assert rows[0]["op"] == "conv2d+relu" and rows[0]["gflops"] == pytest.approx(2.0)
    assert rows[0]["share"] == pytest.approx(0.5) and "gflops" not in rows[1]
    # a node faster than the timer's resolution: no rate, not a division by zero
    (fast,) = profile_nodes([{"kernel": "n0_conv2d_relu_0", "ms": 0.0}], nodes)
    assert fast["ms"] == 0.0 and "gflops" not in fast


def test_serve_binds_loopback_and_serves_only_its_folder_and_the_runtime(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<p>hello</p>")
    (tmp_path / "secret.txt").write_text("no")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kgen.cli", "serve", str(tmp_path / "site"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url) as r:
            assert r.read() == b"<p>hello</p>"
            assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        with urllib.request.urlopen(url + "kgen/kgen.js") as r:
            assert b"export async function load" in r.read()
        for path in ("../secret.txt", "%2e%2e/secret.txt", "kgen/../../secret.txt"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(url + path)
            assert err.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as err:  # issue 17: this dropped the connection with a traceback
            urllib.request.urlopen(url + "index%00.html")
        assert err.value.code == 400
    finally:
        proc.terminate()
        _, errors = proc.communicate(timeout=10)
    assert "Traceback" not in errors


@pytest.mark.browser
def test_tune_model_then_convert_takes_the_records(onnx_files, tmp_path):
    records, storage = tmp_path / "records.jsonl", f"sqlite:///{tmp_path / 'study.db'}"
    out = kgen(
        "tune",
        "--model",
        str(onnx_files / "mlp.onnx"),
        "--backend",
        "wasm",
        "--trials",
        "6",
        "--chunk",
        "3",
        "--records",
        str(records),
        "--storage",
        storage,
        "--fix",
        '{"threads": 1}',
        "--json",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    # 6 trials do not give each of the 4 workloads a chunk of 3: each is measured once first, the rest a chunk
    trials = [w["trials"] for w in report["workloads"]]
    assert sum(trials) == 6 and min(trials) == 1 and max(trials) == 3
    assert len(records.read_text().splitlines()) >= 4
    converted = kgen(
        "convert",
        str(onnx_files / "mlp.onnx"),
        "--out",
        str(tmp_path / "m"),
        "--backend",
        "wasm",
        "--records",
        str(records),
        "--json",
    )
    assert converted.returncode == 0, converted.stderr
    assert json.loads(converted.stdout)["backends"]["wasm"]["chosen"] == {"exact": 4}
    both = kgen("tune", "conv2d", "--model", str(onnx_files / "mlp.onnx"))
    assert both.returncode == 2 and "give no OP" in both.stderr
