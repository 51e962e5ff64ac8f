"""ONNX importer: an `.onnx` file → `Network`, through the `onnx` package.

Supported: Gemm, MatMul, Add, Sub, Mul, Div, Neg, Sum, Relu, Flatten, Reshape, Squeeze, Unsqueeze,
Identity, Dropout, Cast, Constant, Conv and ConvTranspose (2-D, and 1-D as 2-D), BatchNormalization, Transpose,
ReduceSum, ReduceMean; Slice, Gather, Pad, Concat, Split, Expand, Tile, DepthToSpace and
SpaceToDepth, Trilu, GatherElements, GatherND and Compress as exact selections (`ops.Select`); Where with
a constant condition (selections); Einsum with one network operand, CumSum and Mean (affine maps);
HardSigmoid, ReduceL1 and Shrink (where continuous: bias = lambd) written with ReLUs; MaxPool,
GlobalMaxPool, Max, Min, ReduceMax, ReduceMin, Abs, Clip, LeakyRelu and PRelu written exactly with ReLUs,
AveragePool and GlobalAveragePool as convolutions (pools 2-D or 1-D; see `decompose.py`); Resize
and Upsample (nearest, linear, cubic; not tf_crop_and_resize or antialiasing; see `resize.py`); plus
constant folding of shape subgraphs (see `onnx_consts.py`). A leading input axis of size 1 (or
symbolic) is the batch axis and is dropped from IR shapes. Every unsupported node is collected
and reported at once in one `UnsupportedOpError`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import networkx as nx
import numpy as np

from optcert.errors import InvalidModelError, ModelTooLargeError, UnreadableFileError, UnsupportedOpError
from optcert.ir import decompose as D
from optcert.ir import ops as O
from optcert.ir import resize as R
from optcert.ir.network import Network
from optcert.ir.onnx_consts import attrs, einsum_equation, fold, reshape_target, squeeze_shape, unsqueeze_shape


@dataclass(frozen=True)
class _Dyn:
    """A network tensor: graph node `node`, ONNX shape `full` (with the batch axis if `batch`)."""

    node: str
    full: tuple[int, ...]
    batch: bool

    @property
    def shape(self) -> tuple[int, ...]:
        return self.full[1:] if self.batch else self.full


class _Poison:
    """Output of a node that could not be imported (its consumers are skipped silently)."""


def load_onnx(path: str | Path, name: str | None = None) -> Network:
    """Read and import an ONNX model file. Raises UnreadableFileError / InvalidModelError."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # protobuf DecodeError, truncated files, wrong format
        raise UnreadableFileError(f"{path}: not a readable ONNX model ({type(err).__name__}: {err})") from None
    return from_onnx_model(model, name or path.stem)


def from_onnx_model(model, name: str = "onnx") -> Network:
    """Import an in-memory `onnx.ModelProto`."""
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=13)
    return _Importer(model.graph, opset, name).run()


