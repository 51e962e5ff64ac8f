"""Loading networks from ONNX or PyTorch files, with typed errors naming the file."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from optcert.errors import InvalidModelError, UnreadableFileError, UsageError
from optcert.ir.network import Network


def load_network(path: str | Path, input_shape: Sequence[int] | None = None) -> Network:
    """An ONNX file (.onnx), or a pickled torch nn.Module (.pt/.pth, needs `input_shape`: without it,
    a UsageError). A missing file or a directory is an UnreadableFileError that says which."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth") and input_shape is None:
        raise UsageError(f"{path}: a PyTorch model needs its input shape: pass --input-shape (e.g. 1,28,28)")
    if path.is_dir():
        raise UnreadableFileError(f"{path}: is a directory, not a network file (.onnx, .pt or .pth)")
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    if suffix == ".onnx":
        from optcert.ir.from_onnx import load_onnx

        return load_onnx(path)
    if suffix in (".pt", ".pth") and input_shape is not None:
        return _load_torch(path, input_shape)
    raise UnreadableFileError(f"{path}: unknown network format {suffix or '(no extension)'!r}; "
                              "expected .onnx, .pt or .pth")


def _load_torch(path: Path, input_shape: Sequence[int]) -> Network:
    import torch

    from optcert.ir.from_torch import from_torch

    try:
        module = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise UnreadableFileError(f"{path}: not a readable PyTorch file ({type(err).__name__}: {err})") from None
    if not isinstance(module, torch.nn.Module):
        raise InvalidModelError(f"{path}: holds a {type(module).__name__}, not a torch.nn.Module "
                                "(a state_dict needs its model class: use optcert.ir.from_torch in Python)")
    return from_torch(module, input_shape, name=path.stem)
