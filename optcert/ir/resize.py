"""Resizing (ONNX Resize / Upsample, torch interpolate / nn.Upsample) written with the graph's ops.

Nearest-neighbour resizing copies elements: one `Select`. Linear and cubic resizing are separable
and linear: each output element is Σ_t w_t · x[i_t] over at most 2 (linear) or 4 (cubic) taps per
resized axis, so the layer is a sum of `Select`s each scaled elementwise (`ElementwiseAffine`),
exact up to the rounding of the interpolation weights (as for any folded weight). Coordinates
follow the ONNX operator spec (Resize, opset 11–19): an output index x_r is mapped to

    half_pixel:            (x_r + 0.5) / scale − 0.5
    pytorch_half_pixel:    the same when the output axis is longer than 1, else 0
    align_corners:         x_r · (n_in − 1) / (n_out − 1)   (0 when n_out = 1)
    asymmetric:            x_r / scale
    tf_half_pixel_for_nn:  (x_r + 0.5) / scale

then rounded (nearest: round_prefer_floor, round_prefer_ceil, floor, ceil) or interpolated
(linear: between floor and floor + 1, edges clamped; cubic: Keys' kernel with coefficient a,
edges clamped or, with exclude_outside, dropped and the weights renormalised).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import Enum
from typing import Sequence

import numpy as np

from optcert.ir import ops as O
from optcert.ir.decompose import AddNode


class ResizeMode(Enum):
    NEAREST = "nearest"
    LINEAR = "linear"
    CUBIC = "cubic"


class Coordinates(Enum):
    HALF_PIXEL = "half_pixel"
    PYTORCH_HALF_PIXEL = "pytorch_half_pixel"
    ALIGN_CORNERS = "align_corners"
    ASYMMETRIC = "asymmetric"
    TF_HALF_PIXEL_FOR_NN = "tf_half_pixel_for_nn"


class Rounding(Enum):
    ROUND_PREFER_FLOOR = "round_prefer_floor"
    ROUND_PREFER_CEIL = "round_prefer_ceil"
    FLOOR = "floor"
    CEIL = "ceil"


@dataclass(frozen=True)
class Resize:
    """How to resize: the interpolation, the coordinate mapping and (nearest) the rounding."""

    mode: ResizeMode = ResizeMode.NEAREST
    coordinates: Coordinates = Coordinates.HALF_PIXEL
    rounding: Rounding = Rounding.ROUND_PREFER_FLOOR
    cubic_a: float = -0.75
    exclude_outside: bool = False
    #: coordinates in float64 (torch in double) rather than float32 (onnxruntime, torch in float)
    exact_coordinates: bool = False


def source_coordinates(n_in: int, n_out: int, scale: float, coordinates: Coordinates,
                       exact: bool = False) -> np.ndarray:
    """The input coordinate each of the `n_out` output positions reads, before rounding; computed
    in float32 as onnxruntime does (so nearest-neighbour ties fall the same way), or float64."""
    f: type[np.floating] = np.float64 if exact else np.float32
    x: np.ndarray = np.arange(n_out).astype(f)
    s = f(scale)
    if coordinates is Coordinates.ALIGN_CORNERS:
        c = x * f(n_in - 1) / f(n_out - 1) if n_out > 1 else np.zeros(n_out, f)
    elif coordinates is Coordinates.ASYMMETRIC:
        c = x / s
    elif coordinates is Coordinates.TF_HALF_PIXEL_FOR_NN:
        c = (x + f(0.5)) / s
    elif coordinates is Coordinates.PYTORCH_HALF_PIXEL and n_out <= 1:
        c = np.zeros(n_out, f)
    else:
        c = (x + f(0.5)) / s - f(0.5)
    return c.astype(np.float64)


def _rounded(c: np.ndarray, rounding: Rounding) -> np.ndarray:
    if rounding is Rounding.FLOOR:
        return np.floor(c)
    if rounding is Rounding.CEIL:
        return np.ceil(c)
    half = c - np.floor(c) == 0.5
    near = np.floor(c + 0.5)
    return np.where(half, np.floor(c) if rounding is Rounding.ROUND_PREFER_FLOOR else np.ceil(c), near)


def _cubic(d: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel at distances d (Keys 1981; ONNX Resize's cubic mode)."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def axis_taps(n_in: int, n_out: int, scale: float, how: Resize) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per output position of one axis, the (input index, weight) taps: a list of arrays pairs,
    each of length `n_out`; the output is Σ_t weight_t · x[index_t]."""
    c = source_coordinates(n_in, n_out, scale, how.coordinates, how.exact_coordinates)
    if how.mode is ResizeMode.NEAREST:
        idx = np.clip(_rounded(c, how.rounding), 0, n_in - 1).astype(np.int64)
        return [(idx, np.ones(n_out))]
    if how.mode is ResizeMode.LINEAR:
        c = np.clip(c, 0, n_in - 1)
        lo = np.floor(c)
        r = c - lo
        lo_i = lo.astype(np.int64)
        return [(lo_i, 1.0 - r), (np.minimum(lo_i + 1, n_in - 1), r)]
    lo = np.floor(c)
    r = c - lo
    taps = []
    for off in (-1, 0, 1, 2):
        idx = lo.astype(np.int64) + off
        weight = _cubic(r - off, how.cubic_a)
        if how.exclude_outside:
            weight = np.where((idx < 0) | (idx >= n_in), 0.0, weight)
        taps.append((np.clip(idx, 0, n_in - 1), weight))
    if how.exclude_outside:
        total = sum(w for _, w in taps)
        taps = [(i, w / total) for i, w in taps]
    return taps


