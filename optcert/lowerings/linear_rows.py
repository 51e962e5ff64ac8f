"""Shared skeleton of the linear(-integer) lowerings: columns, affine rows and the objective.

`milp_bigm` and `lp_triangle` encode a `LayeredNet` identically except for the rows that tie
z to ẑ at an unstable ReLU; this module builds everything else and calls an *encoding* for those.

Column layout, in this order (every column is boxed):
  "x"          the input z_0, in the input box;
  per ReLU layer k = 1 .. upto−1:
  f"z{k}"      z_k of the active and unstable neurons (neuron order); active: [l, u], unstable: [0, u];
  f"zhat{k}"   ẑ_k of the unstable neurons (and of the inactive ones with `keep_inactive`), [l, u];
  ...          blocks the encoding adds (f"a{k}": the MILP's binaries of the unstable neurons);
  "t"          the epigraph variable, only when the objective is the max of several outputs.
Inactive neurons (u ≤ 0) get no column: z = 0. Active ones (l ≥ 0) share one column for z = ẑ.
Row layout: per layer k, f"affine{k}" — one equality  (column holding ẑ_k[i]) − Σ_j W z_j = b_i
per neuron with a ẑ column — then the encoding's row groups; last the "epigraph" rows t − m_i ≥ b_i.
Every coefficient is a negated weight, ±1 or what the encoding puts in: no products are rounded.
`Lowered.info` holds "layers" {k: LayerColumns}, "rows" {group: slice}, "upto", "kind" and "sign".
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, NamedTuple

import numpy as np
import scipy.sparse as sp

from optcert.bounds.layer_bounds import Bounds
from optcert.errors import LoweringError
from optcert.forms import LinearProgram, Lowered
from optcert.ir.layered import Layer, LayeredNet


class Combine(Enum):
    """How several output rows form one objective. MAX: min over x of max_i m_i (a VNN-LIB `and`)."""

    MAX = "max"


class Sense(Enum):
    """Minimise or maximise the chosen output; the value is the sign the form's c carries."""

    MINIMIZE = 1
    MAXIMIZE = -1


@dataclass(frozen=True)
class Objective:
    """Which outputs (rows of the folded net's output layer) to optimise, and how.

    One row: minimise (or, with `Sense.MAXIMIZE`, maximise) it. Several rows: minimise their max
    through an epigraph column "t". The form always minimises; info["sign"] · objective is the
    value of the chosen output.
    """

    rows: tuple[int, ...]
    combine: Combine = Combine.MAX
    sense: Sense = Sense.MINIMIZE

    def __post_init__(self):
        rows = tuple(int(r) for r in self.rows)
        if not rows or min(rows) < 0 or len(set(rows)) != len(rows):
            raise ValueError(f"objective rows must be distinct non-negative indices, got {rows}")
        if len(rows) > 1 and self.sense is not Sense.MINIMIZE:
            raise ValueError("maximising the max of several rows is not a linear program")
        object.__setattr__(self, "rows", rows)


@dataclass(frozen=True, eq=False)
class LayerColumns:
    """Where ReLU layer k lives in the form. Column arrays have one entry per neuron, −1 = none."""

    active: np.ndarray    # neuron indices with l ≥ 0 < u
    unstable: np.ndarray  # neuron indices with l < 0 < u
    z: np.ndarray         # column of z_k[i] (−1 for inactive: z = 0)
    zhat: np.ndarray      # column holding ẑ_k[i] (the z column for active neurons)
    a: np.ndarray         # column of the binary of unstable neuron i (MILP only)


class Unstable(NamedTuple):
    """What an encoding gets for the unstable neurons of one layer (all arrays aligned)."""

    neurons: np.ndarray
    z: np.ndarray
    zhat: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


Encoding = Callable[["RowBuilder", int, Unstable], "np.ndarray | None"]


