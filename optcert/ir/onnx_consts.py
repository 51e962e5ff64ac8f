"""Constant folding for ONNX nodes whose inputs are all constants (shape arithmetic, weights).

Exporters wrap weights and reshape targets in small constant subgraphs (Shape → Gather →
Unsqueeze → Concat → Reshape, transposed weights, Cast). These are evaluated here in numpy so
the importer only ever sees constants or network tensors.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from onnx import helper, numpy_helper


def attrs(node) -> dict:
    """The node's attributes as plain Python values."""
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _axes(node, ins, opset: int) -> list[int] | None:
    a = attrs(node).get("axes")
    if a is not None:
        return [int(v) for v in a]
    if len(ins) > 1 and ins[1] is not None:
        return [int(v) for v in np.asarray(ins[1]).reshape(-1)]
    return None


def reshape_target(full: tuple[int, ...], shape: np.ndarray, allowzero: int = 0) -> tuple[int, ...]:
    """ONNX Reshape semantics on a full shape: 0 copies the input dim (unless allowzero), -1 infers."""
    out = [int(s) for s in np.asarray(shape).reshape(-1)]
    if not allowzero:
        out = [full[i] if s == 0 else s for i, s in enumerate(out)]
    if -1 in out:
        known = int(np.prod([s for s in out if s != -1]))
        out[out.index(-1)] = int(np.prod(full)) // max(known, 1)
    return tuple(out)


def squeeze_shape(full: tuple[int, ...], axes: list[int] | None) -> tuple[int, ...]:
    if axes is None:
        return tuple(s for s in full if s != 1)
    axes = [a % len(full) for a in axes]
    return tuple(s for i, s in enumerate(full) if i not in axes)


def unsqueeze_shape(full: tuple[int, ...], axes: list[int]) -> tuple[int, ...]:
    rank = len(full) + len(axes)
    axes = sorted(a % rank for a in axes)
    out = list(full)
    for a in axes:
        out.insert(a, 1)
    return tuple(out)


def fold(node, ins: list, opset: int) -> np.ndarray:
    """Evaluate `node` on constant inputs; raise KeyError if the op cannot be folded."""
    t, a = node.op_type, attrs(node)
    x: Any = ins[0] if ins else None
    if t == "Constant":
        if "value" in a:
            return numpy_helper.to_array(a["value"])
        for key in ("value_float", "value_int"):
            if key in a:
                return np.asarray(a[key])
        for key in ("value_floats", "value_ints"):
            if key in a:
                return np.asarray(list(a[key]))
        raise KeyError(t)
    binary: dict[str, Any] = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": _div, "MatMul": np.matmul,
              "Pow": np.power, "Equal": np.equal, "Max": np.maximum, "Min": np.minimum}
    if t in binary:
        return binary[t](ins[0], ins[1])
    if t in ("Identity", "Dropout", "Cast"):
        return x if t != "Cast" else x.astype(helper.tensor_dtype_to_np_dtype(a["to"]))
    if t == "Neg":
        return -x
    if t == "Sqrt":
        return np.sqrt(x)
    if t == "Relu":
        return np.maximum(x, 0)
    if t == "Reshape":
        return x.reshape(reshape_target(x.shape, ins[1], a.get("allowzero", 0)))
    if t == "Flatten":
        axis = a.get("axis", 1) % max(x.ndim, 1)
        return x.reshape(int(np.prod(x.shape[:axis])), -1)
    if t == "Transpose":
        return np.transpose(x, a.get("perm"))
    if t == "Squeeze":
        return x.reshape(squeeze_shape(x.shape, _axes(node, ins, opset)))
    if t == "Unsqueeze":
        return x.reshape(unsqueeze_shape(x.shape, _axes(node, ins, opset) or []))
    if t == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in ins], axis=a.get("axis", 0))
    if t == "Gather":
        return np.take(x, np.asarray(ins[1]).astype(np.int64), axis=a.get("axis", 0))
    if t == "ConstantOfShape":
        value = numpy_helper.to_array(a["value"]).ravel() if "value" in a else np.zeros(1, np.float32)
        return np.full(tuple(int(v) for v in np.ravel(x)), value[0], dtype=value.dtype)
    if t == "Shape":
        return np.asarray(x.shape, dtype=np.int64)
    if t == "Slice":  # before opset 10, starts / ends / axes are attributes
        return _slice(x, ins if len(ins) > 1 else [x, a["starts"], a["ends"], a.get("axes")])
    if t == "Expand":
        return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(int(v) for v in np.ravel(ins[1])))).copy()
    if t == "Tile":
        return np.tile(x, tuple(int(v) for v in np.ravel(ins[1])))
    if t in ("DepthToSpace", "SpaceToDepth"):
        return _depth_space(x, t, int(a["blocksize"]), a.get("mode", b"DCR"))
    if t == "Where":
        if any(v is None for v in ins[:3]):
            raise ValueError("Where needs a condition and two values")
        return np.where(np.asarray(ins[0], dtype=bool), ins[1], ins[2])
    if t == "Einsum":
        return _einsum(einsum_equation(a), ins)
    logical: dict[str, Any] = {"Greater": np.greater, "Less": np.less, "GreaterOrEqual": np.greater_equal,
                               "LessOrEqual": np.less_equal, "And": np.logical_and, "Or": np.logical_or,
                               "Xor": np.logical_xor}
    if t in logical:
        return logical[t](ins[0], ins[1])
    if t == "Not":
        return np.logical_not(x)
    if t == "Trilu":
        k = int(np.ravel(ins[1])[0]) if len(ins) > 1 and ins[1] is not None else 0
        if np.ndim(x) < 2:
            raise ValueError("Trilu needs a tensor of rank 2 or more")
        return np.triu(x, k) if a.get("upper", 1) else np.tril(x, k)
    if t == "GatherElements":
        index = np.asarray(ins[1]).astype(np.int64)
        if index.ndim != np.ndim(x) or not -index.ndim <= int(a.get("axis", 0)) < index.ndim:
            raise ValueError(f"GatherElements indices of rank {index.ndim} for data of rank {np.ndim(x)}")
        axis = int(a.get("axis", 0)) % index.ndim
        n = np.shape(x)[axis]
        if np.any((index < -n) | (index >= n)) or any(
                i > d for k, (i, d) in enumerate(zip(index.shape, np.shape(x))) if k != axis):
            raise ValueError(f"GatherElements indices {index.shape} out of range for data {np.shape(x)}")
        part = x[tuple(slice(None) if k == axis else slice(0, i) for k, i in enumerate(index.shape))]
        return np.take_along_axis(part, np.where(index < 0, index + n, index), axis=axis)   # no broadcasting
    if t == "GatherND" and not a.get("batch_dims", 0):
        index = np.asarray(ins[1]).astype(np.int64)
        depth = index.shape[-1]
        shape = np.shape(x)[:depth]
        if depth > np.ndim(x) or np.any((index < -np.array(shape)) | (index >= np.array(shape))):
            raise ValueError("GatherND indices out of range")
        index = np.where(index < 0, index + np.array(shape), index)
        if depth == 0:     # empty index tuples: the whole tensor, once per tuple
            return np.broadcast_to(x, index.shape[:-1] + np.shape(x)).copy()
        return x[tuple(np.moveaxis(index, -1, 0))]
    if t == "Compress":
        return np.compress(np.asarray(ins[1], dtype=bool), x, axis=a.get("axis"))
    if t == "CumSum":
        from optcert.ir.decompose import cumsum

        return cumsum(x, int(np.ravel(ins[1])[0]), bool(a.get("exclusive", 0)), bool(a.get("reverse", 0)))
    if t == "Gemm":
        A = ins[0].T if a.get("transA", 0) else ins[0]
        B = ins[1].T if a.get("transB", 0) else ins[1]
        C = ins[2] if len(ins) > 2 and ins[2] is not None else 0.0
        return a.get("alpha", 1.0) * (A @ B) + a.get("beta", 1.0) * C
    raise KeyError(t)


