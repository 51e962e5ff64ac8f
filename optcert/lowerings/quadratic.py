"""A ReLU network as a QCQP over v = (x, z_1, …, z_{L−1}), and its Shor relaxation
(`QuadraticModel`) — the common source of the full SDP and the rank-r Burer–Monteiro forms.

Raghunathan, Steinhardt & Liang 2018 ("Semidefinite relaxations for certifying robustness to
adversarial examples"); the rank-r view is Chiu & Zhang 2023. Per ReLU layer k, with
ẑ = Σ_j W_kj z_j + b_k and pre-activation bounds [l, u]:
  inactive (u ≤ 0)   dropped (z = 0): no variable, no row;
  active   (l ≥ 0)   z − ẑ = 0                            (linear);
  unstable           −z ≤ 0,  ẑ − z ≤ 0                    (linear),
                     z² − z·ẑ = 0                           (lifted complementarity).
  unstable, `triangle` z − Σ c_j v_j + K ≤ 0                 (linear: the LP chord, optional),
with c_j = fl(s w_j), s = fl(u/(u − l)), and K = fl(s l) − fl(s b) lowered by a margin δ that covers
every rounding (of s, of each c_j times the largest |v_j| the boxes allow, of K) — so the cut is
implied by z ≤ u(ẑ − l)/(u − l) on the box and never removes a network point. With the cuts the
SDP is at least as tight as the LP triangle relaxation over the same bounds (Batten et al. 2021,
"Efficient neural network verification via layer-based semidefinite relaxations and linear cuts").
Boxes (x ∈ [l₀, u₀] always; z ∈ post-activation bounds with `hidden_boxes`) as v_i² − s v_i + p ≤ 0
with s = fl(l + u) and p rounded *down* below min(s l − l², s u − u²), so each is valid on the
whole interval despite rounding. Every other coefficient is a weight, a bias or ±1 — exact.
Each box gives its variable a centre c = s/2 (exact) and r² = c² − p rounded up, the radius of
the centred trace bound the certificate uses (see `QuadraticModel`); without hidden boxes the
model has no centre (no trace bound).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optcert.bounds.layer_bounds import Bounds
from optcert.errors import LoweringError
from optcert.forms import Lowered, QuadraticModel
from optcert.ir.layered import LayeredNet

_U = 2.0 ** -53


@dataclass
class _Rows:
    """Constraint triplets (row, a, b, value) over P indices, collected in bulk."""

    rows: list
    a: list
    b: list
    vals: list
    equality: list
    groups: dict
    m: int = 0

    def add(self, name: str, count: int, row_local, a, b, vals, equality: bool) -> None:
        self.rows.append(np.asarray(row_local, dtype=np.int64) + self.m)
        self.a.append(np.asarray(a, dtype=np.int64))
        self.b.append(np.asarray(b, dtype=np.int64))
        self.vals.append(np.asarray(vals, dtype=np.float64))
        self.equality.append(np.full(count, equality))
        self.groups[name] = slice(self.m, self.m + count)
        self.m += count


def safe_box(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s, p, r²) with v² − s v + p ≤ 0 on all of [lo, hi], and r² ≥ (s/2)² − p: every lifted
    point then has V_ii − s v_i + (s/2)² ≤ r²."""
    s = lo + hi
    at_lo, at_hi = s * lo - lo * lo, s * hi - hi * hi
    p = np.minimum(at_lo, at_hi)
    err = 4 * _U * (np.abs(s * lo) + lo * lo + np.abs(s * hi) + hi * hi) + 1e-300
    p = np.nextafter(p - err, -np.inf)
    c = s / 2
    return s, p, np.nextafter((c * c) * (1 + 4 * _U) - p + 4 * _U * np.abs(p), np.inf) + 1e-300


