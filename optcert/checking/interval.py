"""Interval bound propagation, the checker's own (numpy float64, outward-rounded), batched over
domains. Centre/radius form: [c − r, c + r] ⊇ [lo, hi]; a layer's centre W c + b and radius |W| r
are widened by γ_{n+2}(|W||c| + |W| r + |b|) and stepped one ulp outward (Gowal et al. 2018 for
IBP; the error bound is Higham's, §3.1)."""
from __future__ import annotations

import numpy as np

from optcert.checking.net import SAFE, TINY, CheckNet, down, gamma, up


def post(lo: np.ndarray, hi: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on z_j: the input box for j = 0, relu of the pre-activation bounds otherwise."""
    return (lo, hi) if j == 0 else (np.maximum(lo, 0.0), np.maximum(hi, 0.0))


def affine(net: CheckNet, k: int, lower: list, upper: list) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous bounds (B, n_k) on ẑ_k from bounds (B, n_j) on its sources' pre-activations."""
    layer = net.layer(k)
    mid = np.broadcast_to(layer.bias, lower[0].shape[:-1] + layer.bias.shape).copy()
    rad = np.zeros_like(mid)
    mag = np.abs(mid)
    fan = 1
    for j, w in zip(layer.sources, layer.weights):
        lo, hi = post(lower[j], upper[j], j)
        c = (lo + hi) / 2
        r = up(np.maximum(hi - c, c - lo))
        aw = np.abs(w)
        mid = mid + c @ w.T
        rad = rad + r @ aw.T
        mag = mag + np.abs(c) @ aw.T
        fan += w.shape[1]
    err = gamma(fan + 2) * (mag + rad) * SAFE + TINY * fan
    return down(mid - rad - err), up(mid + rad + err)


def ibp(net: CheckNet, lo: np.ndarray, hi: np.ndarray, upto: int | None = None) -> tuple[list, list]:
    """IBP bounds on layers 0..upto (default L) over boxes lo, hi of shape (B, n_0)."""
    lower, upper = [np.asarray(lo, dtype=np.float64)], [np.asarray(hi, dtype=np.float64)]
    for k in range(1, (net.depth if upto is None else upto) + 1):
        l, u = affine(net, k, lower, upper)
        lower.append(l)
        upper.append(u)
    return lower, upper
