"""Frozen operator payloads of the model graph.

Ops are plain data: their float64 semantics live in `network.py`, their affine form in
`layered.py`. Shapes never include the batch dimension. Arrays are copied to float64 and made
read-only, so an op can be shared between graphs without aliasing surprises.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _frozen_array(value, name: str, ndim: int | None = None) -> np.ndarray:
    arr = np.array(value, dtype=np.float64, copy=True)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    arr.setflags(write=False)
    return arr


def _shape(value) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class Input:
    """The network input, of `shape` (no batch dimension)."""

    shape: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape))


@dataclass(frozen=True, eq=False)
class Affine:
    """y = W · flatten(x) + b, output of shape (m,). `weight` is (m, n), `bias` is (m,)."""

    weight: np.ndarray
    bias: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "weight", _frozen_array(self.weight, "weight", 2))
        object.__setattr__(self, "bias", _frozen_array(self.bias, "bias", 1))


@dataclass(frozen=True, eq=False)
class Conv2d:
    """2-D cross-correlation on (C, H, W) as in ONNX Conv / torch.nn.Conv2d.

    `weight` is (O, C/groups, kh, kw); `padding` is (top, left, bottom, right).
    """

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self):
        object.__setattr__(self, "weight", _frozen_array(self.weight, "weight", 4))
        object.__setattr__(self, "bias", _frozen_array(self.bias, "bias", 1))
        object.__setattr__(self, "stride", _shape(self.stride))
        object.__setattr__(self, "padding", _shape(self.padding))
        object.__setattr__(self, "dilation", _shape(self.dilation))
        object.__setattr__(self, "groups", int(self.groups))


@dataclass(frozen=True, eq=False)
class ConvTranspose2d:
    """2-D transposed convolution on (C, H, W) as in ONNX ConvTranspose / torch.nn.ConvTranspose2d:
    the adjoint of the `Conv2d` with the same weight, stride, padding, dilation and groups, plus
    `output_padding` extra rows/columns at the bottom/right and a per-channel bias. Exact (linear).

    `weight` is (C_in, C_out/groups, kh, kw); `padding` is (top, left, bottom, right).
    """

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    output_padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self):
        object.__setattr__(self, "weight", _frozen_array(self.weight, "weight", 4))
        object.__setattr__(self, "bias", _frozen_array(self.bias, "bias", 1))
        for key in ("stride", "padding", "output_padding", "dilation"):
            object.__setattr__(self, key, _shape(getattr(self, key)))
        object.__setattr__(self, "groups", int(self.groups))

    def adjoint(self) -> Conv2d:
        """The convolution this op is the transpose of (bias zero), reading the (C_out, H', W') output."""
        return Conv2d(self.weight, np.zeros(self.weight.shape[0]), self.stride, self.padding, self.dilation,
                      self.groups)


@dataclass(frozen=True)
class ReLU:
    """y = max(x, 0) elementwise."""


@dataclass(frozen=True)
class Reshape:
    """Row-major reshape to `shape` (one entry may be -1). Flatten is `Reshape((-1,))`."""

    shape: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "shape", _shape(self.shape))


def Flatten() -> Reshape:  # noqa: N802 - reads like the op it builds
    """Flatten to a vector (the batch dimension is never part of a shape)."""
    return Reshape((-1,))


@dataclass(frozen=True)
class Transpose:
    """Permute the axes of the input (no batch axis) by `perm`."""

    perm: tuple[int, ...]

    def __post_init__(self):
        object.__setattr__(self, "perm", _shape(self.perm))


@dataclass(frozen=True)
class Add:
    """Elementwise sum of two graph inputs of the same shape (residual connections)."""


@dataclass(frozen=True, eq=False)
class ElementwiseAffine:
    """y = x * scale + shift, `scale` and `shift` broadcast against the input shape.

    Normalisation (Sub/Div/Mul/Add by constants) and folded BatchNorm are of this form.
    """

    scale: np.ndarray
    shift: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "scale", _frozen_array(self.scale, "scale"))
        object.__setattr__(self, "shift", _frozen_array(self.shift, "shift"))


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """Inference-mode batch normalisation over axis 0 (channels) of a (C, ...) input."""

    mean: np.ndarray
    var: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    epsilon: float = 1e-5

    def __post_init__(self):
        for name in ("mean", "var", "gamma", "beta"):
            object.__setattr__(self, name, _frozen_array(getattr(self, name), name, 1))
        object.__setattr__(self, "epsilon", float(self.epsilon))

    def as_elementwise(self, ndim: int) -> ElementwiseAffine:
        """The equivalent per-channel ElementwiseAffine for an input with `ndim` axes."""
        scale = self.gamma / np.sqrt(self.var + self.epsilon)
        shift = self.beta - self.mean * scale
        expand = (slice(None),) + (None,) * (ndim - 1)
        return ElementwiseAffine(scale[expand], shift[expand])


@dataclass(frozen=True, eq=False)
class Select:
    """y.flat[j] = x.flat[index[j]] where index[j] >= 0, else fill[j]; y has shape `shape`.

    Exact. Slicing, gathering, padding, the pieces of a concatenation and the windows of a
    pooling layer are of this form (see `decompose.py`).
    """

    index: np.ndarray
    fill: np.ndarray
    shape: tuple[int, ...]

    def __post_init__(self):
        index = np.array(self.index, dtype=np.int64, copy=True).ravel()
        index.setflags(write=False)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "fill", _frozen_array(np.ravel(self.fill), "fill", 1))
        object.__setattr__(self, "shape", _shape(self.shape))
        if self.fill.shape != index.shape or int(np.prod(self.shape)) != index.size:
            raise ValueError(f"Select of shape {self.shape} needs {int(np.prod(self.shape))} indices and fills, "
                             f"got {index.size} and {self.fill.size}")


@dataclass(frozen=True)
class Identity:
    """y = x (ONNX Identity, Dropout at inference)."""


Op = (Input | Affine | Conv2d | ConvTranspose2d | ReLU | Reshape | Transpose | Add | ElementwiseAffine | BatchNorm
      | Select | Identity)

#: Ops that are linear (affine) maps of their inputs: everything except Input and ReLU.
LINEAR_OPS = (Affine, Conv2d, ConvTranspose2d, Reshape, Transpose, Add, ElementwiseAffine, BatchNorm, Select, Identity)


def op_name(op) -> str:
    """A short type name for messages and `optcert info`."""
    return type(op).__name__


def parameter_count(op) -> int:
    """Number of scalar parameters an op carries."""
    return sum(int(np.size(v)) for v in vars(op).values() if isinstance(v, np.ndarray))


__all__ = [
    "Input", "Affine", "Conv2d", "ConvTranspose2d", "ReLU", "Reshape", "Flatten", "Transpose", "Add",
    "ElementwiseAffine", "BatchNorm", "Select", "Identity", "Op", "LINEAR_OPS", "op_name", "parameter_count",
]
