"""`Network`: an immutable model graph over a networkx DiGraph, with float64 reference semantics.

Node attribute `op` holds a frozen payload from `ops.py`; edge attribute `slot` orders a node's
inputs. `evaluate`/`forward` compute every node in numpy float64: the reference against which
every counterexample is re-checked.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Sequence

import networkx as nx
import numpy as np

from optcert.errors import InvalidModelError
from optcert.ir import ops as O

_ARITY = {O.Input: 0, O.Add: 2}


@dataclass(frozen=True)
class Summary:
    """What `optcert info` prints about a network."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    op_counts: dict[str, int]
    relu_layers: int
    neurons: int
    parameters: int


class Network:
    """A validated, immutable DAG of ops with one input node and one output node."""

    def __init__(self, graph: nx.DiGraph, input: str, output: str, name: str = "network"):
        self.graph = nx.freeze(graph.copy())
        self.input = input
        self.output = output
        self.name = name
        self.validate()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_nodes(cls, nodes: Iterable[tuple[str, object, Sequence[str]]], output: str | None = None,
                   name: str = "network") -> "Network":
        """Build from (name, op, input names) triples; the first node must be the `Input`."""
        graph = nx.DiGraph()
        items = list(nodes)
        if not items or not isinstance(items[0][1], O.Input):
            raise InvalidModelError(f"{name}: the first node must be an Input op")
        for node, op, inputs in items:
            if node in graph:
                raise InvalidModelError(f"{name}: duplicate node name {node!r}")
            graph.add_node(node, op=op)
            for slot, src in enumerate(inputs):
                if src not in graph:
                    raise InvalidModelError(f"{name}: node {node!r} reads undefined input {src!r}")
                graph.add_edge(src, node, slot=slot)
        return cls(graph, items[0][0], output or items[-1][0], name=name)

    @classmethod
    def sequential(cls, input_shape: Sequence[int], layers: Sequence[object],
                   name: str = "network") -> "Network":
        """A chain Input → layers[0] → layers[1] → ...; nodes are named by position and op type."""
        nodes: list[tuple[str, Any, list[str]]] = [("input", O.Input(tuple(input_shape)), [])]
        for k, op in enumerate(layers):
            nodes.append((f"{k}_{O.op_name(op).lower()}", op, [nodes[-1][0]]))
        return cls.from_nodes(nodes, name=name)

    # ---- structure ----------------------------------------------------------------------------
    def op(self, node: str):
        return self.graph.nodes[node]["op"]

    def inputs_of(self, node: str) -> list[str]:
        """The input node names of `node`, in slot order."""
        preds = self.graph.pred[node]
        return sorted(preds, key=lambda p: preds[p]["slot"])

    @cached_property
    def order(self) -> tuple[str, ...]:
        """Nodes that the output depends on, in a deterministic topological order."""
        needed = nx.ancestors(self.graph, self.output) | {self.output}
        return tuple(n for n in nx.lexicographical_topological_sort(self.graph) if n in needed)

    def ops(self) -> list[tuple[str, Any]]:
        """(name, op) pairs in topological order."""
        return [(n, self.op(n)) for n in self.order]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shapes[self.input]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shapes[self.output]

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        return int(np.prod(self.output_shape))

    # ---- validation ---------------------------------------------------------------------------
    def validate(self) -> "Network":
        """Check structure, arity, shapes and finiteness; raise `InvalidModelError` naming the node."""
        g = self.graph
        for node in (self.input, self.output):
            if node not in g:
                raise InvalidModelError(f"{self.name}: node {node!r} is not in the graph")
        if not nx.is_directed_acyclic_graph(g):
            raise InvalidModelError(f"{self.name}: the graph has a cycle")
        if not isinstance(self.op(self.input), O.Input):
            raise InvalidModelError(f"{self.name}: input node {self.input!r} is not an Input op")
        for node in self.order:
            op = g.nodes[node].get("op")
            if not isinstance(op, O.LINEAR_OPS + (O.Input, O.ReLU)):
                raise InvalidModelError(f"{self.name}: node {node!r} has no valid op ({op!r})")
            if isinstance(op, O.Input) and node != self.input:
                raise InvalidModelError(f"{self.name}: second Input node {node!r}")
            arity = _ARITY.get(type(op), 1)
            if g.in_degree(node) != arity:
                raise InvalidModelError(
                    f"{self.name}: node {node!r} ({O.op_name(op)}) takes {arity} input(s), "
                    f"has {g.in_degree(node)}")
            for key, value in vars(op).items():
                if isinstance(value, np.ndarray) and not np.all(np.isfinite(value)):
                    raise InvalidModelError(
                        f"{self.name}: node {node!r} ({O.op_name(op)}) has a non-finite {key}")
        self.__dict__.pop("shapes", None)
        _ = self.shapes
        return self

    @cached_property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Output shape of every node the output depends on."""
        shapes: dict[str, tuple[int, ...]] = {}
        for node in self.order:
            op = self.op(node)
            ins = [shapes[p] for p in self.inputs_of(node)]
            try:
                shapes[node] = out_shape(op, ins)
            except (ValueError, IndexError) as err:
                raise InvalidModelError(
                    f"{self.name}: node {node!r} ({O.op_name(op)}): {err} (input shapes {ins})") from None
        return shapes

    # ---- semantics ----------------------------------------------------------------------------
    def forward_all(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every node's value for a batch `x` of shape (B, *input_shape) or (B, n_inputs), float64."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim < 1 or x[0].size != self.n_inputs:
            raise InvalidModelError(
                f"{self.name}: input batch of shape {x.shape} does not match input shape {self.input_shape}")
        values = {self.input: x.reshape((x.shape[0],) + self.input_shape)}
        for node in self.order:
            if node == self.input:
                continue
            values[node] = apply_op(self.op(node), [values[p] for p in self.inputs_of(node)],
                                    self.shapes[node])
        return values

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Flat outputs (B, n_outputs) for a batch of inputs, float64."""
        out = self.forward_all(x)[self.output]
        return out.reshape(out.shape[0], -1)

    def evaluate(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every node's value (float64, unbatched) at one input `x` (flat or input-shaped)."""
        x = np.asarray(x, dtype=np.float64)
        if x.size != self.n_inputs:
            raise InvalidModelError(f"{self.name}: input has {x.size} values, expected {self.n_inputs}")
        return {k: v[0] for k, v in self.forward_all(x.reshape(1, -1)).items()}

    # ---- description --------------------------------------------------------------------------
    def summary(self) -> Summary:
        counts: dict[str, int] = {}
        neurons = relu_layers = params = 0
        for node, op in self.ops():
            counts[O.op_name(op)] = counts.get(O.op_name(op), 0) + 1
            params += O.parameter_count(op)
            if isinstance(op, O.ReLU):
                relu_layers += 1
                neurons += int(np.prod(self.shapes[node]))
        return Summary(self.input_shape, self.output_shape, counts, relu_layers, neurons, params)

    def fingerprint(self) -> str:
        """A content hash of structure and weights (stable across processes)."""
        h = hashlib.sha256()
        for node, op in self.ops():
            h.update(f"{node}|{O.op_name(op)}|{self.inputs_of(node)}|".encode())
            for key, value in sorted(vars(op).items()):
                h.update(key.encode())
                h.update(np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray)
                         else repr(value).encode())
        return h.hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Network({self.name!r}, {len(self.order)} nodes, {self.input_shape} -> {self.output_shape})"