def _affine(layer, index: dict, k_rows: np.ndarray):
    """Entries (neuron, P index, weight) of ẑ_k restricted to neurons `k_rows`, skipping sources
    that have no variable (inactive neurons, z = 0)."""
    out_n, out_p, out_w = [], [], []
    for j, w in zip(layer.sources, layer.weights):
        cols = index[j]
        keep = np.flatnonzero(cols >= 0)
        sub = w[np.ix_(k_rows, keep)]
        r, c = np.nonzero(sub)
        out_n.append(r)
        out_p.append(cols[keep][c])
        out_w.append(sub[r, c])
    return np.concatenate(out_n), np.concatenate(out_p), np.concatenate(out_w)


def _triangle_rows(R: _Rows, k: int, sel, nrn, p, w, z, b, lo, hi, mag: np.ndarray) -> None:
    """The rounding-safe LP chord of the unstable neurons `sel` (module doc); `mag[q]` bounds |v_q|."""
    m = sel.size
    l, u = lo[sel], hi[sel]
    s = u / (u - l)
    c = s[nrn] * w
    delta = np.zeros(m)
    np.add.at(delta, nrn, np.abs(c) * mag[p])
    sl, sb = s * l, s * b
    K = sl - sb
    delta = 4 * _U * (delta + np.abs(u) + np.abs(l) + np.abs(sl) + np.abs(sb) + np.abs(K)) + 1e-300
    K = np.nextafter(K - delta, -np.inf)
    ids = np.arange(m)
    R.add(f"relu_triangle{k}", m, np.r_[ids, nrn, ids], np.zeros(2 * m + nrn.size), np.r_[z, p, np.zeros(m)],
          np.r_[np.ones(m), -c, K], False)


def _relu_rows(R: _Rows, k: int, layer, index: dict, lo, hi, var: np.ndarray, mag: np.ndarray | None) -> None:
    """Rows of ReLU layer k (module doc); `var[i]` is the P index of z_k[i] (−1 if inactive);
    `mag` (bounds on |v| by P index) adds the triangle cuts when given."""
    active, unstable = np.flatnonzero(lo >= 0), np.flatnonzero((lo < 0) & (hi > 0))
    for name, sel in (("active", active), ("unstable", unstable)):
        if sel.size == 0:
            continue
        nrn, p, w = _affine(layer, index, sel)
        z, b = var[sel], layer.bias[sel]
        m = sel.size
        ids = np.arange(m)
        if name == "active":  # z − Σ w p − b = 0
            R.add(f"active{k}", m, np.r_[ids, nrn, ids], np.r_[np.zeros(m), np.zeros(nrn.size), np.zeros(m)],
                  np.r_[z, p, np.zeros(m)], np.r_[np.ones(m), -w, -b], True)
            continue
        R.add(f"relu_nonneg{k}", m, ids, np.zeros(m), z, -np.ones(m), False)
        R.add(f"relu_ge{k}", m, np.r_[nrn, ids, ids], np.zeros(nrn.size + 2 * m), np.r_[p, np.zeros(m), z],
              np.r_[w, b, -np.ones(m)], False)
        R.add(f"relu_comp{k}", m, np.r_[ids, nrn, ids], np.r_[z, z[nrn], np.zeros(m)], np.r_[z, p, z],
              np.r_[np.ones(m), -w, -b], True)
        if mag is not None:
            _triangle_rows(R, k, sel, nrn, p, w, z, b, lo, hi, mag)