class RowBuilder:
    """Accumulates boxed column blocks and sparse row blocks, then emits a `LinearProgram`."""

    def __init__(self):
        self.n_cols = self.n_rows = 0
        self.columns: dict[str, slice] = {}
        self.rows: dict[str, slice] = {}
        self._cols: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add_columns(self, name: str, lo, hi, labels: np.ndarray, integer: bool = False) -> np.ndarray:
        """A block of len(labels) columns named name[label] with bounds [lo, hi]; returns their indices."""
        labels = np.asarray(labels)
        n = labels.size
        lo, hi = (np.broadcast_to(np.asarray(v, np.float64), (n,)) for v in (lo, hi))
        names = np.char.add(np.char.add(name + "[", labels.astype(str)), "]") if n else np.array([], str)
        self._cols.append((lo, hi, np.full(n, integer), names))
        self.columns[name] = slice(self.n_cols, self.n_cols + n)
        self.n_cols += n
        return np.arange(self.n_cols - n, self.n_cols)

    def add_rows(self, name: str, rows, cols, vals, lo, hi) -> slice:
        """Append len(lo) rows lo ≤ A x ≤ hi given as triplets with block-local row indices."""
        lo = np.asarray(lo, np.float64).reshape(-1)
        m = lo.size
        hi = np.broadcast_to(np.asarray(hi, np.float64), (m,))
        self._rows.append((np.asarray(rows) + self.n_rows, np.asarray(cols), np.asarray(vals, np.float64), lo, hi))
        self.rows[name] = slice(self.n_rows, self.n_rows + m)
        self.n_rows += m
        return self.rows[name]

    def add_band(self, name: str, terms: list[tuple[np.ndarray, Any]], lo, hi, m: int) -> slice:
        """m rows, row r = Σ_t vals_t[r] · x[cols_t[r]]: one entry per term per row (vals may be scalar)."""
        rows = np.tile(np.arange(m), len(terms))
        cols = np.concatenate([np.broadcast_to(c, (m,)) for c, _ in terms])
        vals = np.concatenate([np.broadcast_to(np.asarray(v, np.float64), (m,)) for _, v in terms])
        return self.add_rows(name, rows, cols, vals, np.broadcast_to(np.asarray(lo, np.float64), (m,)), hi)

    def form(self, c: np.ndarray, c0: float) -> LinearProgram:
        """The accumulated problem with objective c·x + c0 (each coefficient entered once: no sums)."""
        empty = (np.zeros(0, np.int64),) * 2 + (np.zeros(0),) * 3
        rows, cols, vals, lo, hi = (np.concatenate(p) for p in zip(*(self._rows or [empty])))
        A = sp.csr_matrix((vals, (rows.astype(np.int64), cols.astype(np.int64))), shape=(self.n_rows, self.n_cols))
        A.eliminate_zeros()
        col_lo, col_hi, integer, names = (np.concatenate(p) for p in zip(*self._cols))
        return LinearProgram(c, A, lo, hi, col_lo, col_hi, integer, c0, tuple(names.tolist()))


def affine_terms(layer: Layer, source_cols: list[np.ndarray], sel: np.ndarray):
    """Triplets (row in sel, column, W entry) of Σ_j W_j[sel] z_j, skipping sources' absent columns."""
    parts = []
    for w, cols in zip(layer.weights, source_cols):
        present = np.flatnonzero(cols >= 0)
        block = sp.coo_matrix(w[np.ix_(sel, present)])
        parts.append((block.row, cols[present][block.col], block.data))
    rows, cols, vals = (np.concatenate(p) for p in zip(*parts))
    return rows, cols, vals


def source_columns(layers: dict[int, LayerColumns], x_cols: np.ndarray, layer: Layer) -> list[np.ndarray]:
    """For each source of `layer`, the column of each of its neurons (−1 where z = 0)."""
    return [x_cols if j == 0 else layers[j].z for j in layer.sources]


