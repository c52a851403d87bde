"""The layers of docs/architecture.md hold: ``lint-imports`` (the contract in pyproject.toml, run by `make lint`)
passes on kgen as it is and fails on a copy with one upward import."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(LINT), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_an_upward_import_breaks_the_layers(tmp_path):
    shutil.copytree(ROOT / "kgen", tmp_path / "kgen", ignore=shutil.ignore_patterns("runtime", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    assert _lint(tmp_path).returncode == 0, "the layers do not hold as they are"
    (tmp_path / "kgen" / "scheduling" / "upward.py").write_text("from kgen.descriptor import convert  # noqa\n")
    broken = _lint(tmp_path)
    assert broken.returncode == 1
    assert "kgen.scheduling.upward -> kgen.descriptor.convert" in broken.stdout, broken.stdout


def test_no_backend_is_matched_by_its_name_outside_its_module():
    """What differs by backend is asked of ``kgen.backends.get(name)``: no module outside ``kgen/backends/``
    compares a backend's name or keys a table by it (a fingerprint's fields, such as ``fp["webgpu"]``, are data)."""
    names = "wasm|js|webgpu|webgl"
    compared = re.compile(
        rf"""(==|!=|\bin)\s*\(?["']({names})["']|["']({names})["']\s*(==|!=|\bin\b)|\{{\s*["']({names})["']\s*:"""
    )
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "kgen").rglob("*.py"))
        if "backends" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if compared.search(line)
    ]
    assert not found, "\n".join(found)
