"""What ``kgen doctor`` reports: Python, kgen's packages and the browser."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import kgen
from kgen.browser.executable import chromium_path, chromium_version

REQUIRED_PACKAGES = ("numpy", "sympy", "playwright")
OPTIONAL_PACKAGES = ("hypothesis", "pytest")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def diagnose() -> dict[str, Any]:
    packages = {name: _version(name) for name in REQUIRED_PACKAGES + OPTIONAL_PACKAGES}
    path = chromium_path()
    version = chromium_version(path) if path.exists() else None
    ok = version is not None and all(packages[name] for name in REQUIRED_PACKAGES)
    return {
        "ok": ok,
        "kgen": kgen.__version__,
        "python": platform.python_version(),
        "packages": packages,
        "chromium": {"path": str(path), "version": version},
    }
