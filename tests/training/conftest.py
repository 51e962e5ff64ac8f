"""A tiny synthetic MNIST folder in IDX format (learnable: the label sets a bright 4×4 patch), so
the training tests need no download; `real_mnist` is the shared folder or a skip."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from optcert.training.data import IMAGES, LABELS, default_root


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    n = images.shape[0]
    head = (2051).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in (n, 28, 28))
    (folder / IMAGES).write_bytes(gzip.compress(head + images.astype(np.uint8).tobytes()))
    (folder / LABELS).write_bytes(gzip.compress((2049).to_bytes(4, "big") + n.to_bytes(4, "big")
                                                + labels.astype(np.uint8).tobytes()))
    return folder


def synthetic(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 60, size=(n, 28, 28))
    for i, y in enumerate(labels):
        r, c = divmod(int(y), 5)
        images[i, 4 + 10 * r:8 + 10 * r, 2 + 5 * c:6 + 5 * c] = 255
    return images, labels


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    return write_idx(tmp_path_factory.mktemp("mnist"), *synthetic())


@pytest.fixture(scope="session")
def real_mnist() -> Path:
    root = default_root()
    if not (root / IMAGES).is_file():
        pytest.skip(f"real MNIST not found at {root} (set OPTCERT_DATASETS)")
    return root
