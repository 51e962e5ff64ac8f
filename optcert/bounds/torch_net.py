"""A `LayeredNet` as torch tensors on one device and dtype, and batches of domains.

`TorchNet` holds what the bound kernels read (weights, biases, sources and the column maxima
of |W| that bound rounding errors). `DomainBatch` stacks B domains' bounds as (B, n_k) float64
tensors, so one kernel call bounds many branch-and-bound domains at once, on CPU or GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np

from optcert.bounds.layer_bounds import Bounds
from optcert.bounds.rounding import to_precision_outward
from optcert.ir.layered import LayeredNet
from optcert.precision import Precision

SPARSE_MIN_ENTRIES = 200_000   # weights at least this large ...
SPARSE_MAX_DENSITY = 0.05      # ... with at most this share of non-zeros are multiplied as sparse


@dataclass(frozen=True, eq=False)
class TorchNet:
    """Layer k (1-based, `layers[k-1]`): ẑ_k = Σ_j weights[k-1][j] @ z[sources[k-1][j]] + biases[k-1]."""

    net: LayeredNet
    weights: tuple[tuple, ...]
    biases: tuple
    abs_biases: tuple
    colmax: tuple[tuple, ...]   # colmax[k-1][j][c] = max_r |W[r, c]|
    sources: tuple[tuple[int, ...], ...]
    precision: Precision
    device: str
    _abs: dict = field(default_factory=dict, repr=False)

    @property
    def depth(self) -> int:
        return len(self.biases)

    def abs_weights(self, layer: int) -> tuple:
        """|W| of layer `layer` (0-based), made on first use (the rounding allowances need it)."""
        if layer not in self._abs:
            self._abs[layer] = tuple(w.detach().abs() for w in self.weights[layer])
        return self._abs[layer]

    def sparse_weight(self, layer: int, source: int):
        """Layer `layer`'s (0-based) weight on its `source`-th source as a sparse COO tensor when it is
        large and mostly zeros (convolutions, pooling windows and selections composed into dense
        matrices), else None. Products with it are exact sums of fewer terms than the dense ones,
        so the rounding allowances computed for the dense layer still cover them."""
        key = ("sparse", layer, source)
        if key not in self._abs:
            w = self.weights[layer][source]
            sparse = None
            if w.numel() >= SPARSE_MIN_ENTRIES:
                nnz = int((w != 0).sum())
                if nnz <= SPARSE_MAX_DENSITY * w.numel():
                    sparse = w.to_sparse().coalesce()
            self._abs[key] = sparse
        return self._abs[key]

    def sparse_csr(self, layer: int, source: int):
        """`sparse_weight` in CSR form (what the products use), or None."""
        key = ("sparse-csr", layer, source)
        if key not in self._abs:
            coo = self.sparse_weight(layer, source)
            self._abs[key] = None if coo is None else to_csr(coo)
        return self._abs[key]

    def _product(self, layer: int, source: int, z):
        """z @ Wᵀ for a batch z (B, n_source), through the sparse weight where there is one."""
        csr = self.sparse_csr(layer, source)
        if csr is None:
            return z @ self.weights[layer][source].T
        return (csr @ z.reshape(-1, z.shape[-1]).T).T.reshape(z.shape[:-1] + (-1,))

    def exact_affine(self, layer: int):
        """(weights reading the input, bias) of layer `layer` (0-based) in float64: the network's own
        values (the compute-precision tensors themselves when computing in float64)."""
        import torch

        if self.precision is Precision.FLOAT64:
            return tuple(w for j, w in zip(self.sources[layer], self.weights[layer]) if j == 0), self.biases[layer]
        key = ("exact", layer)
        if key not in self._abs:
            src = self.net.layers[layer]
            dev = self.biases[layer].device
            self._abs[key] = (tuple(torch.tensor(w, dtype=torch.float64, device=dev)
                                    for j, w in zip(src.sources, src.weights) if j == 0),
                              torch.tensor(src.bias, dtype=torch.float64, device=dev))
        return self._abs[key]

    def input_only(self, k: int) -> bool:
        """True when layer k (1-based) reads only the input: interval arithmetic is then exact
        up to rounding, and equal to CROWN's bound."""
        return all(j == 0 for j in self.sources[k - 1])

    def sizes(self) -> list[int]:
        """[n_0, n_1, ..., n_L]."""
        return self.net.sizes()

    def forward(self, x):
        """Pre-activations [ẑ_1 .. ẑ_L] for a batch x (B, n_0) (not rounding-safe)."""
        import torch

        z, pre = [x], []
        for k, (b, src) in enumerate(zip(self.biases, self.sources)):
            h = b + sum(self._product(k, s, z[j]) for s, j in enumerate(src))
            pre.append(h)
            if k < self.depth - 1:
                z.append(torch.relu(h))
        return pre


