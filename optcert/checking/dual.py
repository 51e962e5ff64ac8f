"""Rigorous lower bounds on a ReLU network from *any* multipliers: the Lagrangian dual
(Wong & Kolter 2018; Dvijotham et al. 2018), evaluated in numpy float64 with error bounds.

For multipliers ν_k on the pre-activations ẑ_k of ReLU layers k = 1..L−1 and an objective ν_T on
a target layer T (the output, or one intermediate layer), with Λ_j = Σ_{k: j ∈ sources(k)} ν_k W_kj:

    ν_T·ẑ_T = Σ_k ν_k·b_k + Λ_0·x + Σ_{j ≥ 1} Σ_i (Λ_ji relu(ẑ_ji) − ν_ji ẑ_ji)     (network points),

so  min ν_T·ẑ_T ≥ Σ_k ν_k·b_k + min_box Λ_0·x + Σ_ji min_{t ∈ [l_ji, u_ji]} (Λ_ji relu(t) − ν_ji t),
each 1-D minimum exact over {l, u, clamp(0)}. Any ν and any valid intervals [l, u] give a valid
bound: CROWN, alpha-/beta-CROWN and the LP triangle relaxation (whose optimal duals on the affine
rows are such ν) only choose ν. Where a stored ν gives none, `relax` (CROWN's adaptive rule) does.

Floating point: Λ is computed with an elementwise bound on its error (γ_{n+2}‖ν‖₁ max_r|W_rc| per
push, 2u|Λ| per accumulation); Λ is lowered by it in the neuron terms (relu(t) ≥ 0) and widened in
the box term; every sum of n terms is charged γ_{n+1} Σ|terms|, every rounded product u|·|; the
total is lowered by the allowance and stepped one ulp down (Higham 2002, §3.1).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from optcert.checking.net import SAFE, TINY, CheckNet, U, down, gamma

NuRule = Callable[[int, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def relax(lam: np.ndarray, lo: np.ndarray, hi: np.ndarray, parallel: bool = False) -> np.ndarray:
    """CROWN's ν from Λ: 0 on inactive neurons, Λ on active ones, Λ⁺α + Λ⁻u/(u − l) on unstable
    ones with α = 1 if u ≥ −l else 0 (adaptive; Zhang et al. 2018) or α = u/(u − l) (`parallel`,
    Fast-Lin; Weng et al. 2018). Any ν is sound; this one reproduces CROWN's bound."""
    unstable = (lo < 0) & (hi > 0)
    active = (lo >= 0).astype(np.float64)
    s = np.where(unstable, hi / np.where(unstable, hi - lo, 1.0), active)
    alpha = np.where(unstable, s if parallel else (hi >= -lo).astype(np.float64), active)
    return np.where(lam >= 0, lam * alpha, lam * s)


