"""Solver backends: one adapter per file, registered in `registry.py`."""
from solvers.base import Availability, Backend
from solvers.registry import available, default, get, names

__all__ = ["Availability", "Backend", "available", "default", "get", "names"]
