"""Where the system Chromium is: ``$KGEN_CHROMIUM``, else Debian's real binary (not the /usr/bin wrapper)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from kgen.errors import KgenError

DEFAULT_CHROMIUM = "/usr/lib/chromium/chromium"


def chromium_path() -> Path:
    return Path(os.environ.get("KGEN_CHROMIUM") or DEFAULT_CHROMIUM)


def require_chromium() -> Path:
    path = chromium_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise KgenError(
            f"Chromium not found at {path}: install Debian's chromium (make setup does) or set KGEN_CHROMIUM"
        )
    return path


def chromium_version(path: Path) -> str | None:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
