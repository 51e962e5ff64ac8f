"""The checker's own rebuild of the SDP relaxation of one spec row (Raghunathan et al. 2018), row
for row in the order of the engines' lowering (optcert/lowerings/quadratic.py), so that stored
multipliers y line up: constraints as triplets (row, a, b, value) over P = [1 vᵀ; v V], meaning
⟨Q_row, P⟩ = Σ value·P[a, b] ≤ 0 (or = 0 on equality rows).

v = (x, z_1, z_2, …) holds each input and each ReLU output that can be positive (u > 0); an inactive
neuron (u ≤ 0) is 0. Per ReLU layer, active neurons (l ≥ 0): z − ẑ = 0; unstable ones: −z ≤ 0,
ẑ − z ≤ 0, z² − z ẑ = 0 and, with `triangle`, the chord z − Σ c_j v_j + K ≤ 0 (c = fl(s w),
s = u/(u − l), K lowered by a margin covering every rounding); boxes v² − s v + p ≤ 0 with
s = l + u and p rounded down below min(s l − l², s u − u²) — valid on the whole interval. Each
constraint is valid at every network point whose pre-activations lie in the checker's bounds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optcert.checking.net import CheckNet, U, down, up


@dataclass
class Model:
    """Constraint triplets, equality flags, the variables' box centres and squared radii."""

    rows: list = field(default_factory=list)
    a: list = field(default_factory=list)
    b: list = field(default_factory=list)
    vals: list = field(default_factory=list)
    equality: list = field(default_factory=list)
    centre: list = field(default_factory=list)
    radius2: list = field(default_factory=list)
    m: int = 0
    n: int = 0

    def add(self, count: int, rows, a, b, vals, equality: bool) -> None:
        self.rows.append(np.asarray(rows, dtype=np.int64) + self.m)
        self.a.append(np.asarray(a, dtype=np.int64))
        self.b.append(np.asarray(b, dtype=np.int64))
        self.vals.append(np.asarray(vals, dtype=np.float64))
        self.equality.append(np.full(count, equality))
        self.m += count

    def arrays(self):
        cat = np.concatenate
        return cat(self.rows), cat(self.a), cat(self.b), cat(self.vals), cat(self.equality)


def safe_box(lo: np.ndarray, hi: np.ndarray):
    """(s, p, r²): v² − s v + p ≤ 0 holds on all of [lo, hi], and (v − s/2)² ≤ r² there."""
    s = lo + hi
    p = np.minimum(s * lo - lo * lo, s * hi - hi * hi)
    p = down(p - (4 * U * (np.abs(s * lo) + lo * lo + np.abs(s * hi) + hi * hi) + 1e-300))
    c = s / 2
    return s, p, up((c * c) * (1 + 4 * U) - p + 4 * U * np.abs(p)) + 1e-300


def _box(model: Model, var: np.ndarray, lo, hi) -> None:
    s, p, r2 = safe_box(lo, hi)
    m, ids = var.size, np.arange(var.size)
    model.add(m, np.r_[ids, ids, ids], np.r_[var, np.zeros(2 * m)], np.r_[var, var, np.zeros(m)],
              np.r_[np.ones(m), -s, p], False)
    model.centre.append(s / 2)
    model.radius2.append(r2)


def _affine(layer, index: dict, sel: np.ndarray):
    """(neuron, P index, weight) of ẑ[sel], sources without a variable (inactive) skipped."""
    parts = []
    for j, w in zip(layer.sources, layer.weights):
        cols = index[j]
        keep = np.flatnonzero(cols >= 0)
        sub = w[np.ix_(sel, keep)]
        r, c = np.nonzero(sub)
        parts.append((r, cols[keep][c], sub[r, c]))
    return tuple(np.concatenate(p) for p in zip(*parts))


def _triangle(model: Model, sel, nrn, p, w, z, b, lo, hi, mag: np.ndarray) -> None:
    m = sel.size
    l, u = lo[sel], hi[sel]
    s = u / (u - l)
    c = s[nrn] * w
    delta = np.zeros(m)
    np.add.at(delta, nrn, np.abs(c) * mag[p])
    sl, sb = s * l, s * b
    K = sl - sb
    K = down(K - (4 * U * (delta + np.abs(u) + np.abs(l) + np.abs(sl) + np.abs(sb) + np.abs(K)) + 1e-300))
    ids = np.arange(m)
    model.add(m, np.r_[ids, nrn, ids], np.zeros(2 * m + nrn.size), np.r_[z, p, np.zeros(m)], np.r_[np.ones(m), -c, K],
              False)


def _relu(model: Model, layer, index: dict, lo, hi, var: np.ndarray, mag) -> None:
    for name, sel in (("active", np.flatnonzero(lo >= 0)), ("unstable", np.flatnonzero((lo < 0) & (hi > 0)))):
        if sel.size == 0:
            continue
        nrn, p, w = _affine(layer, index, sel)
        z, b, m = var[sel], layer.bias[sel], sel.size
        ids = np.arange(m)
        if name == "active":
            model.add(m, np.r_[ids, nrn, ids], np.zeros(2 * m + nrn.size), np.r_[z, p, np.zeros(m)],
                      np.r_[np.ones(m), -w, -b], True)
            continue
        model.add(m, ids, np.zeros(m), z, -np.ones(m), False)
        model.add(m, np.r_[nrn, ids, ids], np.zeros(nrn.size + 2 * m), np.r_[p, np.zeros(m), z],
                  np.r_[w, b, -np.ones(m)], False)
        model.add(m, np.r_[ids, nrn, ids], np.r_[z, z[nrn], np.zeros(m)], np.r_[z, p, z], np.r_[np.ones(m), -w, -b],
                  True)
        if mag is not None:
            _triangle(model, sel, nrn, p, w, z, b, lo, hi, mag)


def build(net: CheckNet, lower: list, upper: list, hidden_boxes: bool, triangle: bool):
    """(model, index): the constraints of the relaxation over bounds lower/upper (layers 0..L−1,
    1-D arrays), and each layer's P index per neuron (−1: no variable)."""
    model = Model()
    n0 = net.n_inputs
    index = {0: np.arange(1, n0 + 1)}
    nvar = n0
    _box(model, index[0], lower[0], upper[0])
    mag = np.r_[0.0, np.maximum(np.abs(lower[0]), np.abs(upper[0]))] if triangle else None
    for k in range(1, net.depth):
        lo, hi = lower[k], upper[k]
        live = np.flatnonzero(hi > 0)
        var = np.full(lo.size, -1)
        var[live] = nvar + 1 + np.arange(live.size)
        nvar += live.size
        _relu(model, net.layer(k), index, lo, hi, var, mag)
        if mag is not None:
            mag = np.r_[mag, hi[live]]
        index[k] = var
        if hidden_boxes and live.size:
            _box(model, var[live], np.maximum(lo[live], 0.0), hi[live])
    model.n = nvar
    return model, index
