"""Branching rules for branch and bound: which ReLU to split, or which input to bisect.

A rule sees a batch of bounded domains (`Bounded`: their bounds, per-row certified lower bounds
and, when the bounding function provides them, the backward-pass multipliers ν_j on every ReLU
layer's pre-activations and Λ_0 on the input) plus per-row weights saying which rows still matter
(ALL case: the rows not yet proved; ANY case: the row nearest to being proved). It returns one
`Decision` per domain, or None when the domain has nothing left to split (a linear region, which
the coordinator solves exactly).

* **BaBSR** (Bunel et al. 2020, "Branch and bound for piecewise linear neural network
  verification", §5). In our dual form (see bounds/crown.py) an unstable neuron (l < 0 < u) that
  uses the upper chord z ≤ u(ẑ − l)/(u − l) — i.e. whose coefficient Λ on z is negative — gets
  ν = Λ·u/(u − l) and contributes min_t (Λ relu(t) − ν t) = ν·(−l) < 0 to the bound: the chord's
  intercept. Splitting the neuron removes that term, so the score is max(−ν, 0)·(−l), summed over
  the rows that matter. Neurons with ν ≥ 0 (lower relaxation, no intercept) get a small
  tie-breaking score |ν|·u(−l)/(u − l) so that some neuron is always chosen. ν is the one the
  bounding pass actually used (CROWN or the best alpha/beta-CROWN iterate), so no extra pass.
* **widest**: the unstable neuron with the largest triangle height u(−l)/(u − l) (no ν needed).
* **input** (ReluVal/Neurify-style, Wang et al. 2018): bisect the input dimension with the
  largest |Λ_0,d|·width_d (the linear bound's sensitivity to that input, "smear"), or the widest
  one relative to the case box when Λ_0 is not available.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from optcert.bounds.layer_bounds import Bounds


class Split(Enum):
    """What to split: `auto` = input bisection for inputs of ≤ 8 dimensions, ReLUs otherwise."""

    AUTO = "auto"
    RELU = "relu"
    INPUT = "input"


class Rule(Enum):
    """How to choose the ReLU to split (`fsb`: BaBSR's and the widest neurons' top candidates
    re-scored by a look-ahead bound of both children, see search/lookahead.py)."""

    BABSR = "babsr"
    WIDEST = "widest"
    FSB = "fsb"


AUTO_INPUT_DIMS = 8
MIN_RELATIVE_WIDTH = 2.0 ** -30   # below this an input dimension is not bisected again


@dataclass(frozen=True)
class Decision:
    """Split ReLU `index` of layer `layer` (layer ≥ 1), or bisect input `index` (layer = 0)."""

    layer: int
    index: int

    @property
    def is_input(self) -> bool:
        return self.layer == 0


@dataclass
class Bounded:
    """A bounding function's answer for a batch of B domains.

    `bounds[b]` is None when domain b is proved empty. `lower` (B, m) and `key` (B,) are certified
    lower bounds on the folded outputs and on the case margin (an ANY case may have a direct bound
    on max_i m_i that no single row gives). `nus[j]` (B, m, n_j) / `lam0` (B, m, n_0) are the
    multipliers of the bounding pass, when there is one. `points` (B, n_0): a candidate input per
    domain (the relaxation's optimal input), to be evaluated on the real network. `decisions`: the
    branching decision per domain when the bounding function took it (FSB look-ahead), else None.
    """

    bounds: list[Bounds | None]
    lower: np.ndarray
    key: np.ndarray
    nus: dict[int, np.ndarray] | None = None
    lam0: np.ndarray | None = None
    points: np.ndarray | None = None
    decisions: list[Decision | None] | None = None
    evidence: dict | None = None     # what a certificate needs (bounding.bound_crown): CROWN's rows, best iterates


def triangle_height(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """u(−l)/(u − l) on unstable neurons, 0 elsewhere."""
    unstable = (lo < 0) & (hi > 0)
    width = np.where(unstable, hi - lo, 1.0)
    return np.where(unstable, hi * -lo / width, 0.0)


def relu_scores(bounds: Bounds, nus: dict[int, np.ndarray] | None, weights: np.ndarray,
                rule: Rule) -> dict[int, np.ndarray]:
    """Score of every neuron of every ReLU layer (−inf where stable or already split)."""
    scores = {}
    for k in range(1, bounds.depth):
        lo, hi = bounds.layer(k)
        unstable = (lo < 0) & (hi > 0)
        height = triangle_height(lo, hi)
        if rule is not Rule.WIDEST and nus is not None and k in nus:
            nu = nus[k]                                   # (m, n_k)
            intercept = weights @ (np.maximum(-nu, 0.0) * np.where(unstable, -lo, 0.0))
            tie = weights @ np.abs(nu) * height
            s = intercept + 1e-4 * tie + 1e-12 * height
        else:
            s = height
        scores[k] = np.where(unstable, s, -np.inf)
    return scores


def top_candidates(bounds: Bounds, nus: dict[int, np.ndarray] | None, weights: np.ndarray,
                   count: int) -> list[Decision]:
    """Up to `count` best neurons by BaBSR and `count` by triangle height (FSB's filter, De Palma
    et al. 2021), best first, without repeats."""
    out: list[Decision] = []
    for rule in (Rule.BABSR, Rule.WIDEST):
        scores = relu_scores(bounds, nus, weights, rule)
        if not scores:
            break
        layers = np.concatenate([np.full(v.size, k) for k, v in scores.items()])
        flat = np.concatenate(list(scores.values()))
        for j in np.argsort(-flat, kind="stable")[:count]:
            decision = Decision(int(layers[j]), int(j - np.searchsorted(layers, layers[j])))
            if flat[j] > -np.inf and decision not in out:
                out.append(decision)
    return out


def choose_relu(bounds: Bounds, nus: dict[int, np.ndarray] | None, weights: np.ndarray,
                rule: Rule) -> Decision | None:
    """The best-scoring unstable neuron, or None if every neuron is stable or split."""
    best, decision = -np.inf, None
    for k, s in relu_scores(bounds, nus, weights, rule).items():
        if s.size and np.max(s) > best:
            best, decision = float(np.max(s)), Decision(k, int(np.argmax(s)))
    return decision


def choose_input(bounds: Bounds, root: Bounds, lam0: np.ndarray | None, weights: np.ndarray) -> Decision | None:
    """The input dimension to bisect (see module doc), or None when every one is too narrow."""
    lo, hi = bounds.layer(0)
    width = hi - lo
    root_width = root.upper[0] - root.lower[0]
    relative = np.where(root_width > 0, width / np.where(root_width > 0, root_width, 1.0), 0.0)
    allowed = relative > MIN_RELATIVE_WIDTH
    if not allowed.any():
        return None
    score = relative.copy()
    if lam0 is not None:
        smear = (weights @ np.abs(lam0)) * width
        if np.max(smear[allowed], initial=0.0) > 0:
            score = smear + 1e-9 * relative
    score = np.where(allowed, score, -np.inf)
    return Decision(0, int(np.argmax(score)))


def use_input_split(split: Split, n_inputs: int) -> bool:
    return split is Split.INPUT or (split is Split.AUTO and n_inputs <= AUTO_INPUT_DIMS)


def decide(bounded: Bounded, index: int, weights: np.ndarray, root: Bounds, split: Split,
           rule: Rule) -> Decision | None:
    """The decision for domain `index` of `bounded` (None: nothing left to split)."""
    bounds = bounded.bounds[index]
    assert bounds is not None, "an empty domain is pruned before branching"
    if use_input_split(split, bounds.lower[0].size):
        lam0 = None if bounded.lam0 is None else bounded.lam0[index]
        decision = choose_input(bounds, root, lam0, weights)
        if decision is not None:
            return decision
    nus = None if bounded.nus is None else {k: v[index] for k, v in bounded.nus.items()}
    return choose_relu(bounds, nus, weights, rule)


def children(bounds: Bounds, decision: Decision) -> tuple[Bounds, Bounds]:
    """The two sub-domains of `decision` (ReLU: inactive, active; input: lower, upper half)."""
    if not decision.is_input:
        return bounds.split(decision.layer, decision.index)
    lo, hi = bounds.layer(0)
    d = decision.index
    mid = lo[d] + (hi[d] - lo[d]) / 2.0
    hi_left, lo_right = hi.copy(), lo.copy()
    hi_left[d] = mid
    lo_right[d] = mid
    return bounds.with_layer(0, lo, hi_left), bounds.with_layer(0, lo_right, hi)


def first_changed_layer(decision: Decision) -> int:
    """Bounds of layers ≤ this index (other than the split itself) stay valid in the children;
    layers from the returned index on should be recomputed."""
    return 1 if decision.is_input else decision.layer + 1


def row_weights(sound_lower: np.ndarray, any_case: bool) -> np.ndarray:
    """Which rows the branching should serve: ALL — those not yet proved; ANY — the best row."""
    if any_case:
        w = np.zeros_like(sound_lower)
        w[int(np.argmax(sound_lower))] = 1.0
        return w
    w = (sound_lower <= 0).astype(np.float64)
    return w if w.any() else np.ones_like(sound_lower)
