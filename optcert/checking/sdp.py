"""Re-checking an SDP / Burer–Monteiro bound from its stored multipliers y and λ, independently of
optcert.certificates (same mathematics, own code).

For y ≥ 0 on inequality rows (others are projected) and any feasible P (P ⪰ 0, P_00 = 1), with
S(y) = C + Σ y_i Q_i:  ⟨C, P⟩ ≥ λ + ⟨S − λE₀₀, P⟩ ≥ λ + T·min(0, λ_min(S − λE₀₀)), where T bounds
the trace of P centred on the variables' boxes (congruence K = [1 0; c I]·diag(1, w): unit weights,
T = 1 + Σ r_i², or w = r, T = 1 + n; the better is kept). S is rebuilt from the network and the
checker's own intermediate bounds (sdp_model.py); its entrywise error E is γ_{k+3} Σ|terms|; λ_min
is bounded below by a shifted Cholesky factorisation that succeeds (Rump 2006): λ_min(H) ≥ σ −
2γ_{n+2}‖R‖²_F − u max|H_ii|, less ‖E‖_F (Weyl). Every step rounds toward the safe side.
"""
from __future__ import annotations

import math

import numpy as np

from optcert.checking.arrays import unpack
from optcert.checking.derived import Derived, EvidenceError
from optcert.checking.net import SAFE, CheckNet, U, down, gamma, up
from optcert.checking.sdp_model import build
from optcert.spec.problem import Case


def _objective(net, case, row: int, index: dict):
    """Triplets (a, b, value, error) of the true margin C_i f + d_i over P (row 0 = constant)."""
    layer, C, d = net.layer(net.depth), case.spec.C[row], case.spec.d[row]
    a, b, vals, errs = [], [], [], []
    for j, w in zip(layer.sources, layer.weights):
        g = C @ w
        e = gamma(C.size + 1) * (np.abs(C) @ np.abs(w)) * SAFE
        cols = index[j]
        keep = np.flatnonzero(cols >= 0)
        a.append(np.zeros(keep.size, dtype=np.int64))
        b.append(cols[keep])
        vals.append(g[keep])
        errs.append(e[keep])
    const = C @ layer.bias + d
    err0 = gamma(C.size + 2) * (np.abs(C) @ np.abs(layer.bias) + abs(d)) * SAFE
    cat = np.concatenate
    return cat(a + [[0]]), cat(b + [[0]]), cat(vals + [[const]]), cat(errs + [[err0]])


