"""Bound computation: `Bounds` (per-layer intervals) and the methods that produce them."""
from .interval import ibp
from .layer_bounds import Bounds

__all__ = ["Bounds", "ibp"]