def _box_rows(R: _Rows, name: str, var: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """v² − s v + p ≤ 0 for variables `var` (P indices) with bounds [lo, hi]; their (c, r²)."""
    s, p, t = safe_box(lo, hi)
    m = var.size
    ids = np.arange(m)
    R.add(name, m, np.r_[ids, ids, ids], np.r_[var, np.zeros(2 * m)], np.r_[var, var, np.zeros(m)],
          np.r_[np.ones(m), -s, p], False)
    return s / 2, t


def relu_qcqp(net: LayeredNet, bounds: Bounds, row: int = 0, hidden_boxes: bool = True,
              triangle: bool = False) -> Lowered[QuadraticModel]:
    """The SDP relaxation of min over the input box of output `row` of `net` (module doc), with
    the LP chord of every unstable neuron as a linear cut when `triangle`.

    `columns` maps "x" and f"z{k}" to slices of v (P index − 1) — z{k} holds the non-inactive
    neurons in order; info["layers"][k] gives each neuron's v index (−1 if inactive), info["rows"]
    the row groups. Raises LoweringError on non-finite bounds or lo > hi.
    """
    _check(bounds, len(net.layers))
    R = _Rows([], [], [], [], [], {})
    n0 = net.n_inputs
    index = {0: np.arange(1, n0 + 1)}
    columns, layers, nvar = {"x": slice(0, n0)}, {}, n0
    traces = [_box_rows(R, "box_x", index[0], bounds.lower[0], bounds.upper[0])]
    # |v| bounds by P index for the cuts, grown layer by layer: inputs from their box, z_k ∈ [0, u_k]
    mag = np.r_[0.0, np.maximum(np.abs(bounds.lower[0]), np.abs(bounds.upper[0]))] if triangle else None
    for k, layer in enumerate(net.hidden, start=1):
        lo, hi = bounds.lower[k], bounds.upper[k]
        live = np.flatnonzero(hi > 0)
        var = np.full(lo.size, -1)
        var[live] = nvar + 1 + np.arange(live.size)
        columns[f"z{k}"] = slice(nvar, nvar + live.size)
        nvar += live.size
        _relu_rows(R, k, layer, index, lo, hi, var, mag)   # its cuts read only earlier layers' |v|
        if mag is not None:
            mag = np.r_[mag, hi[live]]
        index[k], layers[k] = var, var - (var >= 0)
        if hidden_boxes and live.size:
            plo, phi = np.maximum(lo[live], 0.0), hi[live]
            traces.append(_box_rows(R, f"box_z{k}", var[live], plo, phi))
    model = _assemble(R, nvar, _objective(net, index, row), traces if hidden_boxes else None)
    return Lowered(model, columns, {"layers": layers, "rows": dict(R.groups), "row": row})


def _objective(net: LayeredNet, index: dict, row: int):
    out = net.output
    if not 0 <= row < out.size:
        raise LoweringError(f"objective row {row} is outside the {out.size} outputs")
    nrn, p, w = _affine(out, index, np.array([row]))
    return np.zeros(p.size + 1, dtype=np.int64), np.r_[p, 0].astype(np.int64), np.r_[w, out.bias[row]]


def _assemble(R: _Rows, n: int, objective, traces) -> QuadraticModel:
    a, b = np.concatenate(R.a).astype(np.int64), np.concatenate(R.b).astype(np.int64)
    oa, ob, ov = objective
    lo_idx, hi_idx = np.minimum(np.r_[a, oa], np.r_[b, ob]), np.maximum(np.r_[a, oa], np.r_[b, ob])
    keys, slot = np.unique(lo_idx * (n + 1) + hi_idx, return_inverse=True)
    M = sp.coo_matrix((np.concatenate(R.vals), (np.concatenate(R.rows), slot[:a.size])),
                      shape=(R.m, keys.size)).tocsr()
    M.sum_duplicates()
    obj = np.zeros(keys.size)
    np.add.at(obj, slot[a.size:], ov)
    center = radius2 = None
    if traces is not None:  # boxes in variable order: x, then each layer's live z
        center = np.concatenate([c for c, _ in traces])
        radius2 = np.concatenate([r for _, r in traces])
    return QuadraticModel(n, keys // (n + 1), keys % (n + 1), obj, M, np.concatenate(R.equality), center, radius2)


def _check(bounds: Bounds, depth: int) -> None:
    for k in range(depth):
        lo, hi = bounds.lower[k], bounds.upper[k]
        bad = np.flatnonzero(~np.isfinite(lo) | ~np.isfinite(hi) | (lo > hi))
        if bad.size:
            raise LoweringError(f"SDP lowering: layer {k} neuron {bad[0]} has unusable bounds "
                                f"[{lo[bad[0]]}, {hi[bad[0]]}] (need finite lo ≤ hi)")
