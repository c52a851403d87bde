"""The built wheel, installed into a fresh virtualenv and run outside the checkout, works on its own: it holds the
JS runtime and the shipped tuning records, tunes a kernel, converts a model, runs it on wasm and WebGPU and serves
it, and checks a WebGL kernel. Its dependencies come from this environment's site-packages (a .pth line: nothing
is downloaded), never kgen itself."""

import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import urllib.request
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kgen.graph import zoo

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT)]
    subprocess.run([*build, "-w", str(tmp / "dist")], check=True, cwd=tmp, capture_output=True)
    (wheel,) = (tmp / "dist").glob("kgen-*.whl")
    env = tmp / "env"
    venv.create(env, with_pip=False)
    pip = [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python"), "install", "-q", "--no-deps"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    site = next((env / "lib").glob("python3*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return wheel, env, tmp


def kgen(installed, *args):
    _, env, tmp = installed
    return subprocess.run(
        [str(env / "bin" / "kgen"), *args], cwd=tmp, env=_clean(), capture_output=True, text=True, timeout=600
    )


def _clean() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KGEN_RECORDS")}


def test_the_wheel_holds_the_runtime_and_the_records_and_not_the_benchmarks(installed):
    wheel, env, tmp = installed
    names = zipfile.ZipFile(wheel).namelist()
    for part in ("kgen/runtime/kgen.js", "kgen/runtime/harness.html", "kgen/runtime/launchers/wasm_worker.js"):
        assert part in names
    assert "kgen/records/shipped.jsonl" in names and "kgen/tune/tune.py" in names
    assert not [n for n in names if n.startswith(("bench/", "tuner/", "tests/", "examples/"))]
    where = subprocess.run(
        [str(env / "bin" / "python"), "-c", "import kgen; print(kgen.__file__)"],
        cwd=tmp,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(env)), where.stdout + where.stderr  # not the checkout's


def test_the_installed_kgen_converts_runs_and_checks_outside_the_checkout(installed):
    _, _, tmp = installed
    model = zoo.mlp()
    zoo.save(model, tmp / "mlp.onnx")
    x = zoo.seeded_inputs(model, 3)["x"]
    np.save(tmp / "x.npy", x)
    (want,) = zoo.onnxruntime_outputs(model, {"x": x})
    done = kgen(installed, "convert", "mlp.onnx", "--backend", "wasm,webgpu,webgl", "--out", "m", "--json")
    assert done.returncode == 0, done.stderr
    chosen = json.loads(done.stdout)["backends"]["wasm"]["chosen"]
    assert chosen.get("exact", 0) + chosen.get("nearest", 0) > 0  # the shipped records served it
    for backend in ("wasm", "webgpu"):
        ran = kgen(installed, "run", "m", "--backend", backend, "--input", "x=x.npy", "--out", f"{backend}.npz")
        assert ran.returncode == 0, ran.stderr
        (got,) = np.load(tmp / f"{backend}.npz").values()
        np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-4)
    checked = kgen(installed, "check", "matmul", "--backend", "webgl")
    assert checked.returncode == 0 and "ok" in checked.stdout, checked.stdout + checked.stderr
    bench = kgen(installed, "bench", "--suite", "peak")
    assert bench.returncode != 0 and "run from a kgen checkout" in bench.stderr


def test_the_installed_kgen_tunes_a_kernel_into_its_records(installed):
    _, _, tmp = installed
    tuned = kgen(installed, "tune", "matmul", "--backend", "wasm", "--trials", "5", "--json")
    assert tuned.returncode == 0, tuned.stderr
    summary = json.loads(tuned.stdout)
    assert summary["best_ms"] > 0 and summary["backend"] == "wasm"
    (record,) = [json.loads(line) for line in (tmp / "results" / "records.jsonl").read_text().splitlines()]
    assert record["backend"] == "wasm" and record["config"] == summary["best_config"]


def test_the_installed_kgen_serves_a_model_and_the_runtime(installed):
    _, env, tmp = installed
    model = tmp / "served"
    model.mkdir()
    (model / "model.json").write_text('{"a": 1}')
    server = subprocess.Popen(
        [str(env / "bin" / "kgen"), "serve", str(model), "--port", "0"],
        cwd=tmp,
        env=_clean(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        url = re.search(r"at (http://127\.0\.0\.1:\d+/) ", first)
        assert url, first + server.stderr.read() if server.poll() is not None else first
        with urllib.request.urlopen(url[1] + "model.json", timeout=10) as got:
            assert json.loads(got.read()) == {"a": 1}
            assert got.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        with urllib.request.urlopen(url[1] + "kgen/kgen.js", timeout=10) as got:
            assert b"export async function load" in got.read()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
