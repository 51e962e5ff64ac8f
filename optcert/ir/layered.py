"""`LayeredNet`: the canonical affine/ReLU form every engine reads.

Any `Network` of linear ops and ReLUs is, exactly, a DAG of ReLU layers

    z_0 = x (flattened input),
    ẑ_k = Σ_{j ∈ sources_k} W_{k,j} z_j + b_k,   z_k = ReLU(ẑ_k)   for k = 1 .. L-1,
    f   = Σ_{j ∈ sources_L} W_{L,j} z_j + b_L     (the output layer, no ReLU).

`to_layered` composes every chain of linear ops (Affine, Conv2d, ConvTranspose2d, Reshape, Transpose, Add,
normalisation, BatchNorm, Select, Identity) between ReLUs into dense weight matrices. Plain MLPs
(ONNX Gemm/MatMul+Add, Flatten) compose without any floating-point operation; folded scales
and convolutions round once per entry (relative error ≤ n·2⁻⁵³, not tracked).
Residual networks give layers with several sources. `with_spec` folds a `LinearSpec` into the
output layer so that the network's outputs *are* the property margins.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from optcert.errors import InvalidModelError, ModelTooLargeError
from optcert.ir import ops as O
from optcert.ir.network import Network, conv_matrix, conv_transpose_matrix

_U = np.finfo(np.float64).eps / 2  # unit roundoff of float64


@dataclass(frozen=True, eq=False)
class Layer:
    """Pre-activation ẑ = Σ_j weights[j] @ z[sources[j]] + bias. `name` is the graph node."""

    name: str
    sources: tuple[int, ...]
    weights: tuple[np.ndarray, ...]
    bias: np.ndarray

    @property
    def size(self) -> int:
        return int(self.bias.shape[0])


@dataclass(frozen=True, eq=False)
class LayeredNet:
    """ReLU layers 1..L-1 (`layers[:-1]`) and the output layer L (`layers[-1]`), see module doc."""

    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...]

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def hidden(self) -> tuple[Layer, ...]:
        return self.layers[:-1]

    @property
    def output(self) -> Layer:
        return self.layers[-1]

    def sizes(self) -> list[int]:
        """[n_0, n_1, ..., n_L]: width of z_0 = x, each ReLU layer, and the output."""
        return [self.n_inputs] + [layer.size for layer in self.layers]

    def is_chain(self) -> bool:
        """True when every layer reads only the layer before it (a plain MLP)."""
        return all(layer.sources == (k,) for k, layer in enumerate(self.layers))

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Pre-activations [ẑ_1 .. ẑ_L] for a batch x (B, n_0), float64."""
        z = [np.asarray(x, dtype=np.float64).reshape(len(x), -1)]
        pre = []
        for k, layer in enumerate(self.layers, start=1):
            h = layer.bias + sum(z[j] @ w.T for j, w in zip(layer.sources, layer.weights))
            pre.append(h)
            if k < len(self.layers):
                z.append(np.maximum(h, 0.0))
        return pre

    def with_spec(self, C: np.ndarray, d: np.ndarray) -> "LayeredNet":
        """The same net whose outputs are the margins C f + d (folded into the output layer).

        The fold rounds once per entry; `fold_error` bounds the effect so bounds stay rigorous.
        """
        C = np.asarray(C, dtype=np.float64)
        d = np.asarray(d, dtype=np.float64)
        out = self.output
        weights = tuple(C @ w for w in out.weights)
        bias = C @ out.bias + d
        folded = replace(out, weights=weights, bias=bias)
        return LayeredNet(self.input_shape, self.layers[:-1] + (folded,))

    def fold_error(self, C: np.ndarray, d: np.ndarray, source_absmax: list[np.ndarray]) -> np.ndarray:
        """A rigorous bound on |fl(C W) z + fl(C b + d) − (C (W z + b) + d)| per spec row.

        `source_absmax[j]` bounds |z_j| elementwise for each source of the (unfolded) output layer.
        """
        C = np.abs(np.asarray(C, dtype=np.float64))
        out = self.output
        gamma = _fold_gamma(C)
        total = C @ np.abs(out.bias) + np.abs(d)
        for w, zmax in zip(out.weights, source_absmax):
            total = total + C @ (np.abs(w) @ zmax)
        return gamma * total * (1 + 8 * _U) + 1e-300


