"""Bound computation: `Bounds` (per-layer intervals) and the methods that produce them:
IBP (numpy reference), CROWN / Fast-Lin and alpha-CROWN (torch, batched, any device)."""
from optcert.bounds.interval import ibp
from optcert.bounds.layer_bounds import Bounds
from optcert.bounds.methods import BoundMethod, BoundSettings, compute_bounds

__all__ = ["Bounds", "BoundMethod", "BoundSettings", "compute_bounds", "ibp"]
