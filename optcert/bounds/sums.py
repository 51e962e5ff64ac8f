"""The parts of one backward bound pass (crown.py) as float64 sums with their rounding allowance.

`Sums` carries the coefficients Λ_j that reach each layer, the running total of the bound's
parts and the allowance that covers their rounding (rounding.py: one matrix–vector product in
absolute values per matrix product). Its steps: `push` (ν_k through layer k's weights),
`select` (the rows ±e_i of chosen neurons, gathered), `box` (the centred input box) or `front`
(the forward linear functions of a layer, bounds/forward.py, instead of the layers below it),
and `lower` (the certified total). See crown.py for the mathematics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from optcert.bounds.compact import allowance_kept, bias_kept, centre_kept, sparse_kept, weight_kept
from optcert.bounds.relaxation import allowance, centre_value, input_centre
from optcert.bounds.rounding import ETA, U64, gamma, nudge_down
from optcert.bounds.torch_net import DomainBatch, TorchNet


@dataclass(frozen=True)
class Selection:
    """Objective rows [e_idx; −e_idx] per domain: idx (B, U) neuron indices of the target layer,
    `valid` (B, U) False on padding rows (their bound is meaningless)."""

    idx: Any
    valid: Any


@dataclass(frozen=True)
class Front:
    """Forward linear functions of ẑ_layer over the centred input offset δ (|δ| ≤ r, bounds/forward.py):
    T (B, n_0 + 1, 2n) = [L | U] (coefficients, then the constant, in the compute precision),
    e (B, 2n) float64 their error bounds, M (B, 2n) their magnitudes |A| r + |a|."""

    layer: int
    T: Any
    e: Any
    M: Any

    def take(self, idx) -> "Front":
        return Front(self.layer, self.T[idx], self.e[idx], self.M[idx])


class Sums:
    """The bound's parts as float64 (B, m) sums, and the allowance (B, m) for their rounding."""

    def __init__(self, tn: TorchNet, domains: DomainBatch, target: int, keep: Mapping[int, Any]):
        self.tn, self.domains, self.target = tn, domains, target
        self.keep = keep            # ReLU layer → its kept neurons (compact.py), None: all
        self.lam: dict[int, Any] = {}
        self.total: Any = 0.0
        self.allow: Any = 0.0

    def add(self, part) -> None:
        self.total = self.total + part.double()

    def charge(self, absnu, q) -> None:
        """allowance += |ν| · q (a matrix–vector product per domain)."""
        import torch

        with torch.no_grad():
            if absnu.ndim == 2:   # one objective for every domain: (m, n) · (B, n)ᵀ
                self.allow = self.allow + (q @ absnu.T).double()
            else:
                self.allow = self.allow + torch.bmm(absnu, q[..., None])[..., 0].double()

    def push(self, k: int, nu, closed: bool = True, charged: bool = False) -> None:
        """Send ν_k (B, m, n_k) — or (m, n_k) shared by every domain — through layer k (ν_k over
        layer k's kept neurons below the target)."""
        import torch

        rows = self.keep.get(k) if k != self.target else None
        for s, j in enumerate(self.tn.sources[k - 1]):
            sparse = sparse_kept(self.tn, self.domains, k, s, rows, self.keep.get(j))
            if sparse is not None:
                contrib = (nu.reshape(-1, nu.shape[-1]) @ sparse).reshape(nu.shape[:-1] + (sparse.shape[1],))
            else:
                contrib = nu @ weight_kept(self.tn, self.domains, k, s, rows, self.keep.get(j))
            self.lam[j] = self.lam[j] + contrib if j in self.lam else contrib
        if 0 in self.tn.sources[k - 1]:       # the input is centred: ν_k · (W_k0 c + b_k)
            centre = centre_kept(self.tn, self.domains, k, rows).to(nu.dtype)
            self.add(centre @ nu.T if nu.ndim == 2 else torch.bmm(nu, centre[..., None])[..., 0])
        else:
            self.add(nu @ bias_kept(self.tn, k, rows))
        if not charged:
            q = allowance_kept(self.tn, self.domains, k, k != self.target, closed, rows)
            self.charge(nu.detach().abs(), q)

    def select(self, sel: Selection, closed: bool) -> None:
        """Push the rows [e_idx; −e_idx] of the target layer: rows of W gathered, not multiplied."""
        import torch

        k, valid = self.target, sel.valid.to(self.tn.precision.torch())
        for s, j in enumerate(self.tn.sources[k - 1]):
            rows = weight_kept(self.tn, self.domains, k, s, None, self.keep.get(j))[sel.idx] * valid[..., None]
            self.lam[j] = torch.cat([rows, -rows], dim=1)
        if 0 in self.tn.sources[k - 1]:
            bias = torch.gather(centre_value(self.tn, self.domains, k), 1, sel.idx) * valid
        else:
            bias = self.tn.biases[k - 1][sel.idx] * valid
        self.add(torch.cat([bias, -bias], dim=1))
        q = torch.gather(allowance(self.tn, self.domains, k, False, closed), 1, sel.idx) * valid
        self.allow = self.allow + torch.cat([q, q], dim=1).double()

    def box(self) -> None:
        """min over the centred input box of Λ_0 (x − c) = −|Λ_0| r (the centre went in at push)."""
        import torch

        lam = self.lam.pop(0)
        r = input_centre(self.tn, self.domains)[1]
        size = lam.abs_() if not lam.requires_grad else lam.abs()   # Λ_0 is not needed after
        if lam.ndim == 2:
            self.add(-(r @ size.T))
        else:
            self.add(-torch.bmm(size, r[..., None])[..., 0])

    def front(self, nu, front: Front) -> None:
        """min over the box of ν·ẑ_s from ẑ_s ∈ [L(δ) − e_L, U(δ) + e_U]: ν⁺ L + ν⁻ U, one
        product with [L | U]; its rounding is at most γ_N |ν|·M (N = 2n + n_0 + 8), doubled to
        cover the products that form it, and the error terms ν⁺ e_L + |ν⁻| e_U are subtracted."""
        import torch

        n, n0 = front.e.shape[1] // 2, front.T.shape[1] - 1
        pos = torch.relu(nu)
        both = torch.cat([pos, nu - pos], dim=-1)                               # (B, m, 2n)
        out = torch.matmul(both, front.T.transpose(1, 2))                        # (B, m, n0 + 1)
        r = input_centre(self.tn, self.domains)[1]
        spread = torch.bmm(out[..., :n0].abs(), r[..., None])[..., 0]
        self.add(out[..., n0].double() - spread.double())
        with torch.no_grad():
            e = front.e.to(torch.float64)
            absb = both.detach().abs()
            errs = torch.bmm(absb[..., :n].double(), e[:, :n, None])[..., 0] + \
                torch.bmm(absb[..., n:].double(), e[:, n:, None])[..., 0]
            g = gamma(2 * n + n0 + 8, self.tn.precision.unit_roundoff)
            size = torch.bmm(absb, front.M[..., None].to(absb.dtype))[..., 0].double()
            self.allow = self.allow + errs + size * (2 * g * (1 + 4 * g))

    def lower(self):
        """Total less the allowance and the underflow term, one ulp down."""
        sizes = self.tn.sizes()
        ops = 8 * sum(sizes) * max(sizes) * (len(sizes) + 2)
        slack = self.allow * (1 + 16 * len(sizes) * U64) + ops * ETA[self.tn.precision]
        return nudge_down(self.total - slack)


