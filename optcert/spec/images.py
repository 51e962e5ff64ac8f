"""Images for L∞ robustness properties from .npy/.npz files, with typed errors naming the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from optcert.errors import InvalidSpecError, UnreadableFileError


def load_images(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (N, ...) and labels (N,) or None from .npy (array) or .npz (keys X/x/images, y/labels)."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as err:
        raise UnreadableFileError(f"{path}: not a readable .npy/.npz file ({err})") from None
    if isinstance(data, np.ndarray):
        return data.astype(np.float64), None
    keys = set(data.files)
    xkey = next((k for k in ("X", "x", "images", "data") if k in keys), None)
    if xkey is None:
        raise InvalidSpecError(f"{path}: no image array (expected key X, x, images or data; has {sorted(keys)})")
    ykey = next((k for k in ("y", "labels", "label") if k in keys), None)
    return data[xkey].astype(np.float64), (data[ykey].astype(np.int64) if ykey else None)


def pick_image(path: str | Path, index: int, label: int | None, n_inputs: int) -> tuple[np.ndarray, int]:
    """Image `index` of the file (or the file's only image) flattened, and its label."""
    images, labels = load_images(path)
    if images.size == n_inputs:
        images = images.reshape(1, -1)
    else:
        images = images.reshape(images.shape[0], -1)
    if not 0 <= index < images.shape[0]:
        raise InvalidSpecError(f"{path}: image index {index} out of range (0..{images.shape[0] - 1})")
    if images.shape[1] != n_inputs:
        raise InvalidSpecError(f"{path}: images have {images.shape[1]} values, the network takes {n_inputs}")
    if label is None:
        if labels is None:
            raise InvalidSpecError(f"{path}: has no labels; pass --label")
        label = int(labels[index])
    return images[index], int(label)
