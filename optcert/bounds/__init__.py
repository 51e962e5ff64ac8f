"""Bound computation: `Bounds` (per-layer intervals) and the methods that produce them:
IBP (numpy reference), CROWN / Fast-Lin and alpha-CROWN (torch, batched, any device)."""
from .interval import ibp
from .layer_bounds import Bounds
from .methods import BoundMethod, BoundSettings, compute_bounds

__all__ = ["Bounds", "BoundMethod", "BoundSettings", "compute_bounds", "ibp"]
