"""The checker's own forward-mode linear bounds (symbolic intervals; Wang et al. 2018, "Efficient
formal safety analysis", ReluVal/Neurify), numpy float64, outward-rounded, batched over domains.

Over a box written x = c + δ, |δ| ≤ r, every pre-activation of a chain net is enclosed as
L_k(δ) − e^L_k ≤ ẑ_k ≤ U_k(δ) + e^U_k with L, U linear (coefficients A (B, n_0, n_k), constants
a (B, n_k)) evaluated exactly from the stored floats, and e ≥ 0 absorbing every rounding error so
far. Through a ReLU with certified bounds [l, u]: inactive → 0, active → kept, unstable → upper
s (U + e^U − l) with s ≥ u/(u − l) rounded up (a line through (l, 0) at least that steep lies above
the ReLU on [l, u]), lower α L with α = 1 if u ≥ −l else 0 (exact). Through W: L' = W⁺L + W⁻U + b,
U' = W⁺U + W⁻L + b. Rounding (Higham 2002, §3.1): a product of n-term sums moves a function by at
most γ_{2n+3} (M^L + M^U)|W|ᵀ + γ|b| over the box, M = |A|ᵀr + |a| the functions' magnitudes;
a relaxation's products by γ_4 s (M^U + |l|); every allowance is inflated by SAFE. Each layer is
intersected with the bounds it is given and with interval arithmetic over the layers so far, so it
is never looser than either. Independent of optcert.bounds (the engine's forward.py).
"""
from __future__ import annotations

import numpy as np

from optcert.checking.interval import affine
from optcert.checking.net import SAFE, TINY, CheckNet, down, gamma, up


def supported(net: CheckNet) -> bool:
    """Forward mode here handles chains: layer k reads layer k − 1 alone."""
    return all(tuple(net.layer(k).sources) == (k - 1,) for k in range(1, net.depth + 1))


def _magnitude(A: np.ndarray, a: np.ndarray, r: np.ndarray) -> np.ndarray:
    """M = |A|ᵀ r + |a| (B, n): the largest |value| of a function over the box (to rounding)."""
    return np.einsum("bin,bi->bn", np.abs(A), r) + np.abs(a)


class _Functions:
    """[L − e^L, U + e^U] of one layer over B boxes (module doc)."""

    def __init__(self, net: CheckNet, c: np.ndarray, r: np.ndarray):
        layer = net.layer(1)
        w, b = layer.weights[0], layer.bias
        B, n0 = c.shape
        self.r, self.n0 = r, n0
        A = np.broadcast_to(w.T, (B,) + w.T.shape)
        a = c @ w.T + b
        e = gamma(n0 + 2) * (np.abs(c) @ np.abs(w).T + np.abs(b)) * SAFE + TINY * (n0 + 1)
        self.AL, self.aL, self.eL = A, a, e
        self.AU, self.aU, self.eU = A, a, e

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Certified (lo, hi) (B, n) of the layer over the boxes."""
        g = gamma(self.n0 + 6)
        sL = np.einsum("bin,bi->bn", np.abs(self.AL), self.r)
        sU = np.einsum("bin,bi->bn", np.abs(self.AU), self.r)
        errL = g * (sL + np.abs(self.aL) + self.eL) * SAFE + TINY * (self.n0 + 4)
        errU = g * (sU + np.abs(self.aU) + self.eU) * SAFE + TINY * (self.n0 + 4)
        return down(self.aL - sL - self.eL - errL), up(self.aU + sU + self.eU + errU)

    def relu(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Relax z = relu(ẑ) with certified bounds lo ≤ ẑ ≤ hi (module doc)."""
        inactive, active = hi <= 0, lo >= 0
        unstable = ~inactive & ~active
        width = np.where(unstable, down(hi - lo), 1.0)
        s = np.where(unstable, up(hi / width), active.astype(np.float64))
        alpha = np.where(unstable, (hi >= -lo).astype(np.float64), s)
        MU = _magnitude(self.AU, self.aU, self.r)
        shift = np.where(unstable, lo, 0.0)
        extra = np.where(unstable, gamma(4) * s * (MU + np.abs(lo)) * SAFE + TINY * 4, 0.0)
        self.AL, self.aL, self.eL = self.AL * alpha[:, None, :], self.aL * alpha, self.eL * alpha
        self.AU, self.aU = self.AU * s[:, None, :], (self.aU - shift) * s
        self.eU = up(self.eU * s * SAFE + extra)

    def linear(self, w: np.ndarray, b: np.ndarray) -> None:
        """Through ẑ' = W z + b (module doc)."""
        wp, wn = np.maximum(w, 0.0).T, np.minimum(w, 0.0).T
        n = w.shape[1]
        slack = gamma(2 * n + 3) * ((_magnitude(self.AL, self.aL, self.r) + _magnitude(self.AU, self.aU, self.r))
                                    @ np.abs(w).T + np.abs(b)) * SAFE + TINY * (2 * n + 2)
        eL = (self.eL @ wp - self.eU @ wn) * SAFE + slack
        eU = (self.eU @ wp - self.eL @ wn) * SAFE + slack
        AL, AU = self.AL @ wp + self.AU @ wn, self.AU @ wp + self.AL @ wn
        aL, aU = self.aL @ wp + self.aU @ wn + b, self.aU @ wp + self.aL @ wn + b
        self.AL, self.aL, self.eL, self.AU, self.aU, self.eU = AL, aL, up(eL), AU, aU, up(eU)


def forward_given(net: CheckNet, lower: list, upper: list) -> tuple[list, list]:
    """Bounds on layers 0..L−1 (each (B, n_k)) over the boxes lower[0], upper[0]: the forward
    functions' concretisation intersected with the given `lower`/`upper` (valid bounds on the same
    domains, e.g. with splits applied) and with interval arithmetic. Requires `supported(net)`;
    a non-finite box leaves the given bounds as they are."""
    lo0, hi0 = np.asarray(lower[0], dtype=np.float64), np.asarray(upper[0], dtype=np.float64)
    if not (np.all(np.isfinite(lo0)) and np.all(np.isfinite(hi0))):
        return list(lower), list(upper)
    c = (lo0 + hi0) / 2
    r = up(np.maximum(hi0 - c, c - lo0))
    f = _Functions(net, c, r)
    out_lo, out_hi = [lo0], [hi0]
    for k in range(1, net.depth):
        flo, fhi = f.bounds()
        ilo, ihi = affine(net, k, out_lo, out_hi)
        lo = np.fmax(np.fmax(flo, ilo), lower[k])     # fmax: a NaN (overflow) never wins
        hi = np.fmin(np.fmin(fhi, ihi), upper[k])
        out_lo.append(lo)
        out_hi.append(hi)
        if k < net.depth - 1:
            f.relu(lo, hi)
            layer = net.layer(k + 1)
            f.linear(layer.weights[0], layer.bias)
    return out_lo, out_hi