# ---- per-op shape inference and float64 semantics -------------------------------------------
def out_shape(op, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    """Output shape of `op` given its input shapes (raises ValueError on mismatch)."""
    if isinstance(op, O.Input):
        return op.shape
    x = ins[0]
    size = int(np.prod(x))
    if isinstance(op, O.Affine):
        if op.weight.shape[1] != size or op.bias.shape[0] != op.weight.shape[0]:
            raise ValueError(f"weight {op.weight.shape} / bias {op.bias.shape} do not fit {size} inputs")
        return (op.weight.shape[0],)
    if isinstance(op, O.Conv2d):
        return _conv_shape(op, x)
    if isinstance(op, O.ConvTranspose2d):
        return _conv_transpose_shape(op, x)
    if isinstance(op, O.Reshape):
        return _resolve_reshape(op.shape, size)
    if isinstance(op, O.Transpose):
        if sorted(op.perm) != list(range(len(x))):
            raise ValueError(f"permutation {op.perm} does not fit rank {len(x)}")
        return tuple(x[p] for p in op.perm)
    if isinstance(op, O.Add):
        if ins[0] != ins[1]:
            raise ValueError(f"Add of different shapes {ins[0]} and {ins[1]}")
        return x
    if isinstance(op, O.ElementwiseAffine):
        for arr in (op.scale, op.shift):
            if np.broadcast_shapes(arr.shape, x) != x:
                raise ValueError(f"constant of shape {arr.shape} does not broadcast to {x}")
        return x
    if isinstance(op, O.BatchNorm):
        if len(x) < 1 or any(a.shape != (x[0],) for a in (op.mean, op.var, op.gamma, op.beta)):
            raise ValueError(f"batch-norm parameters do not fit {x[0] if x else 0} channels")
        if np.any(op.var + op.epsilon <= 0):
            raise ValueError("batch-norm variance + epsilon must be positive")
        return x
    if isinstance(op, O.Select):
        if op.index.size and int(op.index.max()) >= size:
            raise ValueError(f"Select index {int(op.index.max())} out of range for {size} inputs")
        return op.shape
    return x  # ReLU, Identity


def _resolve_reshape(target: tuple[int, ...], size: int) -> tuple[int, ...]:
    if list(target).count(-1) > 1:
        raise ValueError(f"reshape target {target} has more than one -1")
    known = int(np.prod([t for t in target if t != -1]))
    if -1 in target:
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape {size} values to {target}")
        return tuple(size // known if t == -1 else t for t in target)
    if known != size:
        raise ValueError(f"cannot reshape {size} values to {target}")
    return target


def _conv_shape(op: O.Conv2d, x: tuple[int, ...]) -> tuple[int, ...]:
    if len(x) != 3:
        raise ValueError(f"Conv2d needs a (C, H, W) input, got {x}")
    out_c, in_per_group, kh, kw = op.weight.shape
    if op.groups < 1 or x[0] != in_per_group * op.groups or out_c % op.groups:
        raise ValueError(f"weight {op.weight.shape} with groups={op.groups} does not fit {x[0]} channels")
    if op.bias.shape != (out_c,):
        raise ValueError(f"bias {op.bias.shape} does not fit {out_c} output channels")
    top, left, bottom, right = op.padding
    h = (x[1] + top + bottom - op.dilation[0] * (kh - 1) - 1) // op.stride[0] + 1
    w = (x[2] + left + right - op.dilation[1] * (kw - 1) - 1) // op.stride[1] + 1
    if h < 1 or w < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit input {x}")
    return (out_c, h, w)


def _conv_transpose_shape(op: O.ConvTranspose2d, x: tuple[int, ...]) -> tuple[int, ...]:
    if len(x) != 3:
        raise ValueError(f"ConvTranspose2d needs a (C, H, W) input, got {x}")
    c_in, out_per_group, kh, kw = op.weight.shape
    if op.groups < 1 or x[0] != c_in or c_in % op.groups:
        raise ValueError(f"weight {op.weight.shape} with groups={op.groups} does not fit {x[0]} channels")
    if op.bias.shape != (out_per_group * op.groups,):
        raise ValueError(f"bias {op.bias.shape} does not fit {out_per_group * op.groups} output channels")
    if min(op.stride + op.dilation) < 1 or min(op.padding + op.output_padding) < 0:
        raise ValueError(f"stride {op.stride}, dilation {op.dilation}, padding {op.padding} and output "
                         f"padding {op.output_padding} must be positive / non-negative")
    top, left, bottom, right = op.padding
    h = op.stride[0] * (x[1] - 1) + op.output_padding[0] + op.dilation[0] * (kh - 1) + 1 - top - bottom
    w = op.stride[1] * (x[2] - 1) + op.output_padding[1] + op.dilation[1] * (kw - 1) + 1 - left - right
    if h < 1 or w < 1:
        raise ValueError(f"padding {op.padding} leaves no output for input {x}")
    return (out_per_group * op.groups, h, w)


def conv_transpose_matrix(op: O.ConvTranspose2d, in_shape, out_shape):
    """The transposed convolution (without bias) as a scipy.sparse (n_out × n_in) CSR matrix: the
    transpose of its adjoint convolution's matrix (each entry exactly a weight)."""
    return conv_matrix(op.adjoint(), out_shape, in_shape).T.tocsr()


def conv2d_nobias(op: O.Conv2d, x: np.ndarray) -> np.ndarray:
    """Cross-correlation of a batch (B, C, H, W) with `op.weight`, float64, without the bias."""
    out_c, cpg, kh, kw = op.weight.shape
    top, left, bottom, right = op.padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    dh, dw = op.dilation
    win = np.lib.stride_tricks.sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::op.stride[0], ::op.stride[1], ::dh, ::dw]  # (B, C, Ho, Wo, kh, kw)
    b, _, ho, wo = win.shape[:4]
    g = op.groups
    win = win.reshape(b, g, cpg, ho, wo, kh, kw)
    w = op.weight.reshape(g, out_c // g, cpg, kh, kw)
    return np.einsum("bgchwij,gocij->bgohw", win, w, optimize=True).reshape(b, out_c, ho, wo)


def conv_matrix(op: O.Conv2d, in_shape, out_shape):
    """The convolution (without bias) of a (C, H, W) input as a scipy.sparse (n_out × n_in) CSR
    matrix: one entry per weight use, each exactly a weight (no arithmetic)."""
    import scipy.sparse

    c_in, h, w = (int(v) for v in in_shape)
    c_out, ho, wo = (int(v) for v in out_shape)
    _, cpg, kh, kw = op.weight.shape
    top, left = op.padding[0], op.padding[1]
    o, c, p, q, y, x = np.ix_(np.arange(c_out), np.arange(cpg), np.arange(kh), np.arange(kw),
                              np.arange(ho), np.arange(wo))
    row_in = y * op.stride[0] - top + p * op.dilation[0]
    col_in = x * op.stride[1] - left + q * op.dilation[1]
    channel = (o // (c_out // op.groups)) * cpg + c
    shape = (c_out, cpg, kh, kw, ho, wo)
    valid = np.broadcast_to((row_in >= 0) & (row_in < h) & (col_in >= 0) & (col_in < w), shape)
    rows = np.broadcast_to((o * ho + y) * wo + x, shape)[valid]
    cols = np.broadcast_to((channel * h + row_in) * w + col_in, shape)[valid]
    vals = np.broadcast_to(op.weight[o, c, p, q], shape)[valid]
    return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(c_out * ho * wo, c_in * h * w))


def apply_op(op, xs: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Float64 value of `op` on batched inputs `xs` (each (B, *shape_in)); result (B, *shape)."""
    x = xs[0]
    b = x.shape[0]
    if isinstance(op, O.Affine):
        return x.reshape(b, -1) @ op.weight.T + op.bias
    if isinstance(op, O.Conv2d):
        return conv2d_nobias(op, x) + op.bias[None, :, None, None]
    if isinstance(op, O.ConvTranspose2d):
        flat = conv_transpose_matrix(op, x.shape[1:], shape) @ x.reshape(b, -1).T
        return flat.T.reshape((b,) + shape) + op.bias[None, :, None, None]
    if isinstance(op, O.ReLU):
        return np.maximum(x, 0.0)
    if isinstance(op, O.Reshape):
        return x.reshape((b,) + shape)
    if isinstance(op, O.Transpose):
        return x.transpose((0,) + tuple(p + 1 for p in op.perm))
    if isinstance(op, O.Add):
        return x + xs[1]
    if isinstance(op, O.ElementwiseAffine):
        return x * op.scale + op.shift
    if isinstance(op, O.BatchNorm):
        ew = op.as_elementwise(x.ndim - 1)
        return x * ew.scale + ew.shift
    if isinstance(op, O.Select):
        taken = x.reshape(b, -1)[:, np.maximum(op.index, 0)]
        return np.where(op.index >= 0, taken, op.fill).reshape((b,) + shape)
    if isinstance(op, O.Identity):
        return x
    raise InvalidModelError(f"no float64 semantics for {O.op_name(op)}")
