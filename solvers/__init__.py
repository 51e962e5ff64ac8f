"""Solver backends: one adapter per file, registered in `registry.py`."""
from .base import Availability, Backend
from .registry import available, default, get, names

__all__ = ["Availability", "Backend", "available", "default", "get", "names"]