def to_csr(sparse):
    """A sparse torch tensor in CSR form (without torch's "CSR support is in beta" warning)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return sparse.to_sparse_csr()


@lru_cache(maxsize=16)
def torch_net(net: LayeredNet, device: str = "cpu", precision: Precision = Precision.FLOAT64) -> TorchNet:
    """The tensors of `net` on `device` in `precision` (cached per net object)."""
    import torch

    from optcert.bounds.memory import keep_freed_memory

    keep_freed_memory()
    dt, dev = precision.torch(), torch.device(device)
    if dev.type == "cuda":  # TF32 would break the float32 rounding-error bounds
        torch.backends.cuda.matmul.allow_tf32 = False

    def t(a):
        return torch.tensor(np.asarray(a), dtype=dt, device=dev)

    return TorchNet(net,
                    tuple(tuple(t(w) for w in layer.weights) for layer in net.layers),
                    tuple(t(layer.bias) for layer in net.layers),
                    tuple(t(np.abs(layer.bias)) for layer in net.layers),
                    tuple(tuple(t(np.abs(w).max(axis=0)) for w in layer.weights) for layer in net.layers),
                    tuple(layer.sources for layer in net.layers), precision, device)


@dataclass(frozen=True, eq=False)
class DomainBatch:
    """Bounds of B domains: lower[k], upper[k] are (B, n_k) float64 tensors, k = 0 the input box.

    May hold fewer layers than the network (a prefix), e.g. only the input box.
    """

    lower: tuple
    upper: tuple
    _cache: dict = field(default_factory=dict, repr=False)

    def cached(self, key, make):
        """`make()` computed once per batch and key (the kernels' per-layer preparations)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def size(self) -> int:
        return int(self.lower[0].shape[0])

    @property
    def depth(self) -> int:
        return len(self.lower) - 1

    @classmethod
    def from_bounds(cls, bounds: Sequence[Bounds], device: str = "cpu") -> "DomainBatch":
        """Stack equally deep `Bounds` (one per domain) onto `device`."""
        import torch

        depth = min(b.depth for b in bounds)

        def stack(which, k):
            return torch.as_tensor(np.stack([getattr(b, which)[k] for b in bounds]),
                                   dtype=torch.float64, device=torch.device(device))

        return cls(tuple(stack("lower", k) for k in range(depth + 1)),
                   tuple(stack("upper", k) for k in range(depth + 1)))

    @classmethod
    def from_box(cls, lo, hi, device: str = "cpu") -> "DomainBatch":
        """Domains given only by input boxes lo, hi of shape (n_0,) or (B, n_0)."""
        import torch

        def t(a):
            a = torch.tensor(np.asarray(a, dtype=np.float64), device=torch.device(device))
            return a.reshape(1, -1) if a.ndim == 1 else a

        return cls((t(lo),), (t(hi),))

    def to_bounds(self) -> list[Bounds]:
        """One numpy `Bounds` per domain."""
        lo = [t.detach().cpu().numpy() for t in self.lower]
        hi = [t.detach().cpu().numpy() for t in self.upper]
        return [Bounds(tuple(a[b] for a in lo), tuple(a[b] for a in hi)) for b in range(self.size)]

    def layer(self, k: int, precision: Precision = Precision.FLOAT64):
        """(lo, hi) of layer k in `precision`, rounded outward so they still enclose the truth."""
        return self.cached(("layer", k, precision),
                           lambda: to_precision_outward(self.lower[k], self.upper[k], precision))

    def extended(self, lo, hi) -> "DomainBatch":
        """This batch with one more layer appended (the earlier layers' preparations are kept)."""
        return DomainBatch(self.lower + (lo,), self.upper + (hi,), dict(self._cache))

    def take(self, idx) -> "DomainBatch":
        """The domains at `idx` (a LongTensor), every layer (preparations are recomputed)."""
        return DomainBatch(tuple(t[idx] for t in self.lower), tuple(t[idx] for t in self.upper))

    def prefix(self, k: int) -> "DomainBatch":
        """Layers 0..k only (the earlier layers' preparations are kept)."""
        keep = {key: v for key, v in self._cache.items() if key[1] <= k}
        return DomainBatch(self.lower[:k + 1], self.upper[:k + 1], keep)