class _Importer:
    def __init__(self, graph, opset: int, name: str):
        from onnx import numpy_helper

        self.g, self.opset, self.name = graph, opset, name
        self.env: dict[str, Any] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.nx = nx.DiGraph()
        self.unsupported: list[tuple[str, str]] = []

    # ---- driver -----------------------------------------------------------------------------
    def run(self) -> Network:
        dynamic = [i for i in self.g.input if i.name not in self.env]
        if len(dynamic) != 1:
            raise InvalidModelError(f"{self.name}: expected one network input, found "
                                    f"{[i.name for i in dynamic]}")
        inp = dynamic[0]
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in inp.type.tensor_type.shape.dim]
        batch = len(dims) >= 2 and dims[0] in (1, -1, 0)
        full = tuple(1 if (i == 0 and batch) else d for i, d in enumerate(dims))
        if any(d <= 0 for d in full):
            raise InvalidModelError(f"{self.name}: input {inp.name!r} has unknown dimensions {dims}")
        self.nx.add_node("input", op=O.Input(full[1:] if batch else full))
        self.env[inp.name] = _Dyn("input", full, batch)
        for k, node in enumerate(self.g.node):
            self._import(node, k)
        if self.unsupported:
            raise UnsupportedOpError(self.unsupported, source=self.name)
        if len(self.g.output) != 1:
            raise InvalidModelError(f"{self.name}: expected one output, found {len(self.g.output)}")
        out = self.env.get(self.g.output[0].name)
        if not isinstance(out, _Dyn):
            raise InvalidModelError(f"{self.name}: output {self.g.output[0].name!r} does not depend on the input")
        return Network(self.nx, "input", out.node, name=self.name)

    def _import(self, node, k: int) -> None:
        ins = [self.env.get(i) if i else None for i in node.input]
        label = node.name or (node.output[0] if node.output else f"node{k}")
        if any(isinstance(v, _Poison) for v in ins):
            if not hasattr(self, f"_op_{node.op_type.lower()}"):
                self.unsupported.append((label, node.op_type))  # unsupported in its own right too
            return self._poison(node)
        where = f"{self.name}: node {label!r} ({node.op_type})"
        if not any(isinstance(v, _Dyn) for v in ins):
            try:
                self.env[node.output[0]] = fold(node, ins, self.opset)
            except (KeyError, ValueError, IndexError, TypeError):
                self.unsupported.append((label, node.op_type))
                self._poison(node)
            except ModelTooLargeError as err:
                raise ModelTooLargeError(f"{where}: {err}") from None
            return
        handler = getattr(self, f"_op_{node.op_type.lower()}", None)
        try:
            out = handler(node, ins, label) if handler else None
        except (ValueError, IndexError) as err:
            raise InvalidModelError(f"{where}: {err}") from None
        except ModelTooLargeError as err:
            raise ModelTooLargeError(str(err) if str(err).startswith(self.name) else f"{where}: {err}") from None
        if out is None:
            self.unsupported.append((label, node.op_type))
            return self._poison(node)
        self._poison(node)  # outputs a handler does not produce (MaxPool's Indices) are unusable
        for name, value in zip(node.output, out if isinstance(out, tuple) else (out,)):
            self.env[name] = value

    def _poison(self, node) -> None:
        for o in node.output:
            self.env[o] = _Poison()

    def _node(self, label: str, op, srcs: Sequence[str]) -> str:
        return D.add_op(self.nx, label, op, srcs)

    def _add(self, label: str, op, srcs: list[_Dyn], full, batch: bool) -> _Dyn:
        return _Dyn(self._node(label, op, [s.node for s in srcs]), tuple(int(v) for v in full), batch)

    @staticmethod
    def _like(node: str, x: _Dyn, shape) -> _Dyn:
        """Node of IR shape `shape`, batched like x."""
        shape = tuple(int(v) for v in shape)
        return _Dyn(node, (1,) + shape if x.batch else shape, x.batch)

    def _reshaped(self, x: _Dyn, full, label: str) -> _Dyn:
        """x reshaped to ONNX shape `full` (the batch axis survives while full[0] == 1)."""
        full = tuple(int(v) for v in full)
        if int(np.prod(full)) != int(np.prod(x.full)):
            raise ValueError(f"cannot reshape {x.full} to {full}")
        batch = x.batch and len(full) >= 1 and full[0] == 1
        return self._add(label, O.Reshape(full[1:] if batch else full), [x], full, batch)

    def _const_for(self, x: _Dyn, c: np.ndarray) -> np.ndarray | None:
        """A constant broadcast against x's ONNX shape, as an array of x's IR shape (None if not)."""
        c = np.asarray(c, dtype=np.float64)
        if np.broadcast_shapes(c.shape, x.full) != x.full:
            return None
        return np.broadcast_to(c, x.full).reshape(x.shape) if c.size > 1 else c.reshape(())

    # ---- linear ops -------------------------------------------------------------------------
    def _op_gemm(self, node, ins, label):
        a = attrs(node)
        x, B = ins[0], ins[1]
        if not isinstance(x, _Dyn) or isinstance(B, _Dyn) or a.get("transA", 0) or len(x.full) != 2:
            return None
        if x.full[0] != 1:
            return None
        W = (B.T if a.get("transB", 0) else B).T * a.get("alpha", 1.0)
        C = ins[2] if len(ins) > 2 and ins[2] is not None else np.zeros(W.shape[0])
        bias = np.broadcast_to(np.asarray(C, dtype=np.float64) * a.get("beta", 1.0), (1, W.shape[0]))[0]
        return self._add(label, O.Affine(W, bias), [x], (1, W.shape[0]), True)

    def _op_matmul(self, node, ins, label):
        x, W = ins
        if isinstance(x, _Dyn) and not isinstance(W, _Dyn) and np.ndim(W) == 2:
            mat, full = D.matmul_matrix(x.full, W, x_left=True)
        elif isinstance(W, _Dyn) and not isinstance(x, _Dyn) and np.ndim(x) == 2 and len(W.full) == 2:
            x, W = W, np.asarray(ins[0], dtype=np.float64)
            mat, full = D.matmul_matrix(x.full, W, x_left=False)
        else:
            return None
        y_full = (1, mat.shape[0]) if x.batch else (mat.shape[0],)
        y = self._add(label, O.Affine(mat, np.zeros(mat.shape[0])), [x], y_full, x.batch)
        return y if y.full == tuple(full) else self._reshaped(y, full, label + "/reshape")

    def _op_einsum(self, node, ins, label):
        """Einsum with one network operand and constant others: an Affine (exact)."""
        dyn = [i for i, v in enumerate(ins) if isinstance(v, _Dyn)]
        if any(v is None for v in ins):
            raise ValueError("an Einsum operand is missing")
        if len(dyn) != 1:
            return None   # a product of two network tensors is not affine
        x = ins[dyn[0]]
        shapes = [x.full if i == dyn[0] else v for i, v in enumerate(ins)]
        mat, full = D.einsum_matrix(einsum_equation(attrs(node)), shapes, dyn[0])
        batch = x.batch and len(full) >= 1 and full[0] == 1
        size = int(np.prod(full))
        y = self._add(label, O.Affine(mat, np.zeros(size)), [x], (1, size) if batch else (size,), batch)
        return y if y.full == tuple(full) else self._reshaped(y, full, label + "/reshape")

    def _op_where(self, node, ins, label):
        """Where with a constant condition: each branch a selection (network tensor) or a fill
        (constant), their sum when both are network tensors. Exact."""
        cond, a, b = (list(ins) + [None] * 3)[:3]
        if any(v is None for v in (cond, a, b)):
            raise ValueError("Where needs a condition and two values")
        if isinstance(cond, _Dyn):
            return None   # a condition computed from the input is not affine
        shapes = [v.full if isinstance(v, _Dyn) else np.shape(v) for v in ins]
        full = tuple(int(v) for v in np.broadcast_shapes(*shapes))
        mask = np.broadcast_to(np.asarray(cond, dtype=bool), full)

        def branch(v, keep, tag, fill) -> _Dyn:
            pos = np.where(keep, np.broadcast_to(self._positions(v), full), 0.0)
            return self._select(v, pos, f"{label}/{tag}", fill=fill)

        dyn = [v for v in (a, b) if isinstance(v, _Dyn)]
        if len(dyn) == 2:
            zero = np.zeros(full)
            then, other = self._same_batch(branch(a, mask, "then", zero), branch(b, ~mask, "else", zero), label)
            return self._add(label, O.Add(), [then, other], full, then.batch)
        if isinstance(a, _Dyn):
            return branch(a, mask, "then", np.where(mask, 0.0, np.broadcast_to(np.asarray(b, np.float64), full)))
        return branch(b, ~mask, "else", np.where(mask, np.broadcast_to(np.asarray(a, np.float64), full), 0.0))

    def _elementwise(self, x: _Dyn, scale, shift, label: str):
        scale = self._const_for(x, scale)
        shift = self._const_for(x, shift)
        if scale is None or shift is None:
            return None
        return self._add(label, O.ElementwiseAffine(scale, shift), [x], x.full, x.batch)

    def _binary(self, ins, label, kind: str):
        a, b = ins
        if isinstance(a, _Dyn) and isinstance(b, _Dyn):
            if kind not in ("Add", "Sub"):
                return None
            a, b = self._broadcast(a, b, label)
            if kind == "Sub":
                b = self._add(label + "/neg", O.ElementwiseAffine(np.array(-1.0), np.array(0.0)), [b], b.full, b.batch)
            return self._add(label, O.Add(), [a, b], a.full, a.batch)
        x, c, const_first = (a, np.asarray(b, np.float64), False) if isinstance(a, _Dyn) else \
            (b, np.asarray(a, np.float64), True)
        if kind == "Add":
            return self._elementwise(x, 1.0, c, label)
        if kind == "Sub":
            return self._elementwise(x, -1.0, c, label) if const_first else self._elementwise(x, 1.0, -c, label)
        if kind == "Mul":
            return self._elementwise(x, c, 0.0, label)
        if kind == "Div" and not const_first and np.all(c != 0):
            return self._elementwise(x, 1.0 / c, 0.0, label)
        return None

    def _same_batch(self, a: _Dyn, b: _Dyn, label: str) -> tuple[_Dyn, _Dyn]:
        """Two network tensors of one ONNX shape with one IR shape: where only one of them carries the
        batch axis, that one is reshaped to the full ONNX shape (its leading 1 kept)."""
        if a.batch == b.batch:
            return a, b
        unbatch = lambda x, tag: self._add(f"{label}/{tag}", O.Reshape(x.full), [x], x.full, False)  # noqa: E731
        return (unbatch(a, "a"), b) if a.batch else (a, unbatch(b, "b"))

    def _broadcast(self, a: _Dyn, b: _Dyn, label: str) -> tuple[_Dyn, _Dyn]:
        """Two network tensors broadcast to one shape (numpy rules), by `Select`s where needed, with
        one IR shape (`_same_batch`)."""
        if a.full == b.full:
            return self._same_batch(a, b, label)
        full = np.broadcast_shapes(a.full, b.full)

        def grown(x: _Dyn, tag: str) -> _Dyn:
            if x.full == full:
                return x
            return self._select(x, np.broadcast_to(self._positions(x), full), f"{label}/{tag}")
        return self._same_batch(grown(a, "a"), grown(b, "b"), label)

    def _op_add(self, node, ins, label):
        return self._binary(ins, label, "Add")

    def _op_sub(self, node, ins, label):
        return self._binary(ins, label, "Sub")

    def _op_mul(self, node, ins, label):
        return self._binary(ins, label, "Mul")

    def _op_div(self, node, ins, label):
        return self._binary(ins, label, "Div")

    def _op_neg(self, node, ins, label):
        return self._elementwise(ins[0], -1.0, 0.0, label)

    def _one_d(self, node, ins, label, handler):
        """A 1-D conv / pool on (N, C, L) as the 2-D one on (N, C, 1, L), reshaped back."""
        x = ins[0]
        if len(x.full) != 3 or not x.batch:
            return None
        a = dict(attrs(node))
        for key, lead in (("kernel_shape", 1), ("strides", 1), ("dilations", 1), ("output_padding", 0),
                          ("output_shape", 1)):   # a leading axis of size 1
            if key in a:
                a[key] = [lead] + list(a[key])
        if "pads" in a:
            a["pads"] = [0, a["pads"][0], 0, a["pads"][1]] if len(a["pads"]) == 2 else a["pads"]
        flat = self._reshaped(x, (1, x.full[1], 1, x.full[2]), label + "/2d")
        rest = list(ins[1:])
        if rest and rest[0] is not None and not isinstance(rest[0], _Dyn) and np.ndim(rest[0]) == 3:
            rest[0] = np.asarray(rest[0])[:, :, None, :]   # conv weight (O, C/g, k) → (O, C/g, 1, k)
        out = handler([flat] + rest, label, a)
        if out is None:
            return None
        return self._reshaped(out, (1, out.full[1], out.full[3]), label + "/1d")

    def _op_conv(self, node, ins, label, a=None):
        """Conv and ConvTranspose, 2-D (1-D ones as 2-D), with constant weights."""
        x, w = ins[0], ins[1]
        if a is None and len(x.full) == 3:
            return self._one_d(node, ins, label, lambda i, lab, at: self._op_conv(node, i, lab, at))
        a = attrs(node) if a is None else a
        if isinstance(w, _Dyn) or len(x.full) != 4 or not x.batch or np.ndim(w) != 4:
            return None
        group = int(a.get("group", 1))
        kernel = tuple(int(k) for k in w.shape[2:])
        stride, dil = _two(a, "strides", 1), _two(a, "dilations", 1)
        bias = ins[2] if len(ins) > 2 and ins[2] is not None else None
        op: O.Conv2d | O.ConvTranspose2d
        if node.op_type == "ConvTranspose":
            extra = _two(a, "output_padding", 0)
            pads = _transpose_pads(a, x.full[2:], kernel, stride, dil, extra)
            bias = np.zeros(w.shape[1] * group) if bias is None else bias
            op = O.ConvTranspose2d(w, bias, stride, pads, extra, dil, group)
        else:
            conv_pads = _conv_pads(a, x.full[2:], kernel, stride, dil)
            if conv_pads is None:
                return None
            op = O.Conv2d(w, np.zeros(w.shape[0]) if bias is None else bias, stride, conv_pads, dil, group)
        from optcert.ir.network import out_shape
        return self._add(label, op, [x], (1,) + out_shape(op, [x.shape]), True)

    _op_convtranspose = _op_conv

    def _op_resize(self, node, ins, label):
        """Resize (opset 10–19) and Upsample: nearest, linear or cubic, written by `resize.py`."""
        x, a = ins[0], attrs(node)
        if not isinstance(x, _Dyn) or any(isinstance(v, _Dyn) for v in ins[1:]):
            return None
        how = _resize_how(a, node.op_type, self.opset)
        if how is None:
            return None
        rank = len(x.full)
        axes = [int(v) for v in a.get("axes", range(rank))]
        if any(not -rank <= v < rank for v in axes):
            raise ValueError(f"resize axes {axes} out of range for rank {rank}")
        axes = [v % rank for v in axes]
        scales, sizes = _resize_targets(node.op_type, a, ins, self.opset)
        if len(scales if sizes is None else sizes) != len(axes):
            raise ValueError(f"resize targets {len(scales if sizes is None else sizes)} values for {len(axes)} axes")
        full_scale, full = [1.0] * rank, list(x.full)
        for i, axis in enumerate(axes):
            if sizes is not None:
                full[axis] = int(sizes[i])
                full_scale[axis] = float(np.float32(full[axis]) / np.float32(x.full[axis]))
            else:
                full_scale[axis] = float(scales[i])
                full[axis] = R.output_size(x.full[axis], full_scale[axis])
        if how.coordinates is R.Coordinates.ASYMMETRIC and how.rounding is R.Rounding.FLOOR and \
                how.mode is R.ResizeMode.NEAREST and min(full_scale) < 1:
            return None     # Resize-10 / Upsample shrinking: onnxruntime rounds otherwise than the spec
        lead = 1 if x.batch else 0
        if x.batch and (full[0] != 1 or full_scale[0] != 1.0):
            return None                                    # resizing the batch axis
        out = R.resize(self._node, label, x.node, x.full[lead:], full[lead:], full_scale[lead:], how)
        return _Dyn(out, tuple(full), x.batch)

    _op_upsample = _op_resize

    def _op_batchnormalization(self, node, ins, label):
        x, gamma, beta, mean, var = ins[:5]
        if not x.batch or len(x.full) < 2:
            return None
        op = O.BatchNorm(mean, var, gamma, beta, attrs(node).get("epsilon", 1e-5))
        return self._add(label, op, [x], x.full, True)

    # ---- shape ops --------------------------------------------------------------------------
    def _op_relu(self, node, ins, label):
        return self._add(label, O.ReLU(), [ins[0]], ins[0].full, ins[0].batch)

    def _op_identity(self, node, ins, label):
        return ins[0]

    _op_dropout = _op_identity
    _op_cast = _op_identity

    def _op_flatten(self, node, ins, label):
        x = ins[0]
        axis = attrs(node).get("axis", 1) % max(len(x.full), 1)
        return self._reshaped(x, (int(np.prod(x.full[:axis])), int(np.prod(x.full[axis:]))), label)

    def _op_reshape(self, node, ins, label):
        if isinstance(ins[1], _Dyn):
            return None
        return self._reshaped(ins[0], reshape_target(ins[0].full, ins[1], attrs(node).get("allowzero", 0)), label)

    def _axes(self, node, ins):
        a = attrs(node).get("axes")
        return list(a) if a is not None else (None if len(ins) < 2 else [int(v) for v in np.ravel(ins[1])])

    def _op_squeeze(self, node, ins, label):
        return self._reshaped(ins[0], squeeze_shape(ins[0].full, self._axes(node, ins)), label)

    def _op_unsqueeze(self, node, ins, label):
        return self._reshaped(ins[0], unsqueeze_shape(ins[0].full, self._axes(node, ins)), label)

    def _op_shape(self, node, ins, label):
        return np.asarray(ins[0].full, dtype=np.int64)

    def _op_transpose(self, node, ins, label):
        x = ins[0]
        perm = list(attrs(node).get("perm", reversed(range(len(x.full)))))
        full = tuple(x.full[p] for p in perm)
        moved = [p for p in perm if x.full[p] != 1]
        if moved == sorted(moved):  # only size-1 axes move: the data order is unchanged
            return self._reshaped(x, full, label)
        if x.batch and perm[0] == 0:
            return self._add(label, O.Transpose(tuple(p - 1 for p in perm[1:])), [x], full, True)
        src = self._add(label + "/unbatch", O.Reshape(x.full), [x], x.full, False) if x.batch else x
        return self._add(label, O.Transpose(tuple(perm)), [src], full, False)

    # ---- selections: what the layer copies, found by running it on positions 1..n ---------------
    def _positions(self, x: _Dyn) -> np.ndarray:
        return np.arange(1, int(np.prod(x.full)) + 1, dtype=np.float64).reshape(x.full)

    def _select(self, x: _Dyn, pos: np.ndarray, label: str, fill=None) -> _Dyn:
        batch = x.batch and pos.ndim >= 1 and pos.shape[0] == 1
        op = D.select_map(pos.reshape(pos.shape[1:]) if batch else pos)
        if fill is not None:
            op = O.Select(op.index, np.where(op.index >= 0, 0.0, np.ravel(fill)), op.shape)
        return self._add(label, op, [x], pos.shape, batch)

    def _by_folding(self, node, ins, label):
        """Slice, Gather: the op itself run on positions (its other inputs must be constants)."""
        x = ins[0]
        if any(isinstance(v, _Dyn) for v in ins[1:]) or not isinstance(x, _Dyn):
            return None
        try:
            pos = np.asarray(fold(node, [self._positions(x)] + ins[1:], self.opset))
        except KeyError:
            return None
        return self._select(x, pos, label)

    _op_slice = _by_folding
    _op_gather = _by_folding
    _op_expand = _by_folding
    _op_tile = _by_folding
    _op_depthtospace = _by_folding
    _op_spacetodepth = _by_folding
    _op_trilu = _by_folding
    _op_gatherelements = _by_folding
    _op_gathernd = _by_folding
    _op_compress = _by_folding

    def _op_cumsum(self, node, ins, label):
        """CumSum along a constant axis: a dense Affine (its matrix is the cumulative sum of the identity)."""
        x, a = ins[0], attrs(node)
        if isinstance(ins[1], _Dyn):
            return None
        axis = int(np.ravel(ins[1])[0])
        mat = D.cumsum_matrix(x.full, axis, bool(a.get("exclusive", 0)), bool(a.get("reverse", 0)))
        n = mat.shape[0]
        flat = self._add(label, O.Affine(mat, np.zeros(n)), [x], (1, n) if x.batch else (n,), x.batch)
        return self._reshaped(flat, x.full, label + "/shape")

    def _op_pad(self, node, ins, label):
        x, a = ins[0], attrs(node)
        if any(isinstance(v, _Dyn) for v in ins[1:]):
            return None
        pads = a.get("pads") if len(ins) < 2 or ins[1] is None else np.ravel(ins[1])
        value = a.get("value", 0.0) if len(ins) < 3 or ins[2] is None else float(np.ravel(ins[2])[0])
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        rank = len(x.full)
        axes = list(range(rank)) if len(ins) < 4 or ins[3] is None else [int(v) % rank for v in np.ravel(ins[3])]
        if pads is None:
            return None
        pads = [int(v) for v in pads]
        if len(pads) != 2 * len(axes) or mode not in ("constant", "reflect", "edge", "wrap") or min(pads) < 0:
            return None
        width = [(0, 0)] * rank
        for i, ax in enumerate(axes):
            width[ax] = (pads[i], pads[i + len(axes)])
        pos = np.pad(self._positions(x), width, mode=mode)  # type: ignore[arg-type]
        return self._select(x, pos, label, fill=np.full(pos.size, value))

    def _op_concat(self, node, ins, label):
        axis = int(attrs(node).get("axis", 0))
        dyn = [v for v in ins if isinstance(v, _Dyn)]
        if any(d.batch != dyn[0].batch for d in dyn):
            return None
        arrays = [v.full if isinstance(v, _Dyn) else np.shape(v) for v in ins]
        code = np.concatenate([np.full(shape, i) for i, shape in enumerate(arrays)], axis=axis)
        pos = np.concatenate([np.arange(int(np.prod(shape))).reshape(shape) for shape in arrays], axis=axis)
        batch = dyn[0].batch and code.shape[0] == 1
        full, fill = code.shape, np.zeros(code.size)
        for i, v in enumerate(ins):
            if not isinstance(v, _Dyn):
                part = (code == i).ravel()
                fill[part] = np.asarray(v, np.float64).ravel()[pos.ravel()[part]]
        sources = [(v.node, np.where(code == i, pos, -1).ravel()) for i, v in enumerate(ins) if isinstance(v, _Dyn)]
        out = D.gather(self._node, label, sources, fill, full[1:] if batch else full)
        return _Dyn(out, tuple(int(d) for d in full), batch)

    def _op_split(self, node, ins, label):
        x, a = ins[0], attrs(node)
        axis = int(a.get("axis", 0)) % len(x.full)
        sizes = a.get("split") if len(ins) < 2 or ins[1] is None else np.ravel(ins[1])
        if isinstance(sizes, _Dyn):
            return None
        n = x.full[axis]
        if sizes is None:
            k = len(node.output)
            sizes = [-(-n // k)] * (k - 1) + [n - (k - 1) * -(-n // k)]
        sizes = [int(v) for v in sizes]
        if sum(sizes) != n or min(sizes) < 0 or len(sizes) != len(node.output):
            raise ValueError(f"split sizes {sizes} do not cut an axis of {n} into {len(node.output)} outputs")
        cuts = np.cumsum(sizes)[:-1]
        parts = np.split(self._positions(x), cuts, axis=axis)
        return tuple(self._select(x, p, f"{label}/{i}") for i, p in enumerate(parts))

    # ---- piecewise-linear layers, written with ReLUs (decompose.py) ------------------------------
    def _pool(self, node, ins, label, kind: str, a=None):
        x = ins[0]
        if a is None and len(x.full) == 3:
            return self._one_d(node, ins, label, lambda i, lab, at: self._pool(node, i, lab, kind, at))
        a = attrs(node) if a is None else a
        if len(x.full) != 4 or not x.batch:
            return None
        pads: tuple[int, int, int, int] | None = (0, 0, 0, 0)
        if kind.startswith("Global"):
            kernel, stride, dil, ceil = x.full[2:], (1, 1), (1, 1), False
        else:
            if "kernel_shape" not in a or len(a["kernel_shape"]) != 2:
                raise ValueError("a 2-D pool needs a kernel_shape of two entries")
            kernel = tuple(a["kernel_shape"])
            stride, dil = tuple(a.get("strides", (1, 1))), tuple(a.get("dilations", (1, 1)))
            pads = _conv_pads(a, x.full[2:], kernel, stride, dil)
            ceil = bool(a.get("ceil_mode", 0))
            if pads is None:
                return None
        if kind.endswith("MaxPool"):
            out, shape = D.max_pool(self._node, label, x.node, x.shape, kernel, stride, pads, dil, ceil)
        else:
            out, shape = D.avg_pool(self._node, label, x.node, x.shape, kernel, stride, pads, dil, ceil,
                                    bool(a.get("count_include_pad", 0)))
        return self._like(out, x, shape)

    def _op_maxpool(self, node, ins, label):
        if len(node.output) > 1 and node.output[1] and any(node.output[1] in n.input for n in self.g.node):
            return None  # the Indices output is used
        return self._pool(node, ins, label, "MaxPool")

    def _op_averagepool(self, node, ins, label):
        return self._pool(node, ins, label, "AveragePool")

    def _op_globalmaxpool(self, node, ins, label):
        return self._pool(node, ins, label, "GlobalMaxPool")

    def _op_globalaveragepool(self, node, ins, label):
        return self._pool(node, ins, label, "GlobalAveragePool")

    def _extreme(self, ins, label, kind: str):
        """Max / Min of network tensors of one shape and constants."""
        dyn = [v for v in ins if isinstance(v, _Dyn)]
        if any(d.full != dyn[0].full for d in dyn):
            return None
        x, out = dyn[0], dyn[0].node
        pair = D.maximum if kind == "Max" else D.minimum
        for i, d in enumerate(dyn[1:]):
            out = pair(self._node, f"{label}/{i}", out, d.node)
        consts = [np.asarray(v, np.float64) for v in ins if not isinstance(v, _Dyn)]
        if consts:
            c = self._const_for(x, (np.maximum if kind == "Max" else np.minimum).reduce(
                np.broadcast_arrays(*consts)) if len(consts) > 1 else consts[0])
            if c is None:
                return None
            lo, hi = (c, np.array(np.inf)) if kind == "Max" else (np.array(-np.inf), c)
            out = D.clip(self._node, label, out, lo, hi)
        return _Dyn(out, x.full, x.batch)

    def _op_abs(self, node, ins, label):
        return _Dyn(D.absolute(self._node, label, ins[0].node), ins[0].full, ins[0].batch)

    def _extreme_over(self, node, ins, label, largest: bool):
        """ReduceMax / ReduceMin over constant axes (not the batch axis): a tree of maxima / minima."""
        x, a = ins[0], attrs(node)
        if any(isinstance(v, _Dyn) for v in ins[1:]):
            return None
        rank = len(x.full)
        wanted = _reduction_axes(a, ins, rank)
        if not wanted:
            return x
        if x.batch and 0 in wanted and not a.get("keepdims", 1):
            return None                                   # the batch axis would go
        reduced = sorted(wanted - ({0} if x.batch else set()))   # (over the batch axis of 1: nothing)
        index = D.reduction_index(x.full, reduced)
        kept_full = tuple(d for i, d in enumerate(x.full) if i not in reduced)
        full = tuple(1 if i in reduced else d for i, d in enumerate(x.full)) if a.get("keepdims", 1) else kept_full
        shape = full[1:] if x.batch else full
        out = D.extreme_of(self._node, label, x.node, index, shape, largest)
        return _Dyn(out, full, x.batch)

    def _op_reducemax(self, node, ins, label):
        return self._extreme_over(node, ins, label, largest=True)

    def _op_reducemin(self, node, ins, label):
        return self._extreme_over(node, ins, label, largest=False)

    def _op_max(self, node, ins, label):
        return self._extreme(ins, label, "Max")

    def _op_min(self, node, ins, label):
        return self._extreme(ins, label, "Min")

    def _op_clip(self, node, ins, label):
        x, a = ins[0], attrs(node)
        if any(isinstance(v, _Dyn) for v in ins[1:]):
            return None
        lo = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("min", -np.inf)
        hi = ins[2] if len(ins) > 2 and ins[2] is not None else a.get("max", np.inf)
        lo, hi = self._const_for(x, lo), self._const_for(x, hi)
        if lo is None or hi is None:
            return None
        return _Dyn(D.clip(self._node, label, x.node, lo, hi), x.full, x.batch)

    def _op_hardsigmoid(self, node, ins, label):
        a = attrs(node)
        x = ins[0]
        return _Dyn(D.hard_sigmoid(self._node, label, x.node, a.get("alpha", 0.2), a.get("beta", 0.5)), x.full, x.batch)

    def _op_shrink(self, node, ins, label):
        """Shrink where it is continuous (bias = lambd ≥ 0); the jump of any other bias is not
        piecewise linear (unsupported)."""
        a = attrs(node)
        lam, bias = float(a.get("lambd", 0.5)), float(a.get("bias", 0.0))
        if lam < 0 or bias != lam:
            return None
        x = ins[0]
        return _Dyn(D.soft_shrink(self._node, label, x.node, lam), x.full, x.batch)

    def _op_mean(self, node, ins, label):
        total = self._op_sum(node, ins, label + "/sum")
        return None if total is None else self._elementwise(total, 1.0 / len(ins), 0.0, label)

    def _op_reducel1(self, node, ins, label):
        """Σ|x| over constant axes: Abs (with ReLUs), then ReduceSum."""
        return self._reduce(node, [self._op_abs(node, ins[:1], label + "/abs")] + list(ins[1:]), label, mean=False)

    def _op_leakyrelu(self, node, ins, label):
        x = ins[0]
        return _Dyn(D.leaky_relu(self._node, label, x.node, np.array(attrs(node).get("alpha", 0.01))),
                    x.full, x.batch)

    def _op_prelu(self, node, ins, label):
        x, slope = ins[0], ins[1]
        if isinstance(slope, _Dyn) or (slope := self._const_for(x, slope)) is None:
            return None
        return _Dyn(D.leaky_relu(self._node, label, x.node, slope), x.full, x.batch)

    def _reduce(self, node, ins, label, mean: bool):
        """ReduceSum / ReduceMean over constant axes: a linear map (dense Affine), then the shape."""
        x, a = ins[0], attrs(node)
        if any(isinstance(v, _Dyn) for v in ins[1:]):
            return None
        rank = len(x.full)
        reduced = _reduction_axes(a, ins, rank)
        if not reduced:
            return x
        weight, kept_full = D.reduction_matrix(x.full, reduced, mean)
        n_out = weight.shape[0]
        y = self._add(label, O.Affine(weight, np.zeros(n_out)), [x], (1, n_out) if x.batch else (n_out,), x.batch)
        full = kept_full if a.get("keepdims", 1) else tuple(d for i, d in enumerate(x.full) if i not in reduced)
        return self._reshaped(y, full, label + "/shape")

    def _op_reducesum(self, node, ins, label):
        return self._reduce(node, ins, label, mean=False)

    def _op_reducemean(self, node, ins, label):
        return self._reduce(node, ins, label, mean=True)

    def _op_sum(self, node, ins, label):
        out = ins[0]
        for i, v in enumerate(ins[1:]):
            pair = (out, v) if isinstance(out, _Dyn) or isinstance(v, _Dyn) else None
            out = self._binary(list(pair), f"{label}/{i}", "Add") if pair else np.add(out, v)
            if out is None:
                return None
        return out


def _reduction_axes(a: dict, ins: list, rank: int) -> set[int]:
    """The axes a Reduce* node reduces (from its attribute or its second input; all when none are
    given), non-negative; empty for a no-op (noop_with_empty_axes)."""
    axes = a.get("axes") if len(ins) < 2 or ins[1] is None else [int(v) for v in np.ravel(ins[1])]
    if axes is None or len(axes) == 0:
        return set() if a.get("noop_with_empty_axes", 0) else set(range(rank))
    if any(not -rank <= int(v) < rank for v in axes):
        raise ValueError(f"reduction axes {list(axes)} out of range for rank {rank}")
    return {int(v) % rank for v in axes}


def _two(a: dict, key: str, default: int) -> tuple[int, int]:
    """A 2-D convolution's attribute of two integers (strides, dilations, output_padding)."""
    v = [int(x) for x in a.get(key, (default, default))]
    if len(v) != 2:
        raise ValueError(f"a 2-D convolution needs {key} of two entries, got {v}")
    return (v[0], v[1])


def _resize_how(a: dict, op_type: str, opset: int) -> R.Resize | None:
    """The interpolation an ONNX Resize / Upsample node asks for; None when unsupported
    (tf_crop_and_resize, antialiasing, a kept aspect ratio)."""
    def text(key, default):
        v = a.get(key, default)
        return v.decode() if isinstance(v, bytes) else str(v)

    mode = text("mode", "nearest").lower()
    mode = {"bilinear": "linear", "trilinear": "linear", "bicubic": "cubic"}.get(mode, mode)
    if mode not in ("nearest", "linear", "cubic"):
        raise ValueError(f"unknown resize mode {mode!r}")
    if op_type == "Upsample" or opset < 11:   # before opset 11: asymmetric coordinates, floor
        return R.Resize(R.ResizeMode(mode), R.Coordinates.ASYMMETRIC, R.Rounding.FLOOR)
    coords = text("coordinate_transformation_mode", "half_pixel")
    if a.get("antialias", 0) or text("keep_aspect_ratio_policy", "stretch") != "stretch" or \
            coords not in {c.value for c in R.Coordinates}:
        return None
    rounding = text("nearest_mode", "round_prefer_floor")
    if rounding not in {r.value for r in R.Rounding}:
        raise ValueError(f"unknown nearest_mode {rounding!r}")
    return R.Resize(R.ResizeMode(mode), R.Coordinates(coords), R.Rounding(rounding),
                    float(a.get("cubic_coeff_a", -0.75)), bool(a.get("exclude_outside", 0)))


def _resize_targets(op_type: str, a: dict, ins: list, opset: int):
    """(scales, sizes) of a Resize / Upsample node, one of them None."""
    def given(i):
        return None if len(ins) <= i or ins[i] is None or np.size(ins[i]) == 0 else np.ravel(ins[i])

    if op_type == "Upsample":
        scales = given(1) if "scales" not in a else np.asarray(a["scales"])
        sizes = None
    elif opset < 11:
        scales, sizes = given(1), None
    else:
        scales, sizes = given(2), given(3)
    if (scales is None) == (sizes is None):
        raise ValueError("a resize needs exactly one of scales and sizes")
    target = np.asarray(scales if scales is not None else sizes, np.float64)
    if not np.all(np.isfinite(target)) or np.any(target <= 0):
        raise ValueError(f"resize scales / sizes must be positive, got {target.tolist()}")
    return scales, sizes


def _transpose_pads(a: dict, hw, kernel, stride, dil, extra) -> tuple[int, int, int, int]:
    """ConvTranspose padding (top, left, bottom, right): `pads`, or derived from `output_shape` /
    SAME auto-padding as the ONNX operator spec says (SAME_UPPER puts the odd one at the end)."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise ValueError(f"unknown auto_pad {auto!r}")
    given = a.get("output_shape")
    same = given is None and auto.startswith("SAME")
    if same:
        given = [size * s for size, s in zip(hw, stride)]
    if given is None:
        p = [0, 0, 0, 0] if auto == "VALID" else [int(v) for v in a.get("pads", (0, 0, 0, 0))]
        if len(p) != 4:
            raise ValueError(f"a 2-D ConvTranspose needs 4 pads, got {p}")
        return (p[0], p[1], p[2], p[3])
    target = [int(v) for v in list(given)]
    if len(target) != 2:
        raise ValueError(f"a 2-D ConvTranspose needs an output_shape of two entries, got {target}")
    pads = []
    for size, k, s, d, e, want in zip(hw, kernel, stride, dil, extra, target):
        total = s * (size - 1) + e + (k - 1) * d + 1 - want
        if same:
            total = max(total, 0)     # a kernel narrower than the stride: no padding (as onnxruntime)
        if total < 0:
            raise ValueError(f"output_shape {tuple(target)} is larger than the transposed convolution gives")
        small, big = total // 2, total - total // 2
        pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _conv_pads(a: dict, hw, kernel, stride, dil) -> tuple[int, int, int, int] | None:
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", "VALID"):
        p = list(a.get("pads", (0, 0, 0, 0))) if auto == "NOTSET" else [0, 0, 0, 0]
        return (p[0], p[1], p[2], p[3]) if len(p) == 4 else None
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        return None
    pads = []
    for size, k, s, d in zip(hw, kernel, stride, dil):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        pads.append((small, big) if auto == "SAME_UPPER" else (big, small))
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