class Pass:
    """One backward pass over B domains and m objective rows (see module doc)."""

    def __init__(self, net: CheckNet, lower: list, upper: list, shape: tuple[int, int]):
        self.net, self.lower, self.upper = net, lower, upper
        self.lam: dict[int, np.ndarray] = {}
        self.err: dict[int, np.ndarray] = {}
        self.total = np.zeros(shape)
        self.absparts = np.zeros(shape)
        self.slack = np.zeros(shape)
        self.parts = 0

    def add(self, part: np.ndarray, slack) -> None:
        """Add a computed part (B, m) known to within `slack` of its exact value."""
        self.total = self.total + part
        self.absparts = self.absparts + np.abs(part)
        self.slack = self.slack + slack
        self.parts += 1

    def accumulate(self, j: int, contrib: np.ndarray, err) -> None:
        """Λ_j += contrib, whose error is at most `err` elementwise."""
        if j in self.lam:
            total = self.lam[j] + contrib
            self.err[j] = self.err[j] + err + 2 * U * np.abs(total)
            self.lam[j] = total
        else:
            self.lam[j] = contrib
            self.err[j] = np.broadcast_to(err, contrib.shape)

    def push(self, k: int, nu: np.ndarray) -> None:
        """Σ ν_k·(W_k z + b_k): ν_k W_kj into Λ_j for each source j, ν_k·b_k into the total."""
        layer = self.net.layer(k)
        g = gamma(nu.shape[-1] + 2)
        absnu = np.abs(nu)
        norm = absnu.sum(-1, keepdims=True)
        for j, w, cmax in zip(layer.sources, layer.weights, self.net.colmax[k - 1]):
            self.accumulate(j, nu @ w, g * norm * cmax)
        self.add(nu @ layer.bias, g * (absnu @ np.abs(layer.bias)))

    def neurons(self, j: int, nu: np.ndarray) -> None:
        """Σ_i min over {l, u, clamp(0)} of (Λ_ji relu(t) − ν_ji t), Λ at its lowest."""
        lam, err = self.lam.pop(j), self.err.pop(j)
        lo, hi = self.lower[j][:, None, :], self.upper[j][:, None, :]
        a = down(lam - err * SAFE)
        zero = np.minimum(np.maximum(0.0, lo), hi)
        term = np.minimum(np.minimum(a * np.maximum(lo, 0) - nu * lo, a * np.maximum(hi, 0) - nu * hi),
                          a * np.maximum(zero, 0) - nu * zero)
        mag = np.abs(a) * np.maximum(np.maximum(lo, 0), np.maximum(hi, 0)) + np.abs(nu) * np.maximum(-lo, hi)
        n = term.shape[-1]
        self.add(term.sum(-1), (gamma(n + 1) * np.abs(term).sum(-1) + gamma(3) * mag.sum(-1)) * SAFE)

    def box(self) -> None:
        """min over the input box of Λ_0·x, Λ_0 within its error bound."""
        if 0 not in self.lam:
            return
        lam, err = self.lam.pop(0), self.err.pop(0)
        lo, hi = self.lower[0][:, None, :], self.upper[0][:, None, :]
        xmax = np.maximum(-lo, hi)
        term = np.minimum(lam * lo, lam * hi)
        n = term.shape[-1]
        slack = gamma(n + 1) * np.abs(term).sum(-1) + ((U * np.abs(lam) + err * SAFE) * xmax).sum(-1)
        self.add(term.sum(-1), slack * SAFE)

    def run(self, target: int, rule: NuRule) -> None:
        """Layers target−1 .. 1 with ν_j = rule(j, Λ_j, l_j, u_j), then the input box."""
        for j in range(target - 1, 0, -1):
            if j not in self.lam:
                continue
            lo, hi = self.lower[j][:, None, :], self.upper[j][:, None, :]
            nu = rule(j, self.lam[j], lo, hi)
            self.neurons(j, nu)
            self.push(j, nu)
        self.box()

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(certified lower bounds (B, m), scale = Σ|parts| + allowance); NaN becomes −inf."""
        allowance = (self.slack + gamma(self.parts + 1) * self.absparts) * SAFE + TINY * (self.parts + 1)
        low = down(self.total - allowance)
        return np.where(np.isnan(low), -np.inf, low), self.absparts + allowance


def adaptive(parallel: bool = False) -> NuRule:
    """The rule `relax` gives: CROWN's (or Fast-Lin's) ν everywhere."""
    return lambda j, lam, lo, hi: relax(lam, lo, hi, parallel)


def stored(nus: dict[int, tuple[np.ndarray, np.ndarray]]) -> NuRule:
    """Stored ν where its mask is set ({j: (mask, values)}, broadcastable to (B, m, n_j)), CROWN's
    adaptive ν elsewhere."""
    def rule(j, lam, lo, hi):
        fill = relax(lam, lo, hi)
        if j not in nus:
            return fill
        mask, values = nus[j]
        return np.where(mask, values, fill)
    return rule


def margin_bound(net: CheckNet, lower: list, upper: list, C: np.ndarray, d: np.ndarray,
                 weights: np.ndarray, rule: NuRule) -> tuple[np.ndarray, np.ndarray]:
    """Lower bounds (B, m) on Σ_i weights[b, r, i]·(C f + d)_i over B domains with intermediate
    bounds lower/upper (layers 0..L−1; layer L too unless every row of `weights` is ±e_i, for the
    rounding of weights·C). `weights` is (m, rows) or (B, m, rows)."""
    L = net.depth
    B = lower[0].shape[0]
    weights = np.broadcast_to(np.asarray(weights, dtype=np.float64), (B,) + np.shape(weights)[-2:])
    p = Pass(net, lower, upper, weights.shape[:2])
    g = weights @ C
    onehot = (np.count_nonzero(weights, axis=-1) <= 1) & np.all(np.isin(weights, (-1.0, 0.0, 1.0)), axis=-1)
    if not np.all(onehot):
        eg = gamma(C.shape[0] + 1) * (np.abs(weights) @ np.abs(C))
        fmax = np.maximum(-lower[L], upper[L])[:, None, :]
        p.add(np.zeros(weights.shape[:2]), np.where(onehot, 0.0, (eg * fmax).sum(-1) * SAFE))
    p.add(weights @ d, gamma(C.shape[0] + 1) * (np.abs(weights) @ np.abs(d)))
    p.push(L, g)
    p.run(L, rule)
    return p.result()
