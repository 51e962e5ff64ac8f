"""A-priori rounding-error allowances for the torch bound kernels (float32 or float64).

Every kernel computes in one precision with unit roundoff u and bounds its error per matrix
product, never elementwise: |fl(Σ_i a_i b_i) − Σ_i a_i b_i| ≤ γ_n Σ_i |a_i b_i|, γ_n = nu/(1 − nu),
for any summation order and with or without FMA (Higham 2002, *Accuracy and Stability of
Numerical Algorithms*, §3.1). A product's total error is therefore bounded by γ_n times the same
product taken in absolute values, which the kernels evaluate as a matrix–*vector* product
(|ν| · (|W| s) rather than (|ν| |W|) · s), so the allowance costs a small fraction of the product
it covers. Gradual underflow adds at most `ETA` (half the smallest subnormal) per operation.

`nudge_down` / `nudge_up` step a float64 result one ulp outward while keeping the autograd graph
(the step is a detached constant), so certified bounds stay differentiable.
"""
from __future__ import annotations

import numpy as np

from optcert.precision import Precision

ETA = {Precision.FLOAT32: 2.0 ** -150, Precision.FLOAT64: 2.0 ** -1075}
U64 = 2.0 ** -53


def gamma(n: int, u: float) -> float:
    """γ_n = n u / (1 − n u) (Higham 2002, §3.1); +inf when n u ≥ 1."""
    return n * u / (1 - n * u) if n * u < 1 else float("inf")


def nudge_down(x):
    """x stepped one ulp towards −∞ (float64 tensor; the autograd graph is kept)."""
    import torch

    d = x.detach()
    return x + (torch.nextafter(d, torch.full_like(d, -np.inf)) - d)


def nudge_up(x):
    """x stepped one ulp towards +∞ (float64 tensor; the autograd graph is kept)."""
    import torch

    d = x.detach()
    return x + (torch.nextafter(d, torch.full_like(d, np.inf)) - d)


def to_precision_outward(lo, hi, precision: Precision):
    """(lo, hi) float64 tensors converted to `precision`, rounded outward so they still enclose
    [lo, hi]; differentiable (the correction is a detached constant)."""
    import torch

    dt = precision.torch()
    if dt == torch.float64:
        return lo, hi
    lo32, hi32 = lo.to(dt), hi.to(dt)
    l, h = lo32.detach(), hi32.detach()
    low_fix = torch.where(l.double() > lo.detach(), torch.nextafter(l, torch.full_like(l, -np.inf)) - l,
                          torch.zeros_like(l))
    high_fix = torch.where(h.double() < hi.detach(), torch.nextafter(h, torch.full_like(h, np.inf)) - h,
                           torch.zeros_like(h))
    return lo32 + low_fix, hi32 + high_fix