def slack(model, objective, y: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """(S̃, E): S(y) = C + Σ y_i Q_i as a dense symmetric matrix and an entrywise bound on its error."""
    rows, a, b, vals, equality = model.arrays()
    if y.shape != (model.m,):
        raise EvidenceError(f"{y.size} multipliers for {model.m} constraints")
    y = np.where(np.isfinite(y), y, 0.0)
    y = np.where(equality, y, np.maximum(y, 0.0))
    oa, ob, ov, oe = objective
    A, B = np.r_[a, oa], np.r_[b, ob]
    w = np.r_[y[rows] * vals, ov]
    S, mag, count, err = (np.zeros((N, N)) for _ in range(4))
    half = np.where(A == B, 1.0, 0.5)
    oerr = np.r_[np.zeros(rows.size), oe] * half
    parts = ((S, w * half), (mag, np.abs(w) * half), (count, np.ones_like(w)), (err, oerr))
    for M, values in parts:
        np.add.at(M, (A, B), values)
        off = A != B
        np.add.at(M, (B[off], A[off]), values[off])
    E = (gamma(int(count.max(initial=0)) + 3) * mag + err) * SAFE + 1e-300
    return S, E


def congruence(S: np.ndarray, E: np.ndarray, c: np.ndarray, w: np.ndarray):
    """A = KᵀS̃K for K = [1 0; c I]·diag(1, w), with an entrywise bound F on |A − KᵀSK|."""
    n = c.size
    s0, S11 = S[0, 1:], S[1:, 1:]
    t = S11 @ c
    A = S.copy()
    A[0, 1:] = A[1:, 0] = s0 + t
    A[0, 0] = S[0, 0] + 2 * (c @ s0) + c @ t
    ac = np.abs(c)
    F = E.copy()
    F[0, 1:] = F[1:, 0] = E[0, 1:] + E[1:, 1:] @ ac + gamma(n + 2) * (np.abs(s0) + np.abs(S11) @ ac)
    F[0, 0] = (E[0, 0] + 2 * (ac @ E[0, 1:]) + ac @ E[1:, 1:] @ ac
               + gamma(2 * n + 3) * (abs(S[0, 0]) + 2 * (ac @ np.abs(s0)) + ac @ np.abs(S11) @ ac))
    scale = np.r_[1.0, w]
    outer = scale[:, None] * scale[None, :]
    return A * outer, (F * SAFE + 3 * U * np.abs(A)) * outer * SAFE


def lambda_min_lower(D: np.ndarray) -> float:
    """A rigorous lower bound on λ_min(D), D symmetric (Rump's shifted Cholesky, module doc)."""
    if not np.all(np.isfinite(D)):
        return -math.inf
    n = D.shape[0]
    estimate = float(np.linalg.eigvalsh(D)[0])
    step = 1e-12 * max(float(np.abs(D).max()), 1e-300)
    for _ in range(14):
        sigma = estimate - step
        H = D - sigma * np.eye(n)
        try:
            R = np.linalg.cholesky(H)
        except np.linalg.LinAlgError:
            step *= 10
            continue
        slack_ = 2 * gamma(n + 2) * float(np.sum(R * R)) + U * float(np.abs(np.diag(H)).max())
        return float(down(sigma - slack_ * SAFE))
    return -math.inf


def _scaled(A: np.ndarray, F: np.ndarray, T: float, lam: float) -> tuple[float, float]:
    """(bound, scale): λ + T·min(0, λ_min(A − λE₀₀)) made rigorous with the error bound F."""
    D = A.copy()
    D[0, 0] -= lam
    F = F.copy()
    F[0, 0] += (abs(lam) + abs(A[0, 0])) * 2 * U
    err = float(np.sqrt(np.sum(F * F))) * SAFE
    mu = float(down(lambda_min_lower(D) - err))
    scale = abs(lam) + (T if math.isfinite(T) else 1.0) * float(np.abs(A).max())
    if mu >= 0:
        return float(down(lam)), scale
    if not math.isfinite(T):
        return -math.inf, scale
    bound = lam + T * mu
    return float(down(bound - 4 * U * (abs(lam) + abs(T * mu)))), scale


def certify(S: np.ndarray, E: np.ndarray, centre, radius2, lam: float, trace: float | None = None):
    """(bound, scale) at the given λ for the scaling whose trace bound is `trace` (the better of
    the two, module doc, when no trace bound is stated)."""
    if centre is None:
        return _scaled(S, E, math.inf, lam)
    n = centre.size
    w = np.sqrt(np.maximum(radius2, 1e-300))
    unit = (np.ones(n), float(up((1.0 + float(np.sum(radius2))) * (1 + (n + 4) * U))))
    radius = (w, float(up((1.0 + float(np.sum(radius2 / (w * w)))) * (1 + (n + 8) * U))))
    scalings = [unit, radius]
    if trace is not None and math.isfinite(trace):
        scalings = [min(scalings, key=lambda s: abs(s[1] - trace))]
    results = []
    for weights, T in scalings:
        A, F = congruence(S, E, centre, weights)
        results.append(_scaled(A, F, T, lam))
    return max(results)


def evaluate_sdp(net: CheckNet, case: Case, item: dict, row: int | None, bounds: tuple[list, list]) -> Derived:
    """An SDP/BM row item's bound re-derived over the checker's bounds (layers 0..L, one domain)."""
    if row is None:
        raise EvidenceError("an SDP item bounds one row")
    lower, upper = bounds
    L = net.depth
    lo = [x[0] for x in lower[:L]]
    hi = [x[0] for x in upper[:L]]
    if any(np.any(~np.isfinite(a)) for a in lo + hi):
        raise EvidenceError("the SDP needs finite intermediate bounds")
    hidden, triangle = bool(item.get("hidden_boxes", True)), bool(item.get("triangle", True))
    model, index = build(net, lo, hi, hidden, triangle)
    y = unpack(item["multipliers"])
    _, _, _, _, equality = model.arrays()
    if y.shape != (model.m,) or not np.all(np.isfinite(y)) or np.any(y[~equality] < 0):
        raise EvidenceError(f"{y.size} multipliers for {model.m} constraints, which must be finite and "
                            "non-negative on inequality rows (they are stored projected)")
    S, E = slack(model, _objective(net, case, row, index), y, model.n + 1)
    centre = np.concatenate(model.centre) if hidden else None
    radius2 = np.concatenate(model.radius2) if hidden else None
    bound, scale = certify(S, E, centre, radius2, float(item["lambda"]), item.get("trace_bound"))
    return Derived(bound, scale)
