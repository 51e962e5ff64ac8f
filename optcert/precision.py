"""`Precision`: the floating-point type torch kernels compute in, with its unit roundoff."""
from __future__ import annotations

from enum import Enum


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
