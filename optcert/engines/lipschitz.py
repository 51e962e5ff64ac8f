"""The `lipschitz` engine: a global Lipschitz certificate (PROVED / UNKNOWN, cheap, any network).

For each layer of the (spec-folded) `LayeredNet`, ‖ẑ_k(x) − ẑ_k(x')‖₂ ≤ L_k ‖x − x'‖₂ with
L_0 = 1 and L_k = Σ_j ‖W_kj‖₂ L_j (ReLU is 1-Lipschitz; several sources for residual nets); for
output row r, L_r = Σ_j ‖W_Lj[r]‖₂ L_j — for a robustness row f_y − f_j this is GloRo's per-pair
constant ‖w_y − w_j‖₂ Π_k ‖W_k‖₂ (Leino et al. 2021; the product of spectral norms as in
Szegedy et al. 2014, Tsuzuku et al. 2018). Every spectral norm is a proven upper bound
(`certificates/spectral.py`: Gram matrix + Rump's Cholesky test), never a power-iteration value.

Certificate for a box with centre c and radius vector r (an L∞ ball clipped to the valid range):
every x in it has ‖x − c‖₂ ≤ ‖r‖₂ (the norm inequality ‖δ‖₂ ≤ √n‖δ‖_∞, with the actual radii), so
margin_r(x) ≥ margin_r(c) − L_r ‖r‖₂, with margin_r(c) bounded below by a point-interval enclosure
(rigorous IBP at c) and every product and sum rounded to the safe side. `certified_l2_radius`
gives the largest certified L2 radius around an image instead (margin(x) / L, rounded down).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optcert.bounds.interval import ibp
from optcert.certificates.spectral import norm2_up, power_iteration, spectral_norm_upper
from optcert.certify import EngineOutput
from optcert.checking.evidence import case_entry, evidence, simple_item
from optcert.compiled import CompiledCase
from optcert.ir.layered import LayeredNet
from optcert.spec.problem import VerificationProblem


@dataclass(frozen=True)
class LipschitzOptions:
    """The Lipschitz certificate has no settings (the bounds are rigorous; see module doc)."""


@dataclass(frozen=True)
class LipschitzBounds:
    """Proven L2 Lipschitz bounds: `layers[k]` of ẑ_{k+1} w.r.t. the input, `rows[r]` of each output,
    `spectral[k]` the bound on each weight block's ‖W‖₂ and `estimates[k]` power iteration's σ."""

    layers: tuple[float, ...]
    rows: np.ndarray
    spectral: tuple[tuple[float, ...], ...]
    estimates: tuple[tuple[float, ...], ...]


def _up(x: float) -> float:
    return float(np.nextafter(x, np.inf))


def _weighted_sum_up(norms, lips) -> float:
    """Σ norms_j · lips_j rounded up (all terms ≥ 0)."""
    total = 0.0
    for a, b in zip(norms, lips):
        total = _up(total + _up(a * b))
    return total


def lipschitz_bounds(net: LayeredNet, estimates: bool = True) -> LipschitzBounds:
    """Per-layer and per-output-row L2 Lipschitz bounds of `net` (module doc)."""
    lips = [1.0]
    spectral, est = [], []
    for layer in net.hidden:
        norms = tuple(spectral_norm_upper(w) for w in layer.weights)
        spectral.append(norms)
        est.append(tuple(power_iteration(w) for w in layer.weights) if estimates else ())
        lips.append(_weighted_sum_up(norms, [lips[j] for j in layer.sources]))
    out = net.output
    rows = np.array([_weighted_sum_up([norm2_up(w[r]) for w in out.weights], [lips[j] for j in out.sources])
                     for r in range(out.size)])
    return LipschitzBounds(tuple(lips[1:]), rows, tuple(spectral), tuple(est))


def box_l2_radius(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, float]:
    """The box's centre c and an upper bound on max over the box of ‖x − c‖₂."""
    c = (lo + hi) / 2
    r = np.nextafter(np.maximum(hi - c, c - lo), np.inf)
    return c, norm2_up(r)


def case_lower(cc: CompiledCase, lips: LipschitzBounds) -> np.ndarray:
    """Certified lower bounds on case `cc`'s folded outputs over its box (module doc)."""
    c, rho = box_l2_radius(cc.lo, cc.hi)
    centre = ibp(cc.net, c, c).lower[-1]
    drop = np.nextafter(lips.rows * rho, np.inf)
    return np.nextafter(centre - drop, -np.inf)


def run_lipschitz(problem: VerificationProblem, compiled: list[CompiledCase], options: LipschitzOptions,
                  deadline: float) -> EngineOutput:
    """Certified per-row lower bounds of every case from the global Lipschitz bound."""
    lower, cases = [], []
    for cc in compiled:
        lips = lipschitz_bounds(cc.net)
        lower.append(case_lower(cc, lips))
        cases.append({
            "row_lipschitz": lips.rows.tolist(), "layer_lipschitz": list(lips.layers),
            "spectral_upper": [list(s) for s in lips.spectral], "power_iteration": [list(e) for e in lips.estimates],
            "l2_radius": box_l2_radius(cc.lo, cc.hi)[1]})
    entries = [case_entry(cc.index, [simple_item("trusted", v, why=TRUSTED) if np.isfinite(v) else None
                                     for v in cc.sound(low)]) for cc, low in zip(compiled, lower)]
    return EngineOutput(lower=lower, certificate={"method": "global L2 Lipschitz bound (product of proven spectral "
                                                            "norms), L∞ box through ‖δ‖₂ ≤ ‖r‖₂", "cases": cases,
                                                  "evidence": evidence("ibp", entries)})


TRUSTED = ("global Lipschitz bound: the proven spectral norms (Gram matrix + Cholesky, certificates/spectral.py) "
           "and the product are the engine's, not re-derived by the checker")


def pair_lipschitz(net: LayeredNet, label: int, lips: LipschitzBounds | None = None) -> np.ndarray:
    """Proven L2 Lipschitz bounds of f_label − f_j for every output j (entry `label` is 0), from the
    unfolded net: ‖w_label − w_j‖₂ with the subtraction's rounding (relative u) covered."""
    lips = lipschitz_bounds(net, estimates=False) if lips is None else lips
    hidden = [1.0, *lips.layers]
    out = net.output
    rows = np.zeros(out.size)
    for j in range(out.size):
        if j != label:
            norms = [_up(norm2_up(w[label] - w[j]) * (1 + 2 ** -52)) for w in out.weights]
            rows[j] = _weighted_sum_up(norms, [hidden[s] for s in out.sources])
    return rows


def certified_l2_radius(net: LayeredNet, x: np.ndarray, label: int, lips: LipschitzBounds | None = None) -> float:
    """The largest L2 radius around `x` within which `label` provably stays the strict argmax of
    `net` (0 when it is not the strict argmax at x): min over j ≠ label of
    (f_label − f_j)(x) / L_{label,j}, with the margins from a rigorous point enclosure at x."""
    x = np.asarray(x, dtype=np.float64).ravel()
    enclosure = ibp(net, x, x)
    lo, hi = enclosure.lower[-1], enclosure.upper[-1]
    others = [j for j in range(net.output.size) if j != label]
    margins = np.nextafter(lo[label] - hi[others], -np.inf)
    if np.any(margins <= 0):
        return 0.0
    rows = pair_lipschitz(net, label, lips)[others]
    return float(np.min(np.nextafter(margins / rows, -np.inf)))
