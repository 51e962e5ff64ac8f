"""`Bounds`: interval bounds on every layer of a `LayeredNet` — the unit every engine shares.

Index k = 0 is the input box (bounds on z_0 = x); k = 1..L-1 are the pre-activations ẑ_k of the
ReLU layers; k = L is the output layer (the spec margins when a spec is folded in). A branch-and-
bound domain is just a `Bounds`: splitting neuron i of layer k forces it inactive (hi = 0) or
active (lo = 0), and every lowering already treats stable neurons exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Bounds:
    """lower[k] ≤ value_k ≤ upper[k] for k = 0 (input), 1..L-1 (ReLU inputs), L (output)."""

    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]

    def __post_init__(self):
        lo = tuple(np.asarray(a, dtype=np.float64) for a in self.lower)
        hi = tuple(np.asarray(a, dtype=np.float64) for a in self.upper)
        if len(lo) != len(hi) or any(a.shape != b.shape for a, b in zip(lo, hi)):
            raise ValueError("lower and upper bounds must have matching layers and sizes")
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)

    @property
    def depth(self) -> int:
        """L: the index of the output layer."""
        return len(self.lower) - 1

    def layer(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.lower[k], self.upper[k]

    def post(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Bounds on z_k: the input box for k = 0, ReLU of the pre-activation bounds otherwise."""
        if k == 0:
            return self.lower[0], self.upper[0]
        return np.maximum(self.lower[k], 0.0), np.maximum(self.upper[k], 0.0)

    def absmax(self, k: int) -> np.ndarray:
        lo, hi = self.post(k)
        return np.maximum(np.abs(lo), np.abs(hi))

    # ---- rewriting --------------------------------------------------------------------------
    def with_layer(self, k: int, lo: np.ndarray, hi: np.ndarray) -> "Bounds":
        lower, upper = list(self.lower), list(self.upper)
        lower[k], upper[k] = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        return Bounds(tuple(lower), tuple(upper))

    def prefix(self, k: int) -> "Bounds":
        """Bounds of layers 0..k only (what bounding layer k+1 may read)."""
        return Bounds(self.lower[: k + 1], self.upper[: k + 1])

    def split(self, k: int, i: int) -> tuple["Bounds", "Bounds"]:
        """Children of splitting ReLU neuron i of layer k: (inactive: hi = 0, active: lo = 0)."""
        if not 1 <= k < self.depth:
            raise ValueError(f"layer {k} is not a ReLU layer (1..{self.depth - 1})")
        lo, hi = self.lower[k], self.upper[k]
        hi_off = hi.copy()
        hi_off[i] = min(hi[i], 0.0)
        lo_on = lo.copy()
        lo_on[i] = max(lo[i], 0.0)
        return self.with_layer(k, lo, hi_off), self.with_layer(k, lo_on, hi)

    def meet(self, other: "Bounds") -> "Bounds":
        """Elementwise tightest of two bounds on the same network (intersection)."""
        n = min(len(self.lower), len(other.lower))
        lower = tuple(np.maximum(a, b) for a, b in zip(self.lower[:n], other.lower[:n]))
        upper = tuple(np.minimum(a, b) for a, b in zip(self.upper[:n], other.upper[:n]))
        longer = self if len(self.lower) > n else other
        return Bounds(lower + longer.lower[n:], upper + longer.upper[n:])

    # ---- queries ----------------------------------------------------------------------------
    def unstable(self, k: int) -> np.ndarray:
        """Mask of neurons of ReLU layer k whose sign is not fixed (lo < 0 < hi)."""
        return (self.lower[k] < 0) & (self.upper[k] > 0)

    def counts(self) -> list[dict[str, int]]:
        """Per ReLU layer: numbers of active (lo ≥ 0), inactive (hi ≤ 0) and unstable neurons."""
        out = []
        for k in range(1, self.depth):
            lo, hi = self.lower[k], self.upper[k]
            unstable = int(np.sum((lo < 0) & (hi > 0)))
            inactive = int(np.sum(hi <= 0))
            out.append({"active": int(lo.size - unstable - inactive), "inactive": inactive,
                        "unstable": unstable})
        return out

    def is_empty(self) -> bool:
        """True when some interval is empty (lo > hi): the domain holds no input."""
        return any(bool(np.any(lo > hi)) for lo, hi in zip(self.lower, self.upper))

    def check(self) -> None:
        """Raise ValueError unless every bound is finite (or NaN-free) and lo ≤ hi."""
        for k, (lo, hi) in enumerate(zip(self.lower, self.upper)):
            if np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
                raise ValueError(f"layer {k} bounds contain NaN")
            if np.any(lo > hi):
                raise ValueError(f"layer {k} has lo > hi at neuron {int(np.argmax(lo > hi))}")

    def is_finite(self) -> bool:
        return all(bool(np.all(np.isfinite(a))) for a in self.lower + self.upper)
