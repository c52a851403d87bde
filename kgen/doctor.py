"""What ``kgen doctor`` reports: Python, kgen's packages, the browser and what its page can run."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

import kgen
from kgen.browser.executable import chromium_path, chromium_version
from kgen.errors import KgenError

REQUIRED_PACKAGES = ("numpy", "sympy", "playwright", "wgpu", "optuna", "pandas")
OPTIONAL_PACKAGES = ("hypothesis", "pytest")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _browser_report() -> dict[str, Any]:
    from kgen.browser.session import BrowserSession

    try:
        with BrowserSession(job_timeout_s=30) as session:
            return session.fingerprint()
    except KgenError as err:
        return {"error": str(err)}


def diagnose(browser: bool = True) -> dict[str, Any]:
    packages = {name: _version(name) for name in REQUIRED_PACKAGES + OPTIONAL_PACKAGES}
    path = chromium_path()
    version = chromium_version(path) if path.exists() else None
    ok = version is not None and all(packages[name] for name in REQUIRED_PACKAGES)
    report: dict[str, Any] = {
        "ok": ok,
        "kgen": kgen.__version__,
        "python": platform.python_version(),
        "packages": packages,
        "chromium": {"path": str(path), "version": version},
    }
    if browser and version is not None:
        page = _browser_report()
        report["browser"] = page
        report["ok"] = ok and "error" not in page and page["webgpu"]["available"]
    return report
