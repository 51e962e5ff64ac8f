"""Loading networks from ONNX or PyTorch files, with typed errors naming the file."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from optcert.errors import InvalidModelError, UnreadableFileError
from optcert.ir.network import Network


def load_network(path: str | Path, input_shape: Sequence[int] | None = None) -> Network:
    """An ONNX file (.onnx), or a pickled torch nn.Module (.pt/.pth, needs `input_shape`)."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from optcert.ir.from_onnx import load_onnx

        return load_onnx(path)
    if suffix in (".pt", ".pth"):
        return _load_torch(path, input_shape)
    raise UnreadableFileError(f"{path}: unknown network format {suffix or '(no extension)'!r}; "
                              "expected .onnx, .pt or .pth")


def _load_torch(path: Path, input_shape: Sequence[int] | None) -> Network:
    import torch

    from optcert.ir.from_torch import from_torch

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