def _checked(bounds: Bounds, k: int, sel: np.ndarray, what: str, inactive_lo_unused: bool = False):
    """Bounds of layer k at neurons sel; LoweringError unless finite (where used), NaN-free, lo ≤ hi.

    With `inactive_lo_unused`, l of an inactive neuron (u ≤ 0) may be −inf: nothing reads it.
    """
    if k >= len(bounds.lower):
        raise LoweringError(f"{what}: no bounds given for layer {k}")
    lo, hi = bounds.lower[k][sel], bounds.upper[k][sel]
    lo_used = ~(hi <= 0) if inactive_lo_unused else np.ones(lo.size, bool)
    bad = np.isnan(lo) | np.isnan(hi) | np.isinf(hi) | (np.isinf(lo) & lo_used) | (lo > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LoweringError(f"{what}, neuron {int(sel[i])}: bounds [{lo[i]}, {hi[i]}] must be finite "
                            "with lo ≤ hi")
    return lo, hi


def _relu_layer(b: RowBuilder, net: LayeredNet, bounds: Bounds, k: int, layers: dict, x_cols: np.ndarray,
                encode: Encoding, keep_inactive: bool) -> LayerColumns:
    """Columns, affine rows and (via `encode`) ReLU rows of ReLU layer k."""
    layer = net.layers[k - 1]
    if k < len(bounds.lower) and bounds.lower[k].shape != (layer.size,):
        raise LoweringError(f"layer {k} ({layer.name}): bounds have shape {bounds.lower[k].shape}, "
                            f"expected ({layer.size},)")
    n = layer.size
    lo, hi = _checked(bounds, k, np.arange(n), f"layer {k} ({layer.name})", not keep_inactive)
    live = np.flatnonzero(hi > 0)
    unstable = np.flatnonzero((lo < 0) & (hi > 0))
    active = np.flatnonzero((lo >= 0) & (hi > 0))
    z, zhat = np.full(n, -1), np.full(n, -1)
    z[live] = b.add_columns(f"z{k}", np.maximum(lo[live], 0.0), hi[live], live)
    held = np.flatnonzero(lo < 0) if keep_inactive else unstable
    zhat[active] = z[active]
    zhat[held] = b.add_columns(f"zhat{k}", lo[held], hi[held], held)
    sel = np.flatnonzero(zhat >= 0)
    r, c, v = affine_terms(layer, source_columns(layers, x_cols, layer), sel)
    m = sel.size
    b.add_rows(f"affine{k}", np.concatenate([np.arange(m), r]), np.concatenate([zhat[sel], c]),
               np.concatenate([np.ones(m), -v]), layer.bias[sel], layer.bias[sel])
    a = np.full(n, -1)
    extra = encode(b, k, Unstable(unstable, z[unstable], zhat[unstable], lo[unstable], hi[unstable]))
    if extra is not None:
        a[unstable] = extra
    return LayerColumns(active, unstable, z, zhat, a)


def _objective(b: RowBuilder, net: LayeredNet, bounds: Bounds, objective: Objective, layers, x_cols):
    """(c, c0, sign) of `objective`; adds the epigraph column "t" and rows for several rows."""
    out, L = net.output, len(net.layers)
    rows = np.asarray(objective.rows)
    if rows.max() >= out.size:
        raise ValueError(f"objective row {int(rows.max())} is out of range (output has {out.size} rows)")
    r, cols, vals = affine_terms(out, source_columns(layers, x_cols, out), rows)
    if rows.size == 1:
        sign = objective.sense.value
        c = np.zeros(b.n_cols)
        c[cols] = vals * sign
        return c, float(out.bias[rows[0]]) * sign, sign
    lo, hi = _checked(bounds, L, rows, f"output layer {L} ({out.name})")
    t = b.add_columns("t", lo.max(), hi.max(), np.array(["max"]))
    m = rows.size
    b.add_rows("epigraph", np.concatenate([np.arange(m), r]), np.concatenate([np.full(m, t[0]), cols]),
               np.concatenate([np.ones(m), -vals]), out.bias[rows], np.inf)
    c = np.zeros(b.n_cols)
    c[t] = 1.0
    return c, 0.0, 1


def lower_network(net: LayeredNet, bounds: Bounds, objective: Objective | None, upto: int | None,
                  encode: Encoding, kind: str, keep_inactive: bool = False) -> Lowered[LinearProgram]:
    """The form of layers 1..upto−1 (all of them and `objective` when upto is None), see module doc."""
    L = len(net.layers)
    if (objective is None) == (upto is None):
        raise ValueError("give an objective for the whole network, or `upto` (and no objective) for a prefix")
    upto = L if upto is None else int(upto)
    if not 1 <= upto <= L:
        raise ValueError(f"upto={upto} must lie in 1..{L}")
    b = RowBuilder()
    if bounds.lower[0].shape != (net.n_inputs,):
        raise LoweringError(f"input box has shape {bounds.lower[0].shape}, expected ({net.n_inputs},)")
    x_lo, x_hi = _checked(bounds, 0, np.arange(net.n_inputs), "input layer 0")
    x_cols = b.add_columns("x", x_lo, x_hi, np.arange(net.n_inputs))
    layers: dict[int, LayerColumns] = {}
    for k in range(1, upto):
        layers[k] = _relu_layer(b, net, bounds, k, layers, x_cols, encode, keep_inactive)
    c, c0, sign = (np.zeros(b.n_cols), 0.0, 1) if objective is None else \
        _objective(b, net, bounds, objective, layers, x_cols)
    info = {"kind": kind, "upto": upto, "layers": layers, "rows": dict(b.rows), "sign": sign,
            "objective": objective}
    return Lowered(b.form(c, c0), dict(b.columns), info)


def pre_activation_objectives(lowered: Lowered, net: LayeredNet, k: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """(G, g0) with ẑ_k = G · columns + g0 exactly, for a lowering that contains layers 1..k−1.

    Minimising / maximising row i of G over the form bounds neuron i of layer k (LP or MILP
    bound tightening). Entries of G are copies of the weights of layer k.
    """
    upto = lowered.info["upto"]
    if not 1 <= k <= upto:
        raise ValueError(f"layer {k} is not bounded by a lowering of layers 1..{upto - 1}")
    layer = net.layers[k - 1]
    x_cols = np.arange(lowered.columns["x"].start, lowered.columns["x"].stop)
    r, c, v = affine_terms(layer, source_columns(lowered.info["layers"], x_cols, layer), np.arange(layer.size))
    G = sp.csr_matrix((v, (r, c)), shape=(layer.size, lowered.form.n_cols))
    return G, np.array(layer.bias, dtype=np.float64, copy=True)
