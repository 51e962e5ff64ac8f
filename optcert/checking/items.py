"""Re-deriving one case's evidence items (checking/evidence.py) with the checker's own
intermediate bounds: each item's value is recomputed and must equal the value it states to within
rounding (`agrees`), so a changed multiplier, weight or bound shows."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from optcert.checking.arrays import unpack
from optcert.checking.counterexample import zero_rule
from optcert.checking.crown import Recipe, intermediate
from optcert.checking.dual import adaptive, margin_bound, stored
from optcert.checking.evidence import normalised
from optcert.checking.interval import affine
from optcert.checking.net import CheckNet
from optcert.spec.problem import Case

AGREE = 1e-8   # |re-derived − stated| ≤ AGREE·scale + 1e-12(1 + |stated|): rounding only, never a tamper


class EvidenceError(ValueError):
    """An item is malformed (unknown kind, wrong sizes, undecodable arrays)."""


@dataclass(frozen=True)
class Derived:
    """A re-derived lower bound, its scale (Σ|parts|, for agreement) and whether only a solver
    vouches for it (`trusted`: value is then the stated one, unverified)."""

    value: float
    scale: float
    trusted: bool = False


def agrees(derived: Derived, stated: float) -> bool:
    if not np.isfinite(stated) or not np.isfinite(derived.value):
        return bool(stated == derived.value)
    return abs(derived.value - stated) <= AGREE * derived.scale + 1e-12 * (1 + abs(stated))


class CaseEvidence:
    """Intermediate bounds of one case, per recipe, computed once (layers 0..L−1, and L)."""

    def __init__(self, net: CheckNet, case: Case):
        self.net, self.case = net, case
        self._bounds: dict[Recipe, tuple[list, list]] = {}

    def bounds(self, recipe: Recipe) -> tuple[list, list]:
        if recipe not in self._bounds:
            lo, hi = self.case.box.lo[None], self.case.box.hi[None]
            lower, upper = intermediate(self.net, recipe, lo, hi)
            out = affine(self.net, self.net.depth, lower, upper)
            self._bounds[recipe] = (lower + [out[0]], upper + [out[1]])
        return self._bounds[recipe]

    def evaluate(self, item: dict, row: int | None, default_recipe: str) -> Derived:
        """The item's re-derived bound on m_row (row item) or on max_i m_i (clause item)."""
        kind = item.get("kind")
        if kind not in EVALUATORS:
            raise EvidenceError(f"unknown evidence kind {kind!r}")
        return EVALUATORS[kind](self, item, row, default_recipe)


def _recipe(item: dict, default: str) -> Recipe:
    try:
        return Recipe(item.get("recipe", default))
    except ValueError:
        raise EvidenceError(f"unknown intermediate-bound recipe {item.get('recipe', default)!r}") from None


def _weights(ev: CaseEvidence, item: dict, row: int | None) -> np.ndarray:
    rows = ev.case.spec.rows
    if "weights" in item:
        w = unpack(item["weights"])
        if w.shape != (rows,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
            raise EvidenceError(f"weights must be {rows} non-negative numbers, not all zero")
        return w
    if row is None:
        raise EvidenceError("a clause item needs weights over the case's rows")
    return np.eye(rows)[row]


def _run(ev: CaseEvidence, item: dict, row: int | None, recipe: Recipe, rule: Callable) -> Derived:
    w = _weights(ev, item, row)
    lower, upper = ev.bounds(recipe)
    low, scale = margin_bound(ev.net, lower, upper, ev.case.spec.C, ev.case.spec.d, w[None], rule)
    return Derived(normalised(float(low[0, 0]), w), float(scale[0, 0]))


def _ibp(ev: CaseEvidence, item: dict, row: int | None, default: str) -> Derived:
    return _run(ev, item, row, Recipe.IBP, zero_rule)


def _crown(ev: CaseEvidence, item: dict, row: int | None, default: str) -> Derived:
    recipe = _recipe(item, default)
    return _run(ev, item, row, recipe, adaptive(recipe is Recipe.FASTLIN))


def _dual(ev: CaseEvidence, item: dict, row: int | None, default: str) -> Derived:
    sizes = ev.net.sizes()
    nus: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for key, entry in (item.get("nu") or {}).items():
        j = int(key)
        if not 1 <= j < ev.net.depth:
            raise EvidenceError(f"multipliers for layer {j}, which is not a ReLU layer")
        mask, values = unpack(entry["mask"]).astype(bool), unpack(entry["values"])
        if mask.shape != (sizes[j],) or values.shape != (int(mask.sum()),) or not np.all(np.isfinite(values)):
            raise EvidenceError(f"layer {j}: mask of {mask.size} neurons ({sizes[j]} expected) with "
                                f"{values.size} finite values ({int(mask.sum())} expected)")
        full = np.zeros(sizes[j])
        full[mask] = values
        nus[j] = (mask, full)
    return _run(ev, item, row, _recipe(item, default), stored(nus))


def _trusted(ev: CaseEvidence, item: dict, row: int | None, default: str) -> Derived:
    return Derived(float(item.get("bound", -np.inf)), 0.0, trusted=True)


def _sdp(ev: CaseEvidence, item: dict, row: int | None, default: str) -> Derived:
    from optcert.checking.sdp import evaluate_sdp

    return evaluate_sdp(ev, item, row, _recipe(item, default))


EVALUATORS: dict[str, Callable[..., Any]] = {"ibp": _ibp, "crown": _crown, "dual": _dual, "trusted": _trusted,
                                             "sdp": _sdp}
