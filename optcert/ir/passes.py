"""Pure Network → Network rewrites. Each preserves `Network.evaluate` (up to float64 rounding of
the folded constants) and returns a new network; the input network is never modified.

* `fold_normalization`: BatchNorm → ElementwiseAffine, then ElementwiseAffine folded into a
  neighbouring Affine (before or after it) or Conv2d (per-channel only; shifts only without padding).
* `fuse_affine`: consecutive Affine ops (possibly through a Reshape) become one.
* `conv_to_affine`: Conv2d → dense Affine + Reshape, for small nets (size-capped).
* `drop_identity`: remove Identity, no-op Reshape/ElementwiseAffine and chained Reshapes.
* `simplify`: all of the above, in that order.
"""
from __future__ import annotations

import networkx as nx
import numpy as np

from optcert.ir import ops as O
from optcert.ir.network import Network, conv_matrix


def _graph(net: Network) -> nx.DiGraph:
    return nx.DiGraph(net.graph)


def _single_consumer(g: nx.DiGraph, node: str, output: str) -> bool:
    return g.out_degree(node) == 1 and node != output


def _bypass(g: nx.DiGraph, node: str) -> None:
    """Remove a one-input node, wiring its input to each consumer in the same slot."""
    (src,) = g.predecessors(node)
    for dst in list(g.successors(node)):
        g.add_edge(src, dst, slot=g.edges[node, dst]["slot"])
    g.remove_node(node)


def _rebuild(net: Network, g: nx.DiGraph, output: str | None = None) -> Network:
    return Network(g, net.input, output or net.output, name=net.name)


def _pred(g: nx.DiGraph, node: str) -> str:
    return next(iter(g.predecessors(node)))


def fold_normalization(net: Network) -> Network:
    """Fold BatchNorm and elementwise scale/shift ops into adjacent Affine/Conv2d ops."""
    g, out = _graph(net), net.output
    for node in net.order:
        if isinstance(g.nodes[node]["op"], O.BatchNorm):
            g.nodes[node]["op"] = g.nodes[node]["op"].as_elementwise(len(net.shapes[node]))
    for node in net.order:
        if node not in g or not isinstance(g.nodes[node]["op"], O.ElementwiseAffine):
            continue
        ew, src = g.nodes[node]["op"], _pred(g, node)
        shape = net.shapes[node]
        folded = _fold_after(g.nodes[src]["op"], ew, shape) if _single_consumer(g, src, out) else None
        if folded is not None:
            g.nodes[src]["op"] = folded
            out = src if node == out else out
            _bypass(g, node)
            continue
        consumers = list(g.successors(node))
        if len(consumers) == 1 and node != out:
            folded = _fold_before(g.nodes[consumers[0]]["op"], ew, shape)
            if folded is not None:
                g.nodes[consumers[0]]["op"] = folded
                _bypass(g, node)
    return _rebuild(net, g, out)


def _fold_after(op, ew: O.ElementwiseAffine, shape) -> object | None:
    """op followed by y*s+t, as one op (or None if it does not fold)."""
    if isinstance(op, O.Affine):
        s = np.broadcast_to(ew.scale, shape).ravel()
        t = np.broadcast_to(ew.shift, shape).ravel()
        return O.Affine(op.weight * s[:, None], op.bias * s + t)
    if isinstance(op, O.Conv2d):
        sc, tc = _per_channel(ew.scale, shape), _per_channel(ew.shift, shape)
        if sc is None or tc is None:
            return None
        return O.Conv2d(op.weight * sc[:, None, None, None], op.bias * sc + tc, op.stride, op.padding,
                        op.dilation, op.groups)
    return None


def _fold_before(op, ew: O.ElementwiseAffine, shape) -> object | None:
    """x*s+t followed by op, as one op (or None if it does not fold)."""
    if isinstance(op, O.Affine):
        s = np.broadcast_to(ew.scale, shape).ravel()
        t = np.broadcast_to(ew.shift, shape).ravel()
        return O.Affine(op.weight * s[None, :], op.weight @ t + op.bias)
    if isinstance(op, O.Conv2d) and op.groups == 1:
        sc, tc = _per_channel(ew.scale, shape), _per_channel(ew.shift, shape)
        if sc is None or tc is None or (any(op.padding) and np.any(tc != 0)):
            return None
        bias = op.bias + np.einsum("ocij,c->o", op.weight, tc)
        return O.Conv2d(op.weight * sc[None, :, None, None], bias, op.stride, op.padding,
                        op.dilation, op.groups)
    return None


