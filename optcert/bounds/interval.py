"""Interval bound propagation (IBP; Gowal et al. 2018) in numpy float64 with outward rounding.

Sound under floating point: each layer is computed in centre/radius form and widened by the
a-priori error bound of a float64 dot product, |fl(a·b) − a·b| ≤ γ_n |a|·|b| with
γ_n = nu/(1 − nu), u = 2⁻⁵³ (Higham, *Accuracy and Stability of Numerical Algorithms*, 2002,
§3.1), applied to both the centre and the radius, then rounded one ulp outward.
"""
from __future__ import annotations

import numpy as np

from optcert.bounds.layer_bounds import Bounds
from optcert.ir.layered import LayeredNet

_U = np.finfo(np.float64).eps / 2


def _gamma(n: int) -> float:
    return n * _U / (1 - n * _U)


def centre_radius(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(c, r) with [c − r, c + r] ⊇ [lo, hi] despite rounding."""
    c = (lo + hi) / 2
    r = np.nextafter(np.maximum(hi - c, c - lo), np.inf)
    return c, r


def affine_interval(weights, sources_lohi, bias) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous enclosure of {Σ_j W_j z_j + b : z_j ∈ [lo_j, hi_j]}, batched over leading axes."""
    mid = np.array(bias, dtype=np.float64, copy=True)
    rad = np.zeros_like(mid)
    mag = np.abs(bias).astype(np.float64)
    fan_in = 1
    for w, (lo, hi) in zip(weights, sources_lohi):
        c, r = centre_radius(lo, hi)
        aw = np.abs(w)
        mid = mid + c @ w.T
        rad = rad + r @ aw.T
        mag = mag + np.abs(c) @ aw.T
        fan_in += w.shape[1]
    err = _gamma(fan_in + 1) * (mag + rad) * (1 + 4 * _U) + 1e-300 * fan_in
    lo = np.nextafter(mid - rad - err, -np.inf)
    hi = np.nextafter(mid + rad + err, np.inf)
    return lo, hi


def ibp(net: LayeredNet, lo: np.ndarray, hi: np.ndarray, given: Bounds | None = None) -> Bounds:
    """IBP bounds for every layer of `net` over the box [lo, hi].

    `given` (optional) holds known bounds (e.g. branch-and-bound splits) for some prefix of the
    layers; each computed layer is intersected with them before it is propagated further.
    """
    lower = [np.asarray(lo, dtype=np.float64).reshape(-1)]
    upper = [np.asarray(hi, dtype=np.float64).reshape(-1)]
    if given is not None:
        lower[0] = np.maximum(lower[0], given.lower[0])
        upper[0] = np.minimum(upper[0], given.upper[0])
    for k, layer in enumerate(net.layers, start=1):
        srcs = [(lower[j], upper[j]) if j == 0 else (np.maximum(lower[j], 0), np.maximum(upper[j], 0))
                for j in layer.sources]
        l, u = affine_interval(layer.weights, srcs, layer.bias)
        if given is not None and k < len(given.lower):
            l, u = np.maximum(l, given.lower[k]), np.minimum(u, given.upper[k])
        lower.append(l)
        upper.append(u)
    return Bounds(tuple(lower), tuple(upper))
