"""The bundled digits data set (see propc/data/README.md for its origin and licence).

Nothing is downloaded: the 1797 8x8 images ship inside the package.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
DIGITS_FILE = os.path.join(DATA_DIR, "digits.csv.gz")


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 rows of 64 pixels scaled to [0, 1], and int32 labels 0..9."""
    with gzip.open(DIGITS_FILE, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    images = (table[:, :64] / 16.0).astype(np.float32)
    labels = table[:, 64].astype(np.int32)
    return images, labels


def train_test_split(x: np.ndarray, y: np.ndarray, test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded shuffle, then the last `test_fraction` of rows as the test set."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    train, test = order[:-n_test], order[-n_test:]
    return x[train], y[train], x[test], y[test]
