"""Loading networks and images from files, with typed errors naming the file."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import InvalidModelError, InvalidSpecError, UnreadableFileError
from .ir.network import Network


def load_network(path: str | Path, input_shape: Sequence[int] | None = None) -> Network:
    """An ONNX file (.onnx), or a pickled torch nn.Module (.pt/.pth, needs `input_shape`)."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from .ir.from_onnx import load_onnx

        return load_onnx(path)
    if suffix in (".pt", ".pth"):
        return _load_torch(path, input_shape)
    raise UnreadableFileError(f"{path}: unknown network format {suffix or '(no extension)'!r}; "
                              "expected .onnx, .pt or .pth")


def _load_torch(path: Path, input_shape: Sequence[int] | None) -> Network:
    import torch

    from .ir.from_torch import from_torch

    if input_shape is None:
        raise InvalidModelError(f"{path}: a PyTorch model needs --input-shape (e.g. 1,28,28)")
    try:
        module = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise UnreadableFileError(f"{path}: not a readable PyTorch file ({type(err).__name__}: {err})") from None
    if not isinstance(module, torch.nn.Module):
        raise InvalidModelError(f"{path}: holds a {type(module).__name__}, not a torch.nn.Module "
                                "(a state_dict needs its model class: use optcert.ir.from_torch in Python)")
    return from_torch(module, input_shape, name=path.stem)


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
