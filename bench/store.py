"""The benchmark results store: one JSON line per measured side of one workload in one `kgen bench` run.

A row is self-describing: what ran (suite, workload, kind, backend, threads, side: ``kgen`` or a peer, the
config), how fast (``median_ms`` the median over rounds of each round's median, ``iqr_ms`` the median of the
rounds' interquartile ranges, ``low_ms`` / ``high_ms`` the rounds' extremes, ``n`` samples in all, GFLOP/s), where
(the device fingerprint, ``software`` when a software rasterizer stood in for the GPU, ``cpu`` the host's CPU as
/proc/cpuinfo names it: it sets the speed of wasm, js, the peers and a software GPU alike), which code (kgen's git
commit, whether the tree was dirty, the peers' versions) and when (the run's id and time, the CPU busy share seen
before each side). ``pandas.read_json(path, lines=True)`` loads it (``load``).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from kgen.atomic import write_text_atomic

DEFAULT_PATH = Path("results/bench/history.jsonl")
ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def code_version() -> dict[str, Any]:
    """kgen's commit (``unknown`` outside a git checkout) and whether tracked files differed from it."""
    commit = _git("rev-parse", "HEAD") or "unknown"
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit, "dirty": dirty}


def replace_rows(path: Path, rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """The rows of the JSON file ``path`` (``{"rows": [...]}``) with ``rows`` in place of those of the same key, in
    the file's order, new keys after: a benchmark that measured a few of a file's rows rewrites only those. A file of
    the older form, with its date, CPU and commit once at the top, gives them to its rows."""
    old = json.loads(path.read_text()) if path.exists() else {"rows": []}
    top = {k: old[k] for k in ("date", "cpu", "commit", "dirty", "rounds") if k in old}
    new = {key(r): r for r in rows}
    kept = [new.pop(key(r), {**top, **r}) for r in old["rows"]]
    return kept + list(new.values())


def new_run(suite: str) -> dict[str, Any]:
    """The fields every row of one run shares."""
    from kgen.records.store import host_cpu

    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    return {"run": uuid.uuid4().hex[:12], "time": now, "suite": suite, "cpu": host_cpu(), **code_version()}


def variant_name(backend: str, threads: Any) -> str:
    """A backend as compared: ``wasm 2t`` (wasm at a thread count), or the backend's name."""
    return f"wasm {int(threads)}t" if backend == "wasm" else backend


def device_fields(fingerprint: Mapping[str, Any], backend: str) -> dict[str, Any]:
    """The device a row was measured on, in a few fields: the device class records use, the browser, the core
    count, and the software label (SwiftShader standing in for a GPU)."""
    from kgen.records.store import device_class, software

    return {
        "device": device_class(fingerprint, backend),
        "browser": fingerprint.get("browser", ""),
        "cores": fingerprint.get("hardwareConcurrency", 0),
        "software": software(fingerprint, backend),
    }


def check_writable(path: Path | str) -> None:
    """A one-line error now if rows could not be appended to ``path`` (its folder is made if missing)."""
    from kgen.errors import KgenError

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
        if path.exists() and (path.is_dir() or not os.access(path, os.R_OK | os.W_OK)):
            raise PermissionError(13, "not a readable and writable file")
    except OSError as err:
        raise KgenError(f"{path}: cannot write the results store there: {err.strerror}") from None


def append(rows: Iterable[Mapping[str, Any]], path: Path | str = DEFAULT_PATH) -> int:
    """Append rows; the file is rewritten through a temporary file, so a run cut short leaves it as it was."""
    from kgen.errors import KgenError

    path = Path(path)
    rows = list(rows)
    try:
        before = path.read_text(encoding="utf-8") if path.exists() else ""
        if before and not before.endswith("\n"):
            before += "\n"
        write_text_atomic(path, before + "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    except OSError as err:
        raise KgenError(f"{path}: cannot append the results: {err.strerror}") from None
    return len(rows)


def rows(path: Path | str = DEFAULT_PATH) -> list[dict[str, Any]]:
    """The store's rows as dicts (none when there is no store yet); a line that is not JSON is an error naming
    the file and line."""
    from kgen.errors import KgenError

    path = Path(path)
    if not path.exists():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise KgenError(f"{path}:{n}: not a results row: {err}") from None
    return out


def load(path: Path | str = DEFAULT_PATH):
    """The store as a pandas DataFrame (empty when there is no store yet)."""
    import pandas as pd

    path = Path(path)
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        return pd.DataFrame()
    return pd.read_json(path, lines=True, dtype=False)