def einsum_equation(a: dict) -> str:
    """An Einsum node's equation attribute (ValueError when missing or not a string)."""
    eq = a.get("equation")
    if isinstance(eq, bytes):
        eq = eq.decode(errors="replace")
    if not isinstance(eq, str):
        raise ValueError("Einsum needs a string attribute 'equation'")
    return eq.replace(" ", "")


def _einsum(eq: str, ins: list) -> np.ndarray:
    from optcert.errors import ModelTooLargeError
    from optcert.ir.decompose import einsum_size

    size = einsum_size(eq, [np.shape(v) for v in ins])
    if size is not None and size > 1 << 26:
        raise ModelTooLargeError(f"Einsum {eq!r} on constants would make {size:,} elements")
    return np.einsum(eq, *ins)


def _depth_space(x: np.ndarray, t: str, bs: int, mode) -> np.ndarray:
    """ONNX DepthToSpace (DCR or CRD mode) / SpaceToDepth on (N, C, H, W)."""
    n, c, h, w = x.shape
    if t == "SpaceToDepth":
        if h % bs or w % bs:
            raise ValueError(f"SpaceToDepth block {bs} does not divide {h}x{w}")
        return x.reshape(n, c, h // bs, bs, w // bs, bs).transpose(0, 3, 5, 1, 2, 4).reshape(
            n, c * bs * bs, h // bs, w // bs)
    if c % (bs * bs):
        raise ValueError(f"DepthToSpace block {bs} does not divide {c} channels")
    if (mode.decode() if isinstance(mode, bytes) else mode) == "CRD":
        y = x.reshape(n, c // bs ** 2, bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    else:
        y = x.reshape(n, bs, bs, c // bs ** 2, h, w).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // bs ** 2, h * bs, w * bs)


def _div(a, b):
    if np.issubdtype(np.asarray(a).dtype, np.integer) and np.issubdtype(np.asarray(b).dtype, np.integer):
        return np.floor_divide(a, b)
    return np.divide(a, b)


def _slice(x, ins) -> np.ndarray:
    starts, ends = np.asarray(ins[1]).reshape(-1), np.asarray(ins[2]).reshape(-1)
    axes = np.asarray(ins[3]).reshape(-1) if len(ins) > 3 and ins[3] is not None else range(len(starts))
    steps = np.asarray(ins[4]).reshape(-1) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[int(ax)] = slice(int(s), int(e), int(st))
    return x[tuple(index)]
