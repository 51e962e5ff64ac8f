"""`Precision`: the floating-point type torch kernels compute in, with its unit roundoff;
`check_device`: whether a torch device name exists here."""
from __future__ import annotations

from enum import Enum

from optcert.errors import InvalidOptionError


class Precision(Enum):
    FLOAT32 = "float32"
    FLOAT64 = "float64"

    def torch(self):
        import torch

        return torch.float32 if self is Precision.FLOAT32 else torch.float64

    @property
    def unit_roundoff(self) -> float:
        """u = 2⁻²⁴ (float32) or 2⁻⁵³ (float64): |fl(a ∘ b) − a ∘ b| ≤ u |a ∘ b|."""
        return 2.0 ** -24 if self is Precision.FLOAT32 else 2.0 ** -53


def check_device(device: str) -> None:
    """InvalidOptionError unless torch knows `device` and it exists on this machine ("cpu" always
    does: no torch import for it, which costs a second of start-up)."""
    if device == "cpu":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidOptionError(f"option 'device': {device!r} is not a torch device") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError(f"option 'device': {device!r} requested but no CUDA device is available")
