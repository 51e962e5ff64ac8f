"""Images for L∞ robustness properties from .npy/.npz files, with typed errors naming the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from optcert.errors import InvalidSpecError, UnreadableFileError

IMAGE_KEYS = ("X", "x", "images", "data")
LABEL_KEYS = ("y", "labels", "label")


def load_images(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (N, ...) and labels (N,) or None from .npy (array) or .npz (keys X/x/images/data and
    y/labels/label). UnreadableFileError for a missing file, a directory or an unreadable array;
    InvalidSpecError for no images, non-numeric values or labels that do not match the images."""
    path = Path(path)
    if path.is_dir():
        raise UnreadableFileError(f"{path}: is a directory, not a .npy/.npz image file")
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            images, labels = _numeric(data, path, "images"), None
        else:
            keys = set(data.files)
            xkey = next((k for k in IMAGE_KEYS if k in keys), None)
            if xkey is None:
                raise InvalidSpecError(f"{path}: no image array (expected key {', '.join(IMAGE_KEYS)}; "
                                       f"has {sorted(keys)})")
            ykey = next((k for k in LABEL_KEYS if k in keys), None)
            images = _numeric(data[xkey], path, xkey)
            labels = _labels(data[ykey], path, ykey, images.shape[0]) if ykey else None
    except (InvalidSpecError, UnreadableFileError):
        raise
    except Exception as err:   # zip/format errors, pickled object arrays
        raise UnreadableFileError(f"{path}: not a readable .npy/.npz file ({err})") from None
    if images.size == 0:
        raise InvalidSpecError(f"{path}: holds no images")
    return images, labels


def _numeric(array: np.ndarray, path: Path, key: str) -> np.ndarray:
    if array.dtype.kind not in "biuf":
        raise InvalidSpecError(f"{path}: array {key!r} is not numeric (dtype {array.dtype})")
    return array.astype(np.float64)


def _labels(array: np.ndarray, path: Path, key: str, count: int) -> np.ndarray:
    if array.dtype.kind not in "biu" and not (array.dtype.kind == "f" and np.all(array == np.round(array))):
        raise InvalidSpecError(f"{path}: labels {key!r} are not integers (dtype {array.dtype})")
    labels = array.reshape(-1).astype(np.int64)
    if labels.size not in (1, count):
        raise InvalidSpecError(f"{path}: {labels.size} labels for {count} images")
    return labels


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
        if labels.size != images.shape[0]:
            raise InvalidSpecError(f"{path}: {labels.size} label(s) for {images.shape[0]} images; pass --label")
        label = int(labels[index])
    return images[index], int(label)
