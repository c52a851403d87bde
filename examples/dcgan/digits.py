"""scikit-learn's handwritten digits as the seed's MNIST images, and the seeded split that keeps the quality check
honest: the GAN trains on one part, the digit classifier that grades the GAN's samples on the other.

The 8x8 images (0..16) are resized to 20x20 and centred in 28x28 with a 4-pixel margin, as MNIST's are, in [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLIT_SEED = 0
HELD_OUT = 0.3  # the classifier's share; the GAN never sees these images
NOISE = 100
CLASSES = 10


def images_28() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as (N, 28, 28) float32 in [0, 1], and their labels."""
    from skimage.transform import resize
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = digits.images.astype(np.float32) / 16.0
    out = np.zeros((len(small), 28, 28), np.float32)
    for k, image in enumerate(small):
        out[k, 4:24, 4:24] = resize(image, (20, 20), order=1, mode="edge", anti_aliasing=False)
    return np.clip(out, 0.0, 1.0), digits.target.astype(np.int64)


@dataclass(frozen=True)
class Split:
    gan_x: np.ndarray
    gan_y: np.ndarray
    held_x: np.ndarray
    held_y: np.ndarray


def split() -> Split:
    """The seeded, stratified split: 70% for the GAN, 30% held out for the classifier."""
    from sklearn.model_selection import train_test_split

    x, y = images_28()
    gx, hx, gy, hy = train_test_split(x, y, test_size=HELD_OUT, stratify=y, random_state=SPLIT_SEED)
    return Split(gx, gy, hx, hy)


def shifted(x: np.ndarray, y: np.ndarray, pixels: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Each image also moved by up to ``pixels`` in each direction: a classifier that does not care where in the
    frame a generated digit sits."""
    xs, ys = [x], [y]
    for dy in range(-pixels, pixels + 1, pixels):
        for dx in range(-pixels, pixels + 1, pixels):
            if dx or dy:
                xs.append(np.roll(x, (dy, dx), axis=(1, 2)))
                ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def noise(digit: int, count: int, seed: int) -> np.ndarray:
    """``count`` generator inputs for ``digit``: 100 standard normal values and the one-hot label, as the page
    makes them."""
    rng = np.random.default_rng(seed)
    z = np.zeros((count, NOISE + CLASSES), np.float32)
    z[:, :NOISE] = rng.standard_normal((count, NOISE))
    z[:, NOISE + digit] = 1.0
    return z
