"""Comparing a kernel's output with its numpy reference, with tolerances explicit per backend and dtype."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kgen import backends

# |got - want| <= atol * max(1, rms(want)) + rtol * |want|, elementwise, with a backend's (rtol, atol) for a
# float32 kernel (``Backend.tolerance``, and why it is what it is beside it). atol scales with the output's RMS
# because float32 accumulation error grows with a reduction's length just as the output's magnitude does (a
# 4608-term conv output is ~68x larger than a 1-term one, and so is its error).
#: "te" is the TE interpreter: float64 inside, rounded to float32 at every tensor boundary
TE_TOLERANCE = (1e-5, 1e-5)


def tolerance(backend: str) -> tuple[float, float]:
    return TE_TOLERANCE if backend == "te" else backends.get(backend).tolerance


# whole converted models against onnxruntime, per weight encoding, on every backend: every layer adds its kernel's
# error, and fp16/eightbit weights round every weight (eightbit: by up to half a step of 1/127 of its block's
# largest magnitude), so these are looser than one kernel's; a model check also asks for cosine >= 0.995
MODEL_TOLERANCES: dict[str, tuple[float, float]] = {"fp32": (1e-3, 1e-3), "fp16": (2e-2, 2e-2), "eightbit": (0.2, 0.1)}


@dataclass(frozen=True)
class Comparison:
    ok: bool
    max_abs_error: float
    max_rel_error: float
    rtol: float
    atol: float
    reason: str = ""

    def __str__(self) -> str:
        verdict = "ok" if self.ok else f"FAILED: {self.reason}"
        return (
            f"max abs error {self.max_abs_error:.3g}, max rel error {self.max_rel_error:.3g} "
            f"(rtol {self.rtol:g}, atol {self.atol:g}): {verdict}"
        )


def compare(got: np.ndarray, want: np.ndarray, backend: str, dtype: str = "float32") -> Comparison:
    """Check ``got`` against ``want`` with the tolerance of (backend, dtype); NaN must match NaN, inf inf."""
    if dtype != "float32":
        raise ValueError(f"no tolerance for {dtype} kernels")
    rtol, atol = tolerance(backend)
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return Comparison(False, np.inf, np.inf, rtol, atol, f"shape {got.shape} != expected {want.shape}")
    with np.errstate(invalid="ignore"):
        return _compare(got, want, rtol, atol)


def compare_model(got: np.ndarray, want: np.ndarray, backend: str, encoding: str = "fp32") -> Comparison:
    """A converted model's output against onnxruntime's: elementwise within ``MODEL_TOLERANCES`` and with a
    cosine of at least 0.995."""
    backends.get(backend)  # a known backend
    rtol, atol = MODEL_TOLERANCES[encoding]
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return Comparison(False, np.inf, np.inf, rtol, atol, f"shape {got.shape} != expected {want.shape}")
    with np.errstate(invalid="ignore"):
        result = _compare(got, want, rtol, atol)
    norm = float(np.linalg.norm(got) * np.linalg.norm(want))
    cosine = float(got.ravel() @ want.ravel()) / norm if norm else 1.0
    if result.ok and not cosine >= 0.995:
        return Comparison(False, result.max_abs_error, result.max_rel_error, rtol, atol, f"cosine {cosine:.5f} < 0.995")
    return result


def _compare(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> Comparison:
    same_special = (np.isnan(got) & np.isnan(want)) | (np.isinf(want) & (got == want))
    finite = ~same_special
    diff = np.where(finite, np.abs(got - want), 0.0)
    diff = np.where(np.isnan(diff), np.inf, diff)
    rel = diff / np.maximum(np.abs(np.where(finite, want, 1.0)), np.finfo(np.float32).tiny)
    finite_want = want[np.isfinite(want)]
    scale = max(1.0, float(np.sqrt(np.mean(finite_want**2)))) if finite_want.size else 1.0
    bad = diff > atol * scale + rtol * np.abs(np.where(finite, want, 0.0))
    max_abs = float(diff.max(initial=0.0))
    max_rel = float(rel.max(initial=0.0))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        reason = f"{int(bad.sum())} of {bad.size} elements differ; first at {first}: {got[first]} vs {want[first]}"
        return Comparison(False, max_abs, max_rel, rtol, atol, reason)
    return Comparison(True, max_abs, max_rel, rtol, atol)
