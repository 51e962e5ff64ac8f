"""The checker's view of a network: the layered form (`optcert.ir.layered`) with what its
rounding-error bounds need, and the a-priori error constants (Higham 2002, §3.1).

Layer k (1-based, `layers[k-1]`) computes ẑ_k = Σ_j W_kj z_j + b_k over its sources j (0 = the
input x, j ≥ 1 = relu(ẑ_j)); layers 1..L−1 are ReLU layers, layer L the network's output f.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optcert.ir.layered import LayeredNet, to_layered
from optcert.ir.network import Network

U = 2.0 ** -53            # unit roundoff of float64
SAFE = 1.0 + 2.0 ** -30   # inflates a computed allowance to cover the rounding of the allowance itself
TINY = 2.0 ** -1000       # per-operation allowance for underflow


def gamma(n: int) -> float:
    """γ_n = n u / (1 − n u): |fl(Σ_{i≤n} a_i b_i) − Σ a_i b_i| ≤ γ_n Σ |a_i b_i| in any order."""
    return n * U / (1 - n * U)


def down(x):
    return np.nextafter(x, -np.inf)


def up(x):
    return np.nextafter(x, np.inf)


@dataclass(frozen=True, eq=False)
class CheckNet:
    """A `LayeredNet` with, per layer and source, max_r |W_rc| per column (for error bounds)."""

    layered: LayeredNet
    colmax: tuple[tuple[np.ndarray, ...], ...]

    @property
    def depth(self) -> int:
        """L: the output layer's index."""
        return len(self.layered.layers)

    @property
    def n_inputs(self) -> int:
        return self.layered.n_inputs

    def layer(self, k: int):
        return self.layered.layers[k - 1]

    def sizes(self) -> list[int]:
        return self.layered.sizes()

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Pre-activations ẑ_1 .. ẑ_L for a batch x (B, n_0), float64 (not rounding-safe)."""
        return self.layered.forward(x)


def check_net(network: Network) -> CheckNet:
    """The checker's network: `to_layered` (the IR's exact composition of linear ops)."""
    return from_layered(to_layered(network))


def from_layered(layered: LayeredNet) -> CheckNet:
    colmax = tuple(tuple(np.abs(w).max(axis=0) if w.size else np.zeros(w.shape[1]) for w in layer.weights)
                   for layer in layered.layers)
    return CheckNet(layered, colmax)