def _per_channel(value: np.ndarray, shape) -> np.ndarray | None:
    """The per-channel vector of a constant over a (C, H, W) shape, or None if it varies in H, W."""
    if len(shape) != 3:
        return None
    full = np.broadcast_to(value, shape)
    first = full[:, :1, :1]
    return first.reshape(-1).copy() if np.all(full == first) else None


def fuse_affine(net: Network) -> Network:
    """Merge Affine → [Reshape →] Affine chains whose middle values have no other consumer."""
    g, out = _graph(net), net.output
    for node in net.order:
        if node not in g or not isinstance(g.nodes[node]["op"], O.Affine):
            continue
        src = _pred(g, node)
        if isinstance(g.nodes[src]["op"], O.Reshape) and _single_consumer(g, src, out):
            _bypass(g, src)  # an Affine reads its input flattened anyway
            src = _pred(g, node)
        if isinstance(g.nodes[src]["op"], O.Affine) and _single_consumer(g, src, out):
            first, second = g.nodes[src]["op"], g.nodes[node]["op"]
            g.nodes[node]["op"] = O.Affine(second.weight @ first.weight, second.weight @ first.bias + second.bias)
            _bypass(g, src)
    return _rebuild(net, g, out)


def conv_to_affine(net: Network, max_entries: int = 50_000_000) -> Network:
    """Replace each Conv2d by a dense Affine and a Reshape to its (C, H, W) output shape.

    Refuses (leaves the conv) when the dense matrix would exceed `max_entries` entries.
    """
    g, out = _graph(net), net.output
    for node in net.order:
        op = g.nodes[node]["op"]
        if not isinstance(op, O.Conv2d):
            continue
        in_shape, shape = net.shapes[_pred(g, node)], net.shapes[node]
        n_in, n_out = int(np.prod(in_shape)), int(np.prod(shape))
        if n_in * n_out > max_entries:
            continue
        weight = conv_matrix(op, in_shape, shape).toarray()
        g.nodes[node]["op"] = O.Affine(weight, np.repeat(op.bias, n_out // op.bias.size))
        reshape = f"{node}/reshape"
        g.add_node(reshape, op=O.Reshape(shape))
        for dst in list(g.successors(node)):
            g.add_edge(reshape, dst, slot=g.edges[node, dst]["slot"])
            g.remove_edge(node, dst)
        g.add_edge(node, reshape, slot=0)
        out = reshape if node == out else out
    return _rebuild(net, g, out)


def drop_identity(net: Network) -> Network:
    """Remove Identity ops, shape-preserving Reshapes, unit ElementwiseAffines and Reshape chains."""
    g, out = _graph(net), net.output
    for node in net.order:
        op = g.nodes[node]["op"]
        if node == net.input or node == out:
            continue
        if g.in_degree(node) != 1:
            continue
        src = _pred(g, node)
        trivial = isinstance(op, O.Identity) or (
            isinstance(op, O.Reshape) and net.shapes[node] == net.shapes[src]) or (
            isinstance(op, O.ElementwiseAffine) and np.all(op.scale == 1) and np.all(op.shift == 0))
        chained = isinstance(op, O.Reshape) and isinstance(g.nodes[src]["op"], O.Reshape) and \
            _single_consumer(g, src, out)
        if trivial:
            _bypass(g, node)
        elif chained:
            _bypass(g, src)
    return _rebuild(net, g, out)


def simplify(net: Network, conv_max_entries: int = 50_000_000) -> Network:
    """All passes: identities out, normalisation folded, convs dense, affine chains fused."""
    net = drop_identity(net)
    net = fold_normalization(net)
    net = conv_to_affine(net, conv_max_entries)
    net = fold_normalization(net)
    net = fuse_affine(net)
    return drop_identity(net)
