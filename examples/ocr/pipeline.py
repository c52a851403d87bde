"""The OCR page's pipeline in numpy, for the tests and the trained-models benchmark: the page's rule for turning the
detector's probability map into lines (main.js does the same in the page), the recognizer's input for a line, and
greedy CTC decoding. A model's raw outputs come from whichever runtime ran it."""

from __future__ import annotations

import math

import numpy as np
import onnx
import skimage.measure
import skimage.transform

from kgen.errors import KgenError

THRESHOLD, BOX_SCORE, MIN_AREA, UNCLIP = 0.3, 0.6, 9, 1.5  # as main.js
DET_MEAN, DET_STD = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])


def det_input(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """An RGB (or grey) uint8 image resized to the detector's input, normalised, NCHW."""
    rgb = np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]
    small = skimage.transform.resize(rgb.astype(np.float64), (height, width), order=1, preserve_range=True)
    return ((small - DET_MEAN) / DET_STD).transpose(2, 0, 1)[None].astype(np.float32)


def regions(probability: np.ndarray) -> list[list[int]]:
    """8-connected regions above THRESHOLD of at least MIN_AREA pixels whose mean is at least BOX_SCORE, as
    [y0, x0, y1, x1) boxes in map pixels, top to bottom."""
    labels = skimage.measure.label(probability > THRESHOLD, connectivity=2)
    props = skimage.measure.regionprops(labels, probability)
    return sorted(list(r.bbox) for r in props if r.area >= MIN_AREA and r.intensity_mean >= BOX_SCORE)


def box(region: list[int], map_shape: tuple[int, int], image_shape: tuple[int, ...]) -> tuple[float, ...]:
    """A region grown by DBNet's unclip distance, in the image's pixels (y0, x0, y1, x1)."""
    y0, x0, y1, x1 = region
    h, w = y1 - y0, x1 - x0
    d = h * w * UNCLIP / (2 * (h + w))
    sy, sx = image_shape[0] / map_shape[0], image_shape[1] / map_shape[1]
    return (
        max(0, (y0 - d) * sy),
        max(0, (x0 - d) * sx),
        min(image_shape[0], (y1 + d) * sy),
        min(image_shape[1], (x1 + d) * sx),
    )


def line_input(image: np.ndarray, bounds: tuple[float, ...], height: int, width: int) -> np.ndarray:
    """A line cut from the image at ``height``, values in [-1, 1], zeros to the right up to ``width``, NCHW."""
    rgb = np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3]
    y0, x0, y1, x1 = bounds
    cut = rgb[int(y0) : math.ceil(y1), int(x0) : math.ceil(x1)].astype(np.float64)
    wide = min(width, max(1, math.ceil(height * cut.shape[1] / cut.shape[0])))
    scaled = skimage.transform.resize(cut, (height, wide), order=1, preserve_range=True)
    out = np.zeros((1, 3, height, width), np.float32)
    out[0, :, :, :wide] = ((scaled / 255 - 0.5) / 0.5).transpose(2, 0, 1)
    return out


def characters(rec_model: str) -> list[str]:
    """The recognizer's classes: blank, its dictionary (in the model's metadata), space."""
    meta = {p.key: p.value for p in onnx.load(rec_model, load_external_data=False).metadata_props}
    if "character" not in meta:
        raise KgenError(f"{rec_model}: no 'character' list in its metadata")
    return ["blank", *meta["character"].splitlines(), " "]


def ctc_text(scores: np.ndarray, classes: list[str]) -> str:
    """Greedy CTC over (steps, classes) scores: the best class per step, repeats merged, blanks dropped."""
    best = scores.argmax(-1)
    return "".join(classes[k] for t, k in enumerate(best) if k and (t == 0 or k != best[t - 1]))
