"""Pre-activations of a `LayeredNet` as affine maps of the variables an SDP lowering keeps.

The SDP lowerings (lowerings/quadratic.py) keep as variables only the free inputs (lo < hi) and the
neurons they cannot resolve; a fixed input is a constant, an inactive neuron is 0 and — with
substitution — a stably active neuron is its own pre-activation, z = ẑ, replaced into every later
layer (the net becomes a skip-connected net over the kept variables). That is the *exact* lifting of
the linear equation z − ẑ = 0 (P a = 0, the whole row of P), where a first-row equation alone leaves
the lifted row free (DESIGN.md, "Eliminate exactly").

Composed coefficients are rounded: for every pre-activation a rigorous bound ε on
|Â v − ẑ(x)| at every network point v = v(x) of the box is returned beside Â (Higham 2002 §3.1:
a sum of K products errs by at most γ_K Σ|w||m|; errors of substituted neurons propagate through
|W|). A layer read only through kept variables (unit columns) and its own bias is exact: ε = 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optcert.bounds.layer_bounds import Bounds
from optcert.ir.layered import LayeredNet

_U = 2.0 ** -53
INACTIVE, SUBSTITUTED = -1, -2


def gamma(k: int) -> float:
    return k * _U / (1 - k * _U)


@dataclass(frozen=True, eq=False)
class Composed:
    """ẑ_k ≈ A v with A (n_k × (n+1), column 0 the constant, column p the P index p) and the
    rigorous error bound `error` (n_k,) at network points."""

    A: sp.csr_matrix
    error: np.ndarray


@dataclass(frozen=True, eq=False)
class Layout:
    """Which network quantities are variables: `inputs` the free input indices (P index 1 + i in
    order), `fixed` the full input vector with the fixed inputs' values (0 at free ones); `index[k]`
    (k ≥ 1) the P index of each neuron of ReLU layer k, or INACTIVE (z = 0) or SUBSTITUTED (z = ẑ);
    `n` the number of variables; `vmax[p]` bounds |v_p| (vmax[0] = 1)."""

    inputs: np.ndarray
    fixed: np.ndarray
    index: dict
    n: int
    vmax: np.ndarray


def layout(net: LayeredNet, bounds: Bounds, substitute: bool) -> Layout:
    """The variables of the SDP lowering: free inputs, then per layer the neurons kept (unstable ones,
    and active ones unless `substitute`), in neuron order."""
    lo0, hi0 = bounds.lower[0], bounds.upper[0]
    free = np.flatnonzero(lo0 < hi0)
    fixed = np.where(lo0 < hi0, 0.0, lo0)
    index, n = {}, free.size
    vmax = [np.ones(1), np.maximum(np.abs(lo0[free]), np.abs(hi0[free]))]
    for k in range(1, len(net.layers)):
        lo, hi = bounds.lower[k], bounds.upper[k]
        kept = (hi > 0) & ((lo < 0) | (not substitute))
        var = np.where(hi > 0, SUBSTITUTED, INACTIVE)
        var[kept] = n + 1 + np.arange(int(kept.sum()))
        index[k], n = var, n + int(kept.sum())
        vmax.append(np.maximum(np.abs(lo[kept]), np.abs(hi[kept])))
    return Layout(free, fixed, index, n, np.concatenate(vmax))


def compose(net: LayeredNet, lay: Layout) -> list[Composed]:
    """`Composed` for every layer 1..L (index k − 1), in order; see the module doc."""
    N = lay.n + 1
    maps: dict[int, sp.csr_matrix] = {0: _input_map(lay, N)}
    inexact = {0: np.flatnonzero(lay.fixed != 0).size > 0}
    errors: dict[int, np.ndarray] = {0: np.zeros(net.n_inputs)}
    out = []
    for k, layer in enumerate(net.layers, start=1):
        parts = [sp.csr_matrix(w) @ maps[j] for j, w in zip(layer.sources, layer.weights)]
        A = sum(parts[1:], parts[0]).tolil() if len(parts) > 1 else parts[0].tolil()
        A[:, 0] = A[:, 0].toarray() + layer.bias[:, None]
        A = sp.csr_matrix(A)
        err = _error(layer, maps, errors, lay, inexact)
        out.append(Composed(A, err))
        if k < len(net.layers):
            maps[k], errors[k], inexact[k] = _neuron_map(A, err, lay.index[k], N)
    return out


def _input_map(lay: Layout, N: int) -> sp.csr_matrix:
    """x = M v: free inputs are unit rows, fixed ones their value in the constant column."""
    n0 = lay.fixed.size
    rows = np.r_[lay.inputs, np.flatnonzero(lay.fixed != 0)]
    cols = np.r_[1 + np.arange(lay.inputs.size), np.zeros(rows.size - lay.inputs.size, dtype=np.int64)]
    vals = np.r_[np.ones(lay.inputs.size), lay.fixed[lay.fixed != 0]]
    return sp.csr_matrix((vals, (rows, cols)), shape=(n0, N))


def _neuron_map(A: sp.csr_matrix, err: np.ndarray, var: np.ndarray, N: int):
    """z_k = M v: kept neurons unit rows, substituted ones their rows of A, inactive ones 0; the
    error per neuron; whether any row is not a unit row."""
    kept, sub = np.flatnonzero(var >= 0), np.flatnonzero(var == SUBSTITUTED)
    unit = sp.csr_matrix((np.ones(kept.size), (kept, var[kept])), shape=(var.size, N))
    keep_rows = sp.diags((var == SUBSTITUTED).astype(np.float64))
    M = (unit + keep_rows @ A).tocsr()
    M.eliminate_zeros()
    e = np.where(var == SUBSTITUTED, err, 0.0)
    return M, e, sub.size > 0


def _error(layer, maps: dict, errors: dict, lay: Layout, inexact: dict) -> np.ndarray:
    """ε_k (module doc): rounding of the composed sums over the columns that receive a non-unit
    entry, plus the sources' own errors through |W|."""
    total = np.zeros(layer.size)
    if not any(inexact[j] for j in layer.sources):
        return total
    K = sum(w.shape[1] for w in layer.weights) + 4
    touched = np.zeros(lay.n + 1, dtype=bool)
    for j in layer.sources:
        M = maps[j]
        nonunit = np.flatnonzero((np.diff(M.indptr) > 1) | (M.indptr[1:] > M.indptr[:-1]) & _not_unit(M))
        touched[np.unique(M[nonunit].indices)] = True
    touched[0] = True
    for j, w in zip(layer.sources, layer.weights):
        M = abs(maps[j]).tocsc()[:, np.flatnonzero(touched)]
        reach = M @ lay.vmax[touched]
        total += np.abs(w) @ (gamma(K) * reach + errors[j])
    total += gamma(K) * np.abs(layer.bias)
    return 2.0 * total * (1 + 8 * _U) + 1e-300


def _not_unit(M: sp.csr_matrix) -> np.ndarray:
    """Per row: does it hold anything but a single 1 outside the constant column?"""
    first = np.minimum(M.indptr[:-1], max(M.nnz - 1, 0))
    if M.nnz == 0:
        return np.zeros(M.shape[0], dtype=bool)
    return (M.data[first] != 1.0) | (M.indices[first] == 0)
