"""A ReLU network as a QCQP over the variables v it cannot resolve, and its Shor relaxation
(`QuadraticModel`) — the common source of the full SDP and the rank-r Burer–Monteiro forms.

Raghunathan, Steinhardt & Liang 2018 ("Semidefinite relaxations for certifying robustness to
adversarial examples"); the rank-r view is Chiu & Zhang 2023. v holds the free inputs (lo < hi; a
fixed input is a constant) and, per ReLU layer k, the kept neurons (lowerings/substitution.py), with
ẑ = Â v their composed pre-activations and [l, u] their bounds:
  inactive (u ≤ 0)   no variable (z = 0);
  active   (l ≥ 0)   `ActiveMode.SUBSTITUTE` (default): no variable, z := ẑ in every later layer —
                     the exact lifting of z = ẑ (DESIGN.md);  `LIFT`: a variable with z − ẑ = 0 and
                     the lifted z² − z·ẑ = 0 (the seed's model);  `EQUATION`: z − ẑ = 0 only (loose:
                     its lifted row stays free, kept for comparison);
  unstable           −z ≤ 0,  ẑ − z ≤ 0 (linear),  z² − z·ẑ = 0 (lifted complementarity);
  unstable, `triangle` z − Σ c_j v_j + K ≤ 0 (linear: the LP chord, optional),
  stable with a 0 bound  −ẑ ≤ 0 (active, l = 0) or ẑ ≤ 0 (inactive, u = 0): a branch-and-bound split,
with c_j = fl(s w_j), s = fl(u/(u − l)), and K = fl(s l) − fl(s b) lowered by a margin δ that covers
every rounding (of s, of each c_j times the largest |v_j| the boxes allow, of K) — so the cut is
implied by z ≤ u(ẑ − l)/(u − l) on the box and never removes a network point. With the cuts the
SDP is at least as tight as the LP triangle relaxation over the same bounds (Batten et al. 2021,
"Efficient neural network verification via layer-based semidefinite relaxations and linear cuts").
Boxes (free inputs always; kept neurons with `hidden_boxes`) as v_i² − s v_i + p ≤ 0
with s = fl(l + u) and p rounded *down* below min(s l − l², s u − u²), so each is valid on the
whole interval despite rounding. Each box gives its variable a centre c = s/2 (exact) and
r² = c² − p rounded up, the radius of the centred trace bound the certificate uses (see
`QuadraticModel`); without hidden boxes the model has no centre (no trace bound).
Composed coefficients (substituted neurons, fixed inputs) are rounded: each row touching them gets a
`row_slack` covering that error at every network point, and the objective's constant is lowered by
its error — so every network point stays feasible and the objective never overestimates.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import scipy.sparse as sp

from optcert.bounds.layer_bounds import Bounds
from optcert.errors import LoweringError
from optcert.forms import Lowered, QuadraticModel
from optcert.ir.layered import LayeredNet
from optcert.lowerings.substitution import Composed, Layout, compose, layout

_U = 2.0 ** -53


class ActiveMode(Enum):
    """How stably active neurons enter the relaxation (module doc)."""

    SUBSTITUTE = "substitute"
    LIFT = "lift"
    EQUATION = "equation"


@dataclass
class _Rows:
    """Constraint triplets (row, a, b, value) over P indices and row slacks, collected in bulk."""

    rows: list
    a: list
    b: list
    vals: list
    equality: list
    groups: dict
    slack: list
    m: int = 0

    def add(self, name: str, count: int, row_local, a, b, vals, equality: bool, slack=None) -> None:
        self.slack.append(np.zeros(count) if slack is None else np.asarray(slack, dtype=np.float64))
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


def _rows_of(comp: Composed, sel: np.ndarray):
    """(neuron, P index ≥ 1, weight) of the composed pre-activations of neurons `sel`, their
    constants and error bounds."""
    sub = comp.A[sel]
    coo = sp.csr_matrix(sub[:, 1:]).tocoo()
    return coo.row, coo.col + 1, coo.data, sub[:, [0]].toarray().ravel(), comp.error[sel]


def _triangle_rows(R: _Rows, k: int, sel, nrn, p, w, z, b, err, lo, hi, mag: np.ndarray) -> None:
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
          np.r_[np.ones(m), -c, K], False, _up(s * err * (1 + 4 * _U)))


def _relu_rows(R: _Rows, k: int, comp: Composed, var: np.ndarray, lo, hi, mode: "ActiveMode",
               mag: np.ndarray | None) -> None:
    """Rows of ReLU layer k (module doc) over its kept neurons; `var[i]` is the P index of z_k[i];
    `mag` (bounds on |v| by P index) adds the triangle cuts when given."""
    unstable = np.flatnonzero((lo < 0) & (hi > 0))
    active = np.flatnonzero((lo >= 0) & (hi > 0) & (var >= 0))
    _sign_rows(R, k, comp, np.flatnonzero((lo == 0) & (hi > 0) & (var < 0)), -1.0)
    _sign_rows(R, k, comp, np.flatnonzero((hi == 0) & (lo < 0)), 1.0)
    for name, sel in (("active", active), ("unstable", unstable)):
        if sel.size == 0:
            continue
        nrn, p, w, b, err = _rows_of(comp, sel)
        z, m, u = var[sel], sel.size, hi[sel]
        ids = np.arange(m)
        if name == "active":  # z − ẑ = 0
            R.add(f"active{k}", m, np.r_[ids, nrn, ids], np.zeros(2 * m + nrn.size), np.r_[z, p, np.zeros(m)],
                  np.r_[np.ones(m), -w, -b], True, err)
            if mode is ActiveMode.EQUATION:
                continue
        else:
            R.add(f"relu_nonneg{k}", m, ids, np.zeros(m), z, -np.ones(m), False)
            R.add(f"relu_ge{k}", m, np.r_[nrn, ids, ids], np.zeros(nrn.size + 2 * m), np.r_[p, np.zeros(m), z],
                  np.r_[w, b, -np.ones(m)], False, err)
        R.add(f"relu_comp{k}" if name == "unstable" else f"active_comp{k}", m, np.r_[ids, nrn, ids],
              np.r_[z, z[nrn], np.zeros(m)], np.r_[z, p, z], np.r_[np.ones(m), -w, -b], True,
              _up(u * err * (1 + 4 * _U)))
        if mag is not None and name == "unstable":
            _triangle_rows(R, k, sel, nrn, p, w, z, b, err, lo, hi, mag)


def _sign_rows(R: _Rows, k: int, comp: Composed, sel: np.ndarray, sign: float) -> None:
    """sign·ẑ ≤ 0 for stable neurons whose bound is 0 — the split constraints of a branch-and-bound
    domain (ẑ ≥ 0 on a substituted neuron, ẑ ≤ 0 on a dropped one), lost otherwise."""
    if sel.size == 0:
        return
    nrn, p, w, b, err = _rows_of(comp, sel)
    m = sel.size
    R.add(f"split_sign{k}", m, np.r_[nrn, np.arange(m)], np.zeros(nrn.size + m), np.r_[p, np.zeros(m, np.int64)],
          sign * np.r_[w, b], False, err)


def _up(t: np.ndarray) -> np.ndarray:
    return np.where(t > 0, np.nextafter(t, np.inf), 0.0)


def _box_rows(R: _Rows, name: str, var: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """v² − s v + p ≤ 0 for variables `var` (P indices) with bounds [lo, hi]; their (c, r²)."""
    s, p, t = safe_box(lo, hi)
    m = var.size
    ids = np.arange(m)
    R.add(name, m, np.r_[ids, ids, ids], np.r_[var, np.zeros(2 * m)], np.r_[var, var, np.zeros(m)],
          np.r_[np.ones(m), -s, p], False)
    return s / 2, t


def relu_qcqp(net: LayeredNet, bounds: Bounds, row: int = 0, hidden_boxes: bool = True,
              triangle: bool = False, active: ActiveMode = ActiveMode.SUBSTITUTE) -> Lowered[QuadraticModel]:
    """The SDP relaxation of min over the input box of output `row` of `net` (module doc), with
    the LP chord of every unstable neuron as a linear cut when `triangle`.

    `columns` maps "x" (the free inputs) and f"z{k}" (layer k's kept neurons, in order) to slices of
    v (P index − 1); info: "layout" (lowerings/substitution.Layout: free inputs, fixed values, each
    neuron's P index or INACTIVE/SUBSTITUTED), "layers" (k → each neuron's v index, −1 if not a
    variable), "rows" (row groups), "row", "active" (the mode). Use `network_point` and
    `input_point` to map between inputs and v. Raises LoweringError on non-finite bounds or lo > hi.
    """
    _check(bounds, len(net.layers))
    lay = layout(net, bounds, active is ActiveMode.SUBSTITUTE)
    composed = compose(net, lay)
    R = _Rows([], [], [], [], [], {}, [])
    n0 = lay.inputs.size
    columns, layers = {"x": slice(0, n0)}, {}
    traces = [_box_rows(R, "box_x", 1 + np.arange(n0), bounds.lower[0][lay.inputs], bounds.upper[0][lay.inputs])]
    mag = lay.vmax if triangle else None
    for k in range(1, len(net.layers)):
        lo, hi, var = bounds.lower[k], bounds.upper[k], lay.index[k]
        kept = np.flatnonzero(var >= 0)
        first = int(var[kept[0]]) - 1 if kept.size else 0
        columns[f"z{k}"] = slice(first, first + kept.size)
        _relu_rows(R, k, composed[k - 1], var, lo, hi, active, mag)
        layers[k] = np.where(var >= 0, var - 1, -1)
        if hidden_boxes and kept.size:
            traces.append(_box_rows(R, f"box_z{k}", var[kept], np.maximum(lo[kept], 0.0), hi[kept]))
    model = _assemble(R, lay.n, _objective(composed[-1], row), traces if hidden_boxes else None)
    return Lowered(model, columns, {"layout": lay, "layers": layers, "rows": dict(R.groups), "row": row,
                                    "active": active})


def network_point(lowered: Lowered[QuadraticModel], net: LayeredNet, x: np.ndarray) -> np.ndarray:
    """v(x): the model's variables at the network point of input x (free inputs, kept neurons)."""
    lay: Layout = lowered.info["layout"]
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    pre = net.forward(x[None])
    parts = [x[lay.inputs]]
    for k in range(1, len(net.layers)):
        parts.append(np.maximum(pre[k - 1][0], 0.0)[lay.index[k] >= 0])
    return np.concatenate(parts)


def input_point(lowered: Lowered[QuadraticModel], v: np.ndarray) -> np.ndarray:
    """The full input vector whose free inputs are v's first entries (fixed inputs at their value)."""
    lay: Layout = lowered.info["layout"]
    x = lay.fixed.copy()
    x[lay.inputs] = np.asarray(v, dtype=np.float64)[:lay.inputs.size]
    return x


def _objective(out: Composed, row: int):
    """Slots (0, p) of output `row`'s composed map, its constant lowered by its error bound."""
    if not 0 <= row < out.A.shape[0]:
        raise LoweringError(f"objective row {row} is outside the {out.A.shape[0]} outputs")
    nrn, p, w, b, err = _rows_of(out, np.array([row]))
    const = float(b[0])
    if err[0] > 0:
        const = float(np.nextafter(const - err[0] * (1 + 4 * _U) - 4 * _U * abs(const), -np.inf))
    return np.zeros(p.size + 1, dtype=np.int64), np.r_[p, 0].astype(np.int64), np.r_[w, const]


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
    if traces is not None:  # boxes in variable order: x, then each layer's kept z
        center = np.concatenate([c for c, _ in traces])
        radius2 = np.concatenate([r for _, r in traces])
    slack = np.concatenate(R.slack)
    return QuadraticModel(n, keys // (n + 1), keys % (n + 1), obj, M, np.concatenate(R.equality), center, radius2,
                          slack if np.any(slack > 0) else None)


def _check(bounds: Bounds, depth: int) -> None:
    for k in range(depth):
        lo, hi = bounds.lower[k], bounds.upper[k]
        bad = np.flatnonzero(~np.isfinite(lo) | ~np.isfinite(hi) | (lo > hi))
        if bad.size:
            raise LoweringError(f"SDP lowering: layer {k} neuron {bad[0]} has unusable bounds "
                                f"[{lo[bad[0]]}, {hi[bad[0]]}] (need finite lo ≤ hi)")