def output_size(n_in: int, scale: float) -> int:
    """ONNX's output length for an input length and a scale: ⌊n_in · scale⌋, the product taken in
    float32 as onnxruntime does."""
    return int(np.floor(np.float32(scale) * np.float32(n_in)))


def _taps(shape, out_shape, scales, how: Resize):
    """Per resized axis, its taps (an axis of equal length and scale 1 is left alone; one of equal
    length and another scale is an error: the spec interpolates it, onnxruntime copies it)."""
    shape, out_shape = tuple(int(v) for v in shape), tuple(int(v) for v in out_shape)
    if len(shape) != len(out_shape) or len(scales) != len(shape) or min(out_shape, default=1) < 1:
        raise ValueError(f"cannot resize {shape} to {out_shape}")
    per_axis = []
    if any(n_in == n_out and s != 1.0 for n_in, n_out, s in zip(shape, out_shape, scales)):
        raise ValueError(f"resizing {shape} to {out_shape} with scales {list(scales)}: an axis keeps its "
                         "length under a scale other than 1 (the ONNX spec and onnxruntime disagree there)")
    for n_in, n_out, s in zip(shape, out_shape, scales):
        if n_in == n_out and s == 1.0:          # left alone in every mode (as onnxruntime does)
            per_axis.append([(np.arange(n_in), np.ones(n_in))])
        else:
            per_axis.append([t for t in axis_taps(n_in, n_out, float(s), how) if np.any(t[1] != 0)])
    return shape, out_shape, per_axis


def resized(x: np.ndarray, out_shape: Sequence[int], scales: Sequence[float], how: Resize) -> np.ndarray:
    """x (one example, no batch axis) resized, in float64 numpy: one axis at a time."""
    _, _, per_axis = _taps(x.shape, out_shape, scales, how)
    for axis, taps in enumerate(per_axis):
        moved = np.moveaxis(x, axis, 0)
        expand = (slice(None),) + (None,) * (moved.ndim - 1)
        x = np.moveaxis(sum(w[expand] * moved[idx] for idx, w in taps), 0, axis)
    return x


def resize(add: AddNode, label: str, x: str, shape: Sequence[int], out_shape: Sequence[int],
           scales: Sequence[float], how: Resize) -> str:
    """Node x of (IR) `shape` resized to `out_shape`, `scales[i]` the scale of axis i (used by the
    coordinate mapping): a `Select` (nearest) or a sum of scaled `Select`s (linear, cubic)."""
    shape, out_shape, per_axis = _taps(shape, out_shape, scales, how)
    out = None
    for i, combo in enumerate(itertools.product(*per_axis)):
        grids = np.meshgrid(*[idx for idx, _ in combo], indexing="ij")
        index = np.ravel_multi_index(tuple(grids), shape).ravel()
        weight = np.ones(out_shape)
        for axis, (_, w) in enumerate(combo):
            weight = weight * w.reshape((-1,) + (1,) * (len(shape) - 1 - axis))
        piece = add(f"{label}/tap{i}", O.Select(index, np.zeros(index.size), tuple(out_shape)), [x])
        if not np.all(weight == 1.0):
            piece = add(f"{label}/w{i}", O.ElementwiseAffine(weight, np.array(0.0)), [piece])
        out = piece if out is None else add(f"{label}/add{i}", O.Add(), [out, piece])
    assert out is not None
    return out
