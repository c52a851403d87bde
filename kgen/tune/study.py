"""Optuna studies of kgen: storage URLs, names, samplers.

A study is named by workload key, backend, device class and search space, so every worker that tunes the same
thing on the same kind of device lands in the same study. Storage is any Optuna storage URL: SQLite under
``results/`` by default, ``postgresql://…`` or ``journal:PATH`` (a journal file) for several workers.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kgen.errors import KgenError
from kgen.scheduling.space import Knob

DEFAULT_STORAGE = "sqlite:///results/kgen.db"
SAMPLERS = ("tpe", "random", "cmaes", "gp")


def study_name(
    workload_key: str, backend: str, device: str, knobs: Sequence[Knob], fixed: Mapping[str, Any] | None = None
) -> str:
    """The study's name; the knobs' names and values are in it as a short digest, since Optuna cannot go on with
    a study whose categorical choices changed: a template whose space changed starts a new study (which the
    records of the old one seed)."""
    space = hashlib.sha256(json.dumps([(k.name, list(k.values)) for k in knobs]).encode()).hexdigest()[:8]
    name = f"{workload_key}|{backend}|{device}|space {space}"
    return f"{name}|{json.dumps(dict(fixed), sort_keys=True)}" if fixed else name


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``; a clear one-line error when it cannot be opened."""

    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            path = Path(url[len("journal:") :])
            if not path.parent.is_dir():
                raise KgenError(f"cannot open storage '{url}': directory {path.parent} does not exist")
            return JournalStorage(JournalFileBackend(str(path)))
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///") :])
            if str(path) != ":memory:" and not path.parent.is_dir():
                if path.parent != Path("results"):
                    raise KgenError(f"cannot open storage '{url}': directory {path.parent} does not exist")
                path.parent.mkdir(parents=True, exist_ok=True)
        return _rdb_storage(_with_driver(url))
    except KgenError:
        raise
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise KgenError(f"cannot open storage '{url}': {reason}") from None


def _with_driver(url: str) -> str:
    """``postgresql://`` through psycopg (3), the driver kgen installs; SQLAlchemy's default would be psycopg2."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def _rdb_storage(url: str, attempts: int = 5) -> Any:
    """RDBStorage; workers starting together race to create the schema, so a failed first open is retried."""
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(attempts - 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except (IntegrityError, OperationalError, ProgrammingError):  # PostgreSQL: DuplicateTable
            time.sleep(0.2 * (attempt + 1))
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def make_sampler(name: str, seed: int | None) -> Any:
    import optuna

    if name == "tpe":
        # constant_liar: several workers on one study do not all propose the same promising config
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        # knobs are categorical; CMA-ES samples them independently (it only models numeric parameters)
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "gp":
        try:  # GPSampler imports these only when it first samples: check before any trial starts
            import scipy  # noqa: F401
            import torch  # noqa: F401
        except ImportError as err:
            raise KgenError(f"--sampler gp needs PyTorch and SciPy ({err}); pip install torch scipy") from None
        return optuna.samplers.GPSampler(seed=seed)
    raise KgenError(f"unknown sampler '{name}' (samplers: {', '.join(SAMPLERS)})")
