"""Neurons inactive in every domain of a batch, left out of the backward pass (exact).

A ReLU neuron whose certified upper bound is ≤ 0 in every domain of the batch outputs 0 there,
so CROWN's multiplier on it is 0 (both relaxation slopes are 0; its triangle height and its
rounding allowance are 0 too): its column of Λ_j and ν_j contributes nothing to the bound, its
value or its gradient. The backward pass therefore runs on the net restricted to the other
neurons — weights W_kj gathered to rows `keep_k` and columns `keep_j`, and every per-neuron
vector (relaxation, allowance, centre value, bias) gathered alike — and computes the same bound
with smaller products. On the shared mnistfc nets at eps 0.03, 79–96% of the first layer's
neurons are inactive in all of 64 sub-boxes, and the products into the 784 inputs dominate.
The rounding allowances keep the full layer sizes in their γ_n, which only over-covers.
A layer is compacted when at most `COMPACT` of its neurons stay (else the gathers cost more than
they save); the gathered tensors are cached on the domain batch.
"""
from __future__ import annotations

from dataclasses import fields

from optcert.bounds.relaxation import ReluLayer, allowance, centre_value, layer_vectors, relu_layer
from optcert.bounds.torch_net import DomainBatch, TorchNet, to_csr

COMPACT = 0.85   # compact a layer when at most this share of its neurons is kept


def kept(tn: TorchNet, domains: DomainBatch, j: int):
    """Indices (LongTensor) of ReLU layer j's neurons that are not inactive in every domain, or
    None to keep the whole layer."""
    def make():
        import torch

        alive = (relu_layer(tn, domains, j).hi[:, 0] > 0).any(dim=0)
        count = int(alive.sum())
        return torch.nonzero(alive)[:, 0] if count <= COMPACT * alive.numel() else None
    return domains.cached(("kept", j, tn.precision), make)


def relu_kept(tn: TorchNet, domains: DomainBatch, j: int, keep) -> ReluLayer:
    """Layer j's relaxation data restricted to `keep`."""
    layer = relu_layer(tn, domains, j)
    if keep is None:
        return layer

    def make():
        parts = {f.name: getattr(layer, f.name).index_select(-1, keep) for f in fields(layer) if f.name != "height"}
        return ReluLayer(**parts, height=layer.height.index_select(1, keep))
    return domains.cached(("relu-kept", j, tn.precision), make)


def vectors_kept(tn: TorchNet, domains: DomainBatch, j: int, keep, exact_slopes: bool):
    """`layer_vectors` restricted to `keep`, transposed: (B, 2, n_j) contiguous."""
    def make():
        V = layer_vectors(tn, domains, j, exact_slopes)
        return (V if keep is None else V.index_select(1, keep)).transpose(1, 2).contiguous()
    return domains.cached(("vectors-t", j, tn.precision, id(tn), exact_slopes, keep is None), make)


def allowance_kept(tn: TorchNet, domains: DomainBatch, k: int, own: bool, closed: bool, keep):
    """`allowance` (B, n_k) restricted to `keep`."""
    q = allowance(tn, domains, k, own, closed)
    if keep is None:
        return q
    return domains.cached(("allow-kept", k, tn.precision, id(tn), own, closed), lambda: q.index_select(1, keep))


def centre_kept(tn: TorchNet, domains: DomainBatch, k: int, keep):
    """`centre_value` (B, n_k) float64 restricted to `keep`."""
    c = centre_value(tn, domains, k)
    if keep is None:
        return c
    return domains.cached(("cvalue-kept", k, tn.precision, id(tn)), lambda: c.index_select(1, keep))


def bias_kept(tn: TorchNet, k: int, keep):
    """Layer k's bias restricted to `keep`."""
    b = tn.biases[k - 1]
    return b if keep is None else b.index_select(0, keep)


def weight_kept(tn: TorchNet, domains: DomainBatch, k: int, source: int, rows, cols):
    """The weight of layer k on `source` (its index in `tn.sources[k-1]`), rows restricted to
    `rows` (layer k's kept neurons) and columns to `cols` (the source's)."""
    w = tn.weights[k - 1][source]
    if rows is None and cols is None:
        return w

    def make():
        out = w if rows is None else w.index_select(0, rows)
        return out if cols is None else out.index_select(1, cols)
    return domains.cached(("w-kept", k, source, tn.precision, id(tn), rows is None, cols is None), make)


def sparse_kept(tn: TorchNet, domains: DomainBatch, k: int, source: int, rows, cols):
    """`weight_kept` as a sparse CSR tensor where the layer's weight is sparse (`TorchNet.sparse_weight`),
    else None."""
    if rows is None and cols is None:
        return tn.sparse_csr(k - 1, source)
    coo = tn.sparse_weight(k - 1, source)
    if coo is None:
        return None

    def make():
        out = coo if rows is None else coo.index_select(0, rows)
        return to_csr(out if cols is None else out.index_select(1, cols))
    return domains.cached(("ws-kept", k, source, tn.precision, id(tn), rows is None, cols is None), make)
