"""Exact rewrites of piecewise-linear layers into the graph's own ops (Select, Conv2d, Add, ReLU).

Every engine reads the affine/ReLU form (`layered.py`), so a layer that is a max, a clip or a
leaky ReLU is written with ReLUs, exactly (in real arithmetic):

    max(a, b) = a + ReLU(b − a),          min(a, b) = a − ReLU(a − b),
    clip(x, lo, hi) = lo + ReLU(x − lo) − ReLU(x − hi)     (lo < hi),
    leaky(x; α) = α·x + (1 − α)·ReLU(x).

A max-pool window of k elements is a balanced tree of k − 1 such maxima over k `Select`s (one per
window offset), ⌈log₂ k⌉ ReLU layers deep; an offset that falls in the padding selects another
element of its own window instead (a duplicate leaves the max unchanged), so padding needs no −∞.
This is the encoding of max-pooling by ReLUs used for MILP by Tjeng, Xiao & Tedrake (ICLR 2019,
MIPVerify) in spirit; here it is a graph rewrite, so bounds, LP, MILP and search all see it.
An average pool is a depthwise `Conv2d` of ones followed by a per-position scale (1 / count).

Each function takes `add(label, op, sources) -> node` (the importer's way of adding a node) and
node names, and returns the name of the node holding the result. Shapes are IR shapes (no batch).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from optcert.ir import ops as O

AddNode = Callable[[str, object, Sequence[str]], str]


def add_op(graph, label: str, op, srcs: Sequence[str]) -> str:
    """Add node `op` to the networkx `graph`, named `label` (with "_" appended until unique), fed by
    the nodes `srcs` in order (edge attribute `slot`); its name."""
    fed: list[str] = []
    for s in srcs:      # one source in two slots (Add(x, x)): the graph holds one edge per pair of nodes
        fed.append(add_op(graph, f"{label}/copy", O.Identity(), [s]) if s in fed else s)
    name = label
    while name in graph:
        name += "_"
    graph.add_node(name, op=op)
    for slot, s in enumerate(fed):
        graph.add_edge(s, name, slot=slot)
    return name


def maximum(add: AddNode, label: str, a: str, b: str) -> str:
    """max(a, b) = a + ReLU(b − a), elementwise, for two nodes of one shape."""
    neg = add(f"{label}/neg", O.ElementwiseAffine(np.array(-1.0), np.array(0.0)), [a])
    diff = add(f"{label}/diff", O.Add(), [b, neg])
    return add(label, O.Add(), [a, add(f"{label}/relu", O.ReLU(), [diff])])


def minimum(add: AddNode, label: str, a: str, b: str) -> str:
    """min(a, b) = a − ReLU(a − b), elementwise, for two nodes of one shape."""
    neg_b = add(f"{label}/negb", O.ElementwiseAffine(np.array(-1.0), np.array(0.0)), [b])
    relu = add(f"{label}/relu", O.ReLU(), [add(f"{label}/diff", O.Add(), [a, neg_b])])
    neg = add(f"{label}/neg", O.ElementwiseAffine(np.array(-1.0), np.array(0.0)), [relu])
    return add(label, O.Add(), [a, neg])


def clip(add: AddNode, label: str, x: str, lo: np.ndarray, hi: np.ndarray) -> str:
    """min(max(x, lo), hi) elementwise; `lo`/`hi` broadcast to x (±inf for no bound), lo < hi."""
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    if np.any(lo >= hi):
        raise ValueError("clip needs min < max")
    finite_lo, finite_hi = bool(np.all(np.isfinite(lo))), bool(np.all(np.isfinite(hi)))
    if (not finite_lo and np.any(np.isfinite(lo))) or (not finite_hi and np.any(np.isfinite(hi))):
        raise ValueError("clip bounds must be all finite or all infinite")
    if not finite_lo and not finite_hi:
        return x
    out = None
    if finite_lo:  # lo + ReLU(x − lo)
        out = add(f"{label}/lo", O.ElementwiseAffine(np.array(1.0), lo), [_relu_above(add, f"{label}/lo", x, lo)])
    if finite_hi:  # ... − ReLU(x − hi), or x − ReLU(x − hi) without a lower bound
        neg = add(f"{label}/neg_hi", O.ElementwiseAffine(np.array(-1.0), np.array(0.0)),
                  [_relu_above(add, f"{label}/hi", x, hi)])
        out = add(label, O.Add(), [out if out is not None else x, neg])
    assert out is not None
    return out


def _relu_above(add: AddNode, label: str, x: str, t: np.ndarray) -> str:
    """ReLU(x − t)."""
    return add(f"{label}/relu", O.ReLU(), [add(f"{label}/shift", O.ElementwiseAffine(np.array(1.0), -t), [x])])


def hard_sigmoid(add: AddNode, label: str, x: str, alpha: float, beta: float) -> str:
    """clip(αx + β, 0, 1) elementwise (ONNX HardSigmoid; torch's is α = 1/6, β = 1/2)."""
    lin = add(f"{label}/lin", O.ElementwiseAffine(np.array(float(alpha)), np.array(float(beta))), [x])
    return clip(add, label, lin, np.array(0.0), np.array(1.0))


def soft_shrink(add: AddNode, label: str, x: str, lam: float) -> str:
    """x − clip(x, −λ, λ) elementwise, λ ≥ 0 (x − λ above λ, x + λ below −λ, 0 between: torch's
    Softshrink, ONNX Shrink with bias = lambd)."""
    if lam < 0:
        raise ValueError(f"shrink needs lambda >= 0, got {lam}")
    if lam == 0:
        return x
    clipped = clip(add, f"{label}/clip", x, np.array(-float(lam)), np.array(float(lam)))
    neg = add(f"{label}/neg", O.ElementwiseAffine(np.array(-1.0), np.array(0.0)), [clipped])
    return add(label, O.Add(), [x, neg])


def leaky_relu(add: AddNode, label: str, x: str, slope: np.ndarray) -> str:
    """α·x + (1 − α)·ReLU(x) elementwise (LeakyRelu, PRelu); `slope` α broadcasts to x."""
    slope = np.asarray(slope, np.float64)
    relu = add(f"{label}/relu", O.ReLU(), [x])
    if np.all(slope == 0):
        return relu
    lin = add(f"{label}/lin", O.ElementwiseAffine(slope, np.array(0.0)), [x])
    part = add(f"{label}/part", O.ElementwiseAffine(1.0 - slope, np.array(0.0)), [relu])
    return add(label, O.Add(), [lin, part])


def pool_geometry(shape: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                  pads: Sequence[int], dilation: Sequence[int], ceil_mode: bool):
    """Window rows/columns of a 2-D pool on a (C, H, W) input.

    `pads` is (top, left, bottom, right). Returns (rows, cols, (Ho, Wo)): rows[oh, p] is the input
    row of window offset p at output row oh (possibly outside [0, H)), likewise cols. Output sizes
    follow ONNX/PyTorch: ⌊·⌋ or ⌈·⌉ of (H + pads − span) / stride + 1, where with `ceil_mode` a
    window that would start in the bottom/right padding is dropped.
    """
    _, h, w = (int(v) for v in shape)
    top, left, bottom, right = (int(v) for v in pads)
    axes = []
    for size, k, s, d, before, after in ((h, kernel[0], stride[0], dilation[0], top, bottom),
                                         (w, kernel[1], stride[1], dilation[1], left, right)):
        k, s, d = int(k), int(s), int(d)
        if k < 1 or s < 1 or d < 1:
            raise ValueError(f"pool kernel {tuple(kernel)}, strides {tuple(stride)} and dilations "
                             f"{tuple(dilation)} must be positive")
        span = (k - 1) * d + 1
        room = size + before + after - span
        if room < 0:
            raise ValueError(f"pool window {tuple(kernel)} does not fit input {tuple(shape)}")
        n = (-(-room // s) if ceil_mode else room // s) + 1
        if ceil_mode and (n - 1) * s >= size + before:
            n -= 1
        axes.append(np.arange(n)[:, None] * s - before + np.arange(k)[None, :] * d)
    rows, cols = axes
    return rows, cols, (rows.shape[0], cols.shape[0])


def max_pool(add: AddNode, label: str, x: str, shape: Sequence[int], kernel, stride, pads,
             dilation=(1, 1), ceil_mode: bool = False) -> tuple[str, tuple[int, int, int]]:
    """2-D max pooling of node x (C, H, W), exact; returns (node, output shape)."""
    c, h, w = (int(v) for v in shape)
    rows, cols, (ho, wo) = pool_geometry(shape, kernel, stride, pads, dilation, ceil_mode)
    r = rows[:, None, :, None]                     # (Ho, 1, kh, 1)
    q = cols[None, :, None, :]                     # (1, Wo, 1, kw)
    valid = (r >= 0) & (r < h) & (q >= 0) & (q < w)  # (Ho, Wo, kh, kw)
    flat = (np.clip(r, 0, h - 1) * w + np.clip(q, 0, w - 1)).reshape(ho, wo, -1)
    valid = np.broadcast_to(valid, flat.shape[:2] + valid.shape[2:]).reshape(ho, wo, -1)
    if not valid.any(axis=2).all():
        raise ValueError(f"a max-pool window lies entirely in the padding {tuple(pads)}")
    first = flat[np.arange(ho)[:, None], np.arange(wo)[None, :], valid.argmax(axis=2)]
    flat = np.where(valid, flat, first[:, :, None])  # padding → a duplicate of the window
    channel = (np.arange(c) * h * w)[:, None, None, None]
    index = channel + flat[None]                    # (C, Ho, Wo, k)
    out = (c, ho, wo)
    return extreme_of(add, label, x, index, out, largest=True), out


def extreme_of(add: AddNode, label: str, x: str, index: np.ndarray, shape: Sequence[int], largest: bool) -> str:
    """y[j] = max (or min) over t of x.flat[index[j, t]], y of `shape`: one `Select` per t, then a
    balanced tree of pairwise maxima (minima), ⌈log₂ k⌉ ReLU layers for k terms. Exact."""
    index = np.asarray(index).reshape(-1, np.shape(index)[-1])
    out = tuple(int(v) for v in shape)
    picks = [add(f"{label}/win{j}", O.Select(index[:, j], np.zeros(index.shape[0]), out), [x])
             for j in range(index.shape[1])]
    pair = maximum if largest else minimum
    level = 0
    while len(picks) > 1:
        pairs = [pair(add, f"{label}/max{level}_{i}", picks[i], picks[i + 1]) for i in range(0, len(picks) - 1, 2)]
        picks = pairs + picks[len(pairs) * 2:]
        level += 1
    return picks[0]


def reduction_matrix(shape: Sequence[int], axes, mean: bool) -> tuple[np.ndarray, tuple[int, ...]]:
    """Sum (or mean) of an array of `shape` over `axes` as a dense (n_out × n) matrix, and the
    shape with the reduced axes kept as 1. Exact for sums; a mean's 1/count rounds once."""
    shape = tuple(int(v) for v in shape)
    reduced = {int(a) % len(shape) for a in axes}
    kept = tuple(1 if i in reduced else d for i, d in enumerate(shape))
    coords = [np.zeros(shape, dtype=np.int64) if i in reduced else c for i, c in enumerate(np.indices(shape))]
    target = np.ravel_multi_index(tuple(coords), kept).ravel()
    n, n_out = int(np.prod(shape)), int(np.prod(kept))
    weight = np.zeros((n_out, n))
    weight[target, np.arange(n)] = 1.0 / (n // n_out) if mean else 1.0
    return weight, kept


def matmul_matrix(x_shape: Sequence[int], W: np.ndarray, x_left: bool) -> tuple[np.ndarray, tuple[int, ...]]:
    """x @ W (`x_left`) or W @ x for a tensor x of `x_shape` and a constant 2-D W, as a dense
    matrix on x flattened, and the result's shape. Exact (each entry a weight or 0)."""
    W = np.asarray(W, dtype=np.float64)
    x_shape = tuple(int(v) for v in x_shape)
    if x_left:
        lead = int(np.prod(x_shape[:-1]))
        mat = np.kron(np.eye(lead), W.T) if lead > 1 else W.T
        return mat, x_shape[:-1] + (W.shape[1],)
    if len(x_shape) != 2:
        raise ValueError(f"W @ x needs a 2-D x, got shape {x_shape}")
    return np.kron(W, np.eye(x_shape[1])), (W.shape[0], x_shape[1])


def cumsum(x: np.ndarray, axis: int, exclusive: bool = False, reverse: bool = False) -> np.ndarray:
    """ONNX CumSum along `axis` (exclusive: each sum without its own element; reverse: from the end)."""
    x = np.asarray(x)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"CumSum axis {axis} out of range for rank {x.ndim}")
    y = np.flip(x, axis) if reverse else x
    y = np.cumsum(y, axis=axis)
    if exclusive:
        y = np.subtract(y, np.flip(x, axis) if reverse else x)
    return np.flip(y, axis) if reverse else y


def cumsum_matrix(shape: Sequence[int], axis: int, exclusive: bool = False, reverse: bool = False,
                  limit: int = 1 << 26) -> np.ndarray:
    """ONNX CumSum / torch.cumsum along `axis` of a tensor of `shape` as a dense matrix on it flattened
    (exact: entries 0 and 1). Raises ValueError for an axis out of range, ModelTooLargeError beyond
    `limit` matrix entries."""
    from optcert.errors import ModelTooLargeError

    shape = tuple(int(v) for v in shape)
    if not -len(shape) <= axis < len(shape):
        raise ValueError(f"CumSum axis {axis} out of range for rank {len(shape)}")
    n = int(np.prod(shape))
    if n * n > limit:
        raise ModelTooLargeError(f"cumulative sum over a tensor of {n:,} elements: its matrix would have "
                                 f"{n * n:,} entries (limit {limit:,})")
    return cumsum(np.eye(n).reshape((n,) + shape), axis % len(shape) + 1, exclusive, reverse).reshape(n, n).T.copy()


def einsum_output(lhs: str) -> str:
    """The implicit output of an einsum's input terms: the labels used once, in alphabetical order,
    after any ellipsis (numpy's and ONNX's rule)."""
    letters = [c for c in lhs if c.isalpha()]
    return ("..." if "..." in lhs else "") + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))


def einsum_size(equation: str, shapes: Sequence[Sequence[int]]) -> int | None:
    """The number of elements an einsum's result would have, from the equation and the operand
    shapes alone (no array is made); None where the equation does not parse (np.einsum then says why)."""
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if "->" in rhs or len(terms) != len(shapes):
        return None
    sizes: dict[str, int] = {}
    ellipsis: tuple[int, ...] = ()
    for term, shape in zip(terms, shapes):
        shape = tuple(int(v) for v in shape)
        head, dots, tail = term.partition("...")
        extra = len(shape) - len(head) - len(tail)
        if not (head + tail).isalpha() and (head + tail) or extra < 0 or (extra and not dots):
            return None
        labelled = shape[:len(head)] + shape[len(shape) - len(tail):]
        for c, d in zip(head + tail, labelled):
            sizes[c] = max(sizes.get(c, 1), d)
        try:
            ellipsis = tuple(np.broadcast_shapes(ellipsis, shape[len(head):len(head) + extra]))
        except ValueError:
            return None
    out = rhs if arrow else einsum_output(lhs)
    if any(c not in sizes for c in out.replace("...", "")):
        return None
    return int(np.prod([sizes[c] for c in out.replace("...", "")])) * int(np.prod(ellipsis if "..." in out else ()))


def einsum_matrix(equation: str, operands: Sequence, which: int, limit: int = 1 << 26
                  ) -> tuple[np.ndarray, tuple[int, ...]]:
    """np.einsum / ONNX Einsum with one network operand (`operands[which]`, given by its shape) and
    constant others, as a dense matrix on that operand flattened, and the result's shape. Exact: the
    contraction is linear in each operand, so its matrix is the contraction of the identity.
    Raises ValueError for a malformed equation, ModelTooLargeError beyond `limit` matrix entries."""
    from optcert.errors import ModelTooLargeError

    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum {equation!r} names {len(terms)} operands, given {len(operands)}")
    if not arrow:
        rhs = einsum_output(lhs)
    free = next((c for c in "ZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in eq), None)
    if free is None:
        raise ValueError(f"einsum {equation!r} uses every letter")
    x_shape = tuple(int(v) for v in operands[which])
    n = int(np.prod(x_shape))
    shapes = [x_shape if i == which else np.shape(v) for i, v in enumerate(operands)]
    m = einsum_size(f"{lhs}->{rhs}", shapes)
    if m is None:    # np.einsum says what is wrong (ValueError), on zero-strided operands
        np.einsum(f"{lhs}->{rhs}", *[np.broadcast_to(np.zeros(()), sh) for sh in shapes])
        raise ValueError(f"einsum {equation!r} does not fit operands of shapes {shapes}")
    if n * max(m, 1) > limit:
        raise ModelTooLargeError(f"einsum {equation!r} on a tensor of shape {x_shape}: its matrix would have "
                                 f"{n * m:,} entries (limit {limit:,})")
    args = [np.asarray(v, dtype=np.float64) for v in operands]
    args[which] = np.eye(n).reshape((n,) + x_shape)
    terms[which] = free + terms[which]
    y = np.einsum(",".join(terms) + "->" + free + rhs, *args)
    return y.reshape(n, -1).T.copy(), tuple(int(v) for v in y.shape[1:])


def reduction_index(shape: Sequence[int], axes: Sequence[int]) -> np.ndarray:
    """For a reduction of an array of `shape` over `axes`: (m, k) flat indices, row j the k
    elements reduced into output element j (outputs in the order of the kept axes)."""
    reduced = sorted({int(a) % len(shape) for a in axes})
    kept = [i for i in range(len(shape)) if i not in reduced]
    pos = np.arange(int(np.prod(shape))).reshape(tuple(shape)).transpose(kept + reduced)
    return pos.reshape(int(np.prod([shape[i] for i in kept])), -1)


def absolute(add: AddNode, label: str, x: str) -> str:
    """|x| = x + 2·ReLU(−x), elementwise (one ReLU per element; its triangle relaxation is the
    convex hull of |x| on an interval)."""
    neg = add(f"{label}/neg", O.ElementwiseAffine(np.array(-1.0), np.array(0.0)), [x])
    twice = add(f"{label}/twice", O.ElementwiseAffine(np.array(2.0), np.array(0.0)),
                [add(f"{label}/relu", O.ReLU(), [neg])])
    return add(label, O.Add(), [x, twice])


def avg_pool(add: AddNode, label: str, x: str, shape: Sequence[int], kernel, stride, pads,
             dilation=(1, 1), ceil_mode: bool = False, count_include_pad: bool = False
             ) -> tuple[str, tuple[int, int, int]]:
    """2-D average pooling of node x (C, H, W), exact; returns (node, output shape).

    The divisor is the number of window positions inside the input (plus those in the explicit
    padding when `count_include_pad`), as in ONNX AveragePool and torch's avg_pool2d.
    """
    c, h, w = (int(v) for v in shape)
    rows, cols, (ho, wo) = pool_geometry(shape, kernel, stride, pads, dilation, ceil_mode)
    top, left, bottom, right = (int(v) for v in pads)
    lo_r, hi_r, lo_c, hi_c = (-top, h + bottom, -left, w + right) if count_include_pad else (0, h, 0, w)
    count = (((rows >= lo_r) & (rows < hi_r)).sum(1)[:, None] * ((cols >= lo_c) & (cols < hi_c)).sum(1)[None, :])
    if np.any(count == 0):
        raise ValueError(f"an average-pool window lies entirely in the padding {tuple(pads)}")
    kh, kw = rows.shape[1], cols.shape[1]
    extra_b = max(int(rows[-1, -1]) + 1 - (h + bottom), 0)   # ceil mode: windows past the padding
    extra_r = max(int(cols[-1, -1]) + 1 - (w + right), 0)
    conv = O.Conv2d(np.ones((c, 1, kh, kw)), np.zeros(c), (int(stride[0]), int(stride[1])),
                    (top, left, bottom + extra_b, right + extra_r), (int(dilation[0]), int(dilation[1])), c)
    summed = add(f"{label}/sum", conv, [x])
    return add(label, O.ElementwiseAffine((1.0 / count)[None], np.array(0.0)), [summed]), (c, ho, wo)


def gather(add: AddNode, label: str, sources: Sequence[tuple[str, np.ndarray]], fill: np.ndarray,
           shape: Sequence[int]) -> str:
    """y (of `shape`) whose element j is copied from the source node whose flat `index` array is
    ≥ 0 at j, else is `fill[j]`: one `Select` per (node, index) pair, summed (exact: each element
    has one non-zero term). Concatenations and other many-input data movement."""
    out = None
    for i, (node, index) in enumerate(sources):
        own = fill if out is None else np.zeros(index.size)
        piece = add(f"{label}/part{i}", O.Select(index, own, tuple(shape)), [node])
        out = piece if out is None else add(f"{label}/add{i}", O.Add(), [out, piece])
    if out is None:
        raise ValueError("a gather needs at least one network tensor")
    return out


def select_map(positions: np.ndarray) -> O.Select:
    """A `Select` from an array of 1-based input positions (0 = a zero fill), of that array's shape.

    Importers compute `positions` by running the layer (slice, gather, pad, …) on the array
    1 … n of the input's shape: whatever the layer copies, it copies positions.
    """
    pos = np.asarray(positions)
    if not np.all(np.isfinite(pos)) or np.any(pos != np.round(pos)) or np.any(pos < 0):
        raise ValueError("the layer is not a selection of its input")
    index = pos.astype(np.int64).ravel() - 1
    return O.Select(index, np.zeros(index.size), tuple(pos.shape))
