"""Re-deriving one case's evidence items (checking/evidence.py) with the checker's own
intermediate bounds: each item's value is recomputed and must equal the value it states to within
rounding (`agrees`), so a changed multiplier, weight or bound shows."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optcert.checking.arrays import unpack
from optcert.checking.counterexample import zero_rule
from optcert.checking.crown import Recipe, intermediate
from optcert.checking.derived import Derived, EvidenceError
from optcert.checking.dual import adaptive, margin_bound, stored
from optcert.checking.evidence import normalised
from optcert.checking.interval import affine
from optcert.checking.net import CheckNet
from optcert.spec.problem import Case

__all__ = ["AGREE", "CaseBound", "CaseEvidence", "Derived", "EvidenceError", "agrees", "evaluate_with",
           "with_output"]

AGREE = 1e-9   # |re-derived − stated| ≤ AGREE·scale + 1e-12(1 + |stated|): rounding only, never a tamper


@dataclass
class CaseBound:
    """Re-derived bounds of one case: per row (None: no evidence) and on the case margin, the best
    one (`case`, possibly resting on a solver) and the best re-checked one (`checked`)."""

    rows: list[Derived | None]
    case: Derived | None
    checked: float = -np.inf


def agrees(derived: Derived, stated: float) -> bool:
    if not np.isfinite(stated) or not np.isfinite(derived.value):
        return bool(stated == derived.value)
    return abs(derived.value - stated) <= AGREE * derived.scale + 1e-12 * (1 + abs(stated))


class CaseEvidence:
    """Intermediate bounds of one case, per recipe, computed once (layers 0..L−1, and L)."""

    def __init__(self, net: CheckNet, case: Case):
        self.net, self.case = net, case
        self._bounds: dict[Recipe, tuple[list, list]] = {}

    def given(self, recipe: Recipe, lower: list, upper: list) -> None:
        """Use these bounds (layers 0..L−1, one domain) for `recipe`: how an engine evaluates its own
        items over its own bounds when it states them."""
        self._bounds[recipe] = with_output(self.net, [np.asarray(a)[None] for a in lower],
                                           [np.asarray(a)[None] for a in upper])

    def bounds(self, recipe: Recipe) -> tuple[list, list]:
        if recipe not in self._bounds:
            lo, hi = self.case.box.lo[None], self.case.box.hi[None]
            self._bounds[recipe] = with_output(self.net, *intermediate(self.net, recipe, lo, hi))
        return self._bounds[recipe]

    def evaluate(self, item: dict, row: int | None, default_recipe: str) -> Derived:
        """The item's re-derived bound on m_row (row item) or on max_i m_i (clause item)."""
        kind = item.get("kind")
        if kind not in EVALUATORS:
            raise EvidenceError(f"unknown evidence kind {kind!r}")
        if kind == "trusted":
            stated = float(item.get("bound", -np.inf))   # scale |stated|: the fold error's rounding, no more
            return Derived(stated, abs(stated) if np.isfinite(stated) else 0.0, trusted=True)
        recipe = Recipe.IBP if kind == "ibp" else _recipe(item, default_recipe)
        if kind == "sdp":
            from optcert.checking.sdp import evaluate_sdp

            return evaluate_sdp(self.net, self.case, item, row, self.bounds(recipe))
        return evaluate_with(self.net, self.case, item, row, *self.bounds(recipe))


def with_output(net: CheckNet, lower: list, upper: list) -> tuple[list, list]:
    """Bounds on layers 0..L−1 with interval bounds on the output layer L appended."""
    out = affine(net, net.depth, lower, upper)
    return list(lower) + [out[0]], list(upper) + [out[1]]


def evaluate_with(net: CheckNet, case: Case, item: dict, row: int | None, lower: list, upper: list) -> Derived:
    """A dual, crown or ibp item's bound over given bounds (layers 0..L, one domain)."""
    kind = item.get("kind")
    if kind == "ibp":
        rule = zero_rule
    elif kind == "crown":
        rule = adaptive(item.get("recipe") == Recipe.FASTLIN.value)
    elif kind == "dual":
        rule = stored(_nus(net, item))
    else:
        raise EvidenceError(f"a {kind!r} item cannot be evaluated here")
    w = np.zeros(case.spec.rows) if item.get("empty") else _weights(case, item, row)
    low, scale = margin_bound(net, lower, upper, case.spec.C, case.spec.d, w[None], rule)
    value = float(low[0, 0])
    return Derived(value if item.get("empty") else normalised(value, w), float(scale[0, 0]))


def _recipe(item: dict, default: str) -> Recipe:
    try:
        return Recipe(item.get("recipe", default))
    except ValueError:
        raise EvidenceError(f"unknown intermediate-bound recipe {item.get('recipe', default)!r}") from None


def _weights(case: Case, item: dict, row: int | None) -> np.ndarray:
    rows = case.spec.rows
    if "weights" in item:
        w = unpack(item["weights"])
        if w.shape != (rows,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
            raise EvidenceError(f"weights must be {rows} non-negative numbers, not all zero")
        return w
    if row is None or not 0 <= row < rows:
        raise EvidenceError("a clause item needs weights over the case's rows")
    return np.eye(rows)[row]


def _nus(net: CheckNet, item: dict) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    sizes = net.sizes()
    nus: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for key, entry in (item.get("nu") or {}).items():
        j = int(key)
        if not 1 <= j < net.depth:
            raise EvidenceError(f"multipliers for layer {j}, which is not a ReLU layer")
        mask, values = unpack(entry["mask"]).astype(bool), unpack(entry["values"])
        if mask.shape != (sizes[j],) or values.shape != (int(mask.sum()),) or not np.all(np.isfinite(values)):
            raise EvidenceError(f"layer {j}: mask of {mask.size} neurons ({sizes[j]} expected) with "
                                f"{values.size} finite values ({int(mask.sum())} expected)")
        full = np.zeros(sizes[j])
        full[mask] = values
        nus[j] = (mask, full)
    return nus


EVALUATORS = ("ibp", "crown", "dual", "trusted", "sdp")