def _fold_gamma(C: np.ndarray) -> float:
    """γ_{n+2} = (n+2)u / (1-(n+2)u) for a dot product of length n = columns of C (Higham 2002)."""
    n = C.shape[1] + 2
    return n * _U / (1 - n * _U)


# ---- composition of linear ops ---------------------------------------------------------------
class _Expr:
    """value = Σ_s terms[s] @ z_s + const (flat). terms[s] is None for the identity, a dense array,
    or a scipy.sparse matrix (selections and convolutions, kept sparse while they compose)."""

    def __init__(self, terms: dict[int, Any], const: np.ndarray):
        self.terms = terms
        self.const = const

    def dense(self, s: int, n_s: int) -> np.ndarray:
        m = self.terms[s]
        return np.eye(n_s) if m is None else _dense(m)


def _sp():
    """scipy.sparse, imported when a network first needs it (it costs start-up time)."""
    import scipy.sparse

    return scipy.sparse


def _issparse(m) -> bool:
    return type(m).__module__.startswith("scipy.sparse")


def _dense(m) -> np.ndarray:
    return m.toarray() if _issparse(m) else np.asarray(m)


def _sparse_or_dense(m):
    """A sparse product stays sparse while it is mostly zeros."""
    if _issparse(m) and m.nnz > _DENSE_AT * m.shape[0] * m.shape[1]:
        return m.toarray()
    return m


_DENSE_AT = 0.25        # a composed sparse term with more non-zeros than this share becomes dense
_SMALL = 1 << 22        # identity-like maps of fewer entries than this are built dense (no scipy)


def _times(A, m):
    """A @ m for a (sparse or dense) A and a term m (None = identity)."""
    if m is None:
        return A
    if _issparse(A) and _issparse(m):
        return _sparse_or_dense((A @ m).tocsr())
    return _dense(A @ m) if _issparse(A) or _issparse(m) else A @ m


def _rows_of_identity(rows: np.ndarray, keep: np.ndarray, n: int):
    """The matrix whose row i is e_{rows[i]} where keep[i], else 0: dense when small."""
    if rows.size * n < _SMALL:
        out = np.zeros((rows.size, n))
        out[np.flatnonzero(keep), rows[keep]] = 1.0
        return out
    kept = np.flatnonzero(keep)
    return _sp().csr_matrix((np.ones(kept.size), (kept, rows[kept])), shape=(rows.size, n))


def _diagonal(scale: np.ndarray):
    return np.diag(scale) if scale.size ** 2 < _SMALL else _sp().diags(scale, format="csr")


def _apply_linear(op, node: str, exprs: list[_Expr], in_shape, out_shape, sizes) -> _Expr:
    e = exprs[0]
    n_in = int(np.prod(in_shape))
    if isinstance(op, (O.Reshape, O.Identity)):
        return e
    if isinstance(op, O.Affine):
        terms = {s: _times(op.weight, m) for s, m in e.terms.items()}
        return _Expr(terms, op.weight @ e.const + op.bias)
    if isinstance(op, O.Transpose):
        perm = np.arange(n_in).reshape(in_shape).transpose(op.perm).ravel()
        terms = {s: (m[perm] if m is not None else _rows_of_identity(perm, np.ones(n_in, dtype=bool), n_in))
                 for s, m in e.terms.items()}
        return _Expr(terms, e.const[perm])
    if isinstance(op, (O.ElementwiseAffine, O.BatchNorm)):
        ew = op.as_elementwise(len(in_shape)) if isinstance(op, O.BatchNorm) else op
        scale = np.broadcast_to(ew.scale, in_shape).ravel()
        shift = np.broadcast_to(ew.shift, in_shape).ravel()
        if np.all(scale == 1.0):
            return _Expr(dict(e.terms), e.const + shift)
        terms = {s: (scale[:, None] * m if isinstance(m, np.ndarray) else _times(_diagonal(scale), m))
                 for s, m in e.terms.items()}
        return _Expr(terms, e.const * scale + shift)
    if isinstance(op, O.Conv2d):
        K = conv_matrix(op, in_shape, out_shape)
        const = K @ e.const + np.repeat(op.bias, int(np.prod(out_shape[1:])))
        return _Expr({s: _times(K, m) for s, m in e.terms.items()}, const)
    if isinstance(op, O.ConvTranspose2d):
        K = conv_transpose_matrix(op, in_shape, out_shape)
        const = K @ e.const + np.repeat(op.bias, int(np.prod(out_shape[1:])))
        return _Expr({s: _times(K, m) for s, m in e.terms.items()}, const)
    if isinstance(op, O.Select):
        keep, rows = op.index >= 0, np.maximum(op.index, 0)
        S = _rows_of_identity(rows, keep, n_in)
        return _Expr({s: _times(S, m) for s, m in e.terms.items()}, np.where(keep, e.const[rows], op.fill))
    if isinstance(op, O.Add):
        terms = dict(e.terms)
        for s, m in exprs[1].terms.items():
            terms[s] = _plus(terms[s], m, sizes[s]) if s in terms else m
        return _Expr(terms, e.const + exprs[1].const)
    raise InvalidModelError(f"node {node!r}: {O.op_name(op)} is not a linear op")


