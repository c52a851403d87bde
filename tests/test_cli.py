"""The kgen command line, run as a user runs it."""

import json
import subprocess
import sys

import pytest


def kgen(*args):
    return subprocess.run([sys.executable, "-m", "kgen.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_commands():
    out = kgen("--help")
    assert out.returncode == 0
    assert "ops" in out.stdout and "doctor" in out.stdout


def test_ops_lists_every_op_with_attributes():
    out = kgen("ops")
    assert out.returncode == 0
    assert "conv2d(input, weight, bias?)" in out.stdout
    assert "count_include_pad: int, default 0" in out.stdout


def test_ops_json():
    out = kgen("ops", "--json")
    rows = json.loads(out.stdout)
    names = {r["name"] for r in rows}
    assert {"conv2d", "conv_transpose2d", "softmax", "pad", "gemm"} <= names
    conv = next(r for r in rows if r["name"] == "conv2d")
    assert {"name": "group", "type": "int", "required": False, "default": 1}.items() <= next(
        a for a in conv["attrs"] if a["name"] == "group"
    ).items()


def test_doctor_json_reports_packages_and_chromium():
    out = kgen("doctor", "--json", "--no-browser")
    report = json.loads(out.stdout)
    assert report["packages"]["numpy"]
    assert report["chromium"]["version"], "make setup installs Chromium; doctor must find it"
    assert "browser" not in report
    assert out.returncode == 0


@pytest.mark.browser
def test_doctor_reports_the_browsers_backends():
    out = kgen("doctor", "--json")
    assert out.returncode == 0, out.stderr
    page = json.loads(out.stdout)["browser"]
    assert page["webgpu"]["available"]
    assert "maxComputeInvocationsPerWorkgroup" in page["webgpu"]["limits"]
    assert page["webgl2"]["available"]


def test_show_prints_wgsl_and_launch_info():
    out = kgen("show", "conv2d", "--shape", "1x4x6x6,8x4x3x3", "--attr", "pads=1,1,1,1", "--config", '{"tile_b": 2}')
    assert out.returncode == 0, out.stderr
    assert "// config:   {" in out.stdout and '"tile_b": 2' in out.stdout
    assert "@compute @workgroup_size(64)" in out.stdout
    program = json.loads(kgen("show", "softmax", "--shape", "3x7", "--json").stdout)["program"]
    assert [k["name"] for k in program["kernels"]] == ["softmax_0", "softmax_1", "softmax_2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "conv2d", "--shape", "1x3xa"], "kgen: error: --shape '1x3xa': '1x3xa' is not like 1x64x56x56"),
        (["show", "conv2d", "--shape", "1x3x8x8"], "kgen: error: conv2d: expected 2 to 3 inputs"),
        (["show", "relu", "--config", '{"tile_b": 3}'], "kgen: error: invalid config {\"tile_b\": 3}: knob 'tile_b'=3"),
        (["show", "relu", "--config", "[1]"], "kgen: error: --config must be a JSON object"),
        (["tune", "relu", "--fix", "[1]"], "kgen: error: --fix must be a JSON object"),
        (["tune", "relu", "--fix", "{"], "kgen: error: --fix is not JSON"),
        (["show", "relu", "--config", '{"tile_b": 4.0}'], "knob 'tile_b'=4.0 is not one of"),
        (["show", "relu", "--config", '{"tile_b": true}'], "knob 'tile_b'=true is not one of"),
        (["show", "relu", "--config", '{"wg": 64.0}'], "knob 'wg'=64.0 is not one of"),
        (["show", "nope"], "kgen: error: unknown op 'nope'"),
        (["show", "relu", "--shape", "4", "--attr", "alpha"], "kgen: error: --attr 'alpha' is not NAME=VALUE"),
        (["check", "relu", "--backend", "vulkan"], "invalid choice: 'vulkan'"),
        (["show", "matmul", "--shape", "-4x4"], "kgen: error: --shape '-4x4'"),
        (["show", "matmul", "--shape", "100000x100000,100000x100000"], "kernels index with 32-bit integers"),
        (["check", "matmul", "--shape", "100000x100000,100000x100000"], "so a tensor holds at most 2,147,483,647"),
        (["show", "matmul", "--shape", "30000x30000,30000x30000", "--backend", "wasm"], "GiB of wasm memory"),
        (["show", "conv2d", "--shape", "1x3x8192x8192,8x3x3x3"], "(maxStorageBufferBindingSize)"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args, message):
    out = kgen(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert out.stdout == ""


def test_tune_on_a_shape_too_large_writes_nothing(tmp_path):
    args = ["tune", "matmul", "--shape", "100000x100000,100000x100000", "--storage", "sqlite:///here.db"]
    out = subprocess.run([sys.executable, "-m", "kgen.cli", *args], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "32-bit integers" in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_check_native_compares_with_numpy():
    out = kgen("check", "matmul", "--shape", "7x13,13x5", "--configs", "2", "--native")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("\nok ") == 3


@pytest.mark.browser
def test_check_in_the_browser():
    out = kgen("check", "avg_pool2d", "--shape", "1x3x9x9", "--attr", "kernel_shape=3,3", "--configs", "1", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    results = json.loads(out.stdout)["results"]
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert all(r["max_abs_error"] < 1e-4 for r in results)


def test_unknown_command_is_a_usage_error():
    out = kgen("frobnicate")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_records_file_faults_are_one_line_errors(tmp_path):
    """Issue 17: a directory, a non-UTF-8 file, an unwritable path, a duplicate import and a line cut short."""
    src = tmp_path / "src.jsonl"
    with open("results/bench/wasm_records.jsonl") as f:
        src.write_text(f.readline())
    target = tmp_path / "records.jsonl"
    first = kgen("records", "import", str(src), "--records", str(target))
    assert first.returncode == 0 and "imported 1 of 1" in first.stdout
    again = kgen("records", "import", str(src), "--records", str(target))
    assert again.returncode == 0 and "imported 0 of 1" in again.stdout
    assert len(target.read_text().splitlines()) == 1
    with open(target, "a") as f:
        f.write('{"workload": {"op": "conv2d", "sha')  # a writer killed mid-line
    listed = kgen("records", "--records", str(target))
    assert listed.returncode == 0 and f"skipped {target}:2: not a kgen record" in listed.stderr
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    for args, message in [
        (["records", "--records", str(tmp_path)], "is a directory, not a records file"),
        (["records", "--records", str(tmp_path / "binary.jsonl")], "not a records file (not UTF-8 text)"),
        (["records", "import", str(src), "--records", str(tmp_path)], "is a directory"),
        (["records", "export", "/proc/kgen/out.jsonl", "--records", str(target)], "cannot write /proc/kgen/out.jsonl"),
        (
            ["tune", "relu", "--records", "/proc/kgen/r.jsonl", "--storage", f"sqlite:///{tmp_path}/s.db"],
            "cannot write the records there",
        ),
    ]:
        out = kgen(*args)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
    assert not (tmp_path / "s.db").exists()  # refused before the study was created
