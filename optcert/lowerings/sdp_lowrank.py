"""The rank-r Burer–Monteiro form of the ReLU SDP (Chiu & Zhang 2023): P = UUᵀ with
U = [1 0; u V] over the same `QuadraticModel` as the full SDP (lowerings/quadratic.py).

`lower_lowrank` warm-starts U at a network point x (e.g. the PGD attack's best input): the
first column is (1, v(x)) — the network's own values, a feasible rank-one point whose objective
is the attack's margin — and the other columns are small noise, so the local solver starts at
the attack's upper bound and moves down towards the SDP value. `add_direction` raises the rank
along a given vector (the Riemannian staircase, Boumal, Voroninski & Bandeira 2016).
"""
from __future__ import annotations

import numpy as np

from optcert.forms import Lowered, LowRankSDP, QuadraticModel
from optcert.ir.layered import LayeredNet
from optcert.lowerings.quadratic import network_point


def lower_lowrank(lowered: Lowered[QuadraticModel], net: LayeredNet, x: np.ndarray, rank: int,
                  noise: float = 1e-3, seed: int = 0) -> Lowered[LowRankSDP]:
    """The rank-`rank` form of `lowered`, started at the network point of input x (module doc)."""
    n = lowered.form.n
    U = np.zeros((n + 1, rank))
    U[0, 0] = 1.0
    U[1:, 0] = network_point(lowered, net, x)
    if rank > 1:
        U[1:, 1:] = noise * np.random.default_rng(seed).standard_normal((n, rank - 1))
    return Lowered(LowRankSDP(lowered.form, rank, U), lowered.columns, lowered.info)


def add_direction(U: np.ndarray, direction: np.ndarray, scale: float = 1e-2) -> np.ndarray:
    """U with one more column along `direction` (its entry 0 zeroed, so row 0 stays e₀)."""
    d = np.array(direction, dtype=np.float64)
    d[0] = 0.0
    d *= scale / max(float(np.linalg.norm(d)), 1e-300)
    return np.hstack([U, d[:, None]])