def _plus(a, b, n: int):
    """The sum of two terms (None = identity)."""
    if a is None or b is None:
        eye = np.eye(n) if n * n < _SMALL else _sp().identity(n, format="csr")
        a = eye if a is None else a
        b = eye if b is None else b
    if _issparse(a) and _issparse(b):
        return _sparse_or_dense((a + b).tocsr())
    return _dense(a) + _dense(b)


def weight_limit() -> int:
    """Dense weight entries a `LayeredNet` may hold here: physical memory / 64 bytes (the bound
    kernels keep float64, float32 and |W| copies beside the float64 arrays), or $OPTCERT_MAX_WEIGHTS."""
    given = os.environ.get("OPTCERT_MAX_WEIGHTS")
    if given:
        return int(float(given))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 64
    except (ValueError, OSError, AttributeError):   # not POSIX
        return 1 << 29


def to_layered(net: Network) -> LayeredNet:
    """Compose `net` into its `LayeredNet` (exact up to the rounding noted in the module doc).
    Raises `ModelTooLargeError` before allocating more dense weights than `weight_limit()`."""
    exprs: dict[str, _Expr] = {}
    layers: list[Layer] = []
    sizes = [net.n_inputs]
    limit, used = weight_limit(), 0

    def _layer(name: str, e: _Expr, sizes: list[int]) -> Layer:
        nonlocal used
        used += int(e.const.size) * sum(sizes[s] for s in e.terms)
        if used > limit:
            raise ModelTooLargeError(f"{net.name}: its affine/ReLU form needs more than {used:,} dense "
                                     f"weights (at layer {name!r}); this machine allows {limit:,}")
        return _dense_layer(name, e, sizes)

    for node, op in net.ops():
        if isinstance(op, O.Input):
            exprs[node] = _Expr({0: None}, np.zeros(net.n_inputs))
            continue
        ins = [exprs[p] for p in net.inputs_of(node)]
        if isinstance(op, O.ReLU):
            layers.append(_layer(node, ins[0], sizes))
            sizes.append(layers[-1].size)
            exprs[node] = _Expr({len(layers): None}, np.zeros(layers[-1].size))
            continue
        in_shape = net.shapes[net.inputs_of(node)[0]]
        exprs[node] = _apply_linear(op, node, ins, in_shape, net.shapes[node], sizes)
    layers.append(_layer(net.output, exprs[net.output], sizes))
    return LayeredNet(net.input_shape, tuple(layers))


def _dense_layer(name: str, e: _Expr, sizes: list[int]) -> Layer:
    sources = tuple(sorted(e.terms))
    weights = tuple(np.ascontiguousarray(e.dense(s, sizes[s])) for s in sources)
    for w in weights:
        w.setflags(write=False)
    return Layer(name, sources, weights, np.ascontiguousarray(e.const))
