"""What re-deriving an evidence item produces (`Derived`), and the error for malformed items."""
from __future__ import annotations

from dataclasses import dataclass


class EvidenceError(ValueError):
    """An item is malformed (unknown kind, wrong sizes, undecodable arrays)."""


@dataclass(frozen=True)
class Derived:
    """A re-derived lower bound, its scale (Σ|parts|, for agreement) and whether only a solver
    vouches for it (`trusted`: value is then the stated one, unverified)."""

    value: float
    scale: float
    trusted: bool = False
