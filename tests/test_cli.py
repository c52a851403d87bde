"""The kgen command line, run as a user runs it."""

import json
import subprocess
import sys


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
    out = kgen("doctor", "--json")
    report = json.loads(out.stdout)
    assert report["packages"]["numpy"]
    assert report["chromium"]["version"], "make setup installs Chromium; doctor must find it"
    assert out.returncode == 0


def test_unknown_command_is_a_usage_error():
    out = kgen("frobnicate")
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
