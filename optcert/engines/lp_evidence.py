"""Evidence for `optcert check` from an LP triangle solve (lowerings/lp_triangle.py): its row duals
on the affine rows ẑ_k − W_k z − b_k = 0 are multipliers ν_k of the Lagrangian bound
(checking/dual.py), and its duals on the epigraph rows t ≥ m_i (an ANY clause) are the weights μ.

For the triangle LP this bound is never below the LP's Neumaier–Shcherbina bound from the same
duals: it keeps the other constraints inside, and min over the ReLU graph ≥ min over its triangle.
"""
from __future__ import annotations

import numpy as np

from optcert.checking.arrays import pack
from optcert.checking.evidence import dual_items
from optcert.compiled import CompiledCase


def lp_item(cc: CompiledCase, bounds, lowered, row_duals: np.ndarray, recipe: str,
            empty: bool = False) -> dict | None:
    """The dual item of one LP solve over `bounds` (its lowering `lowered`, row duals y); None when
    an ANY clause's epigraph duals are all zero (its bound then came from the box of t: the rows'
    own bounds, which their items hold). With `empty`, y are a phase-1 LP's duals proving the LP
    infeasible: an emptiness item (no objective; a positive bound means no input is in the domain)."""
    info = lowered.info
    y = np.asarray(row_duals, dtype=np.float64)
    y = np.where(np.isfinite(y), y, 0.0)
    nus, masks = {}, {}
    for k, cols in info["layers"].items():
        held = np.flatnonzero(cols.zhat >= 0)
        nu = np.zeros(cols.z.size)
        nu[held] = y[info["rows"][f"affine{k}"]]
        nus[k], masks[k] = nu[None], cols.zhat >= 0
    spec = cc.case.spec
    weights = np.zeros(spec.rows)
    rows = list(info["objective"].rows)
    if not empty:
        weights[rows] = 1.0 if len(rows) == 1 else np.maximum(y[info["rows"]["epigraph"]], 0.0)
        if not np.any(weights > 0):
            return None
    L = len(cc.net.layers)
    item = dual_items(cc.base, list(bounds.lower[:L]), list(bounds.upper[:L]), spec.C, spec.d, nus,
                      weights[None], masks)[0]
    item["recipe"] = recipe
    if len(rows) > 1 and not empty:   # a clause item always names its weights, even a single one
        item["weights"] = pack(weights)
    return item


def tightened_item(cc: CompiledCase, bounds, row: int, recipe: str) -> dict:
    """The item for row `row`'s bound from the tightened bounds' output layer: IBP's where IBP gave
    it, else the checker's CROWN by `recipe` (not re-derivable after per-neuron LP/MILP tightening)."""
    value = float(cc.sound(bounds.lower[-1])[row])
    if cc.ibp.lower[-1][row] >= bounds.lower[-1][row]:
        return {"kind": "ibp", "bound": value}
    return {"kind": "crown", "bound": value, "recipe": recipe}


_RECIPES = {"ibp": "ibp", "crown": "crown", "alpha-crown": "crown"}


class LinearEvidence:
    """The evidence section of an lp/milp/sdp/bm run, kept up to date row by row: each row (and an
    ANY case's clause) holds the item with the best bound so far."""

    def __init__(self, compiled: list[CompiledCase]):
        self.entries: list[dict] = [{"case": cc.index, "rows": [None] * cc.case.spec.rows} for cc in compiled]

    def start(self, cc: CompiledCase, bounds, level: str) -> None:
        """The rows' items from the tightened bounds' output layer (tightening `level`)."""
        self.bounds, self.level = bounds, level
        self.entries[cc.index]["rows"] = [self._checkable(tightened_item(cc, bounds, i, _RECIPES.get(level, level)),
                                                          level == "alpha-crown")
                                          for i in range(cc.case.spec.rows)]

    def _checkable(self, item: dict, output_only: bool = False) -> dict:
        if self.level not in _RECIPES:
            return {"kind": "trusted", "bound": item["bound"],
                    "why": f"intermediate bounds by per-neuron {self.level} solves carry no multipliers"}
        if output_only and item["kind"] == "crown":
            return {"kind": "trusted", "bound": item["bound"], "why": "alpha-CROWN output bound (slopes not kept)"}
        return item

    def offer(self, cc: CompiledCase, clause: tuple[int, ...], item: dict, out=None) -> None:
        """Keep `item` for the clause if it states a better bound than the one held; with `out` (the
        EngineOutput), raise the clause's bound there to what the item states (fold error put back)."""
        item = self._checkable(item)
        if out is not None and item["kind"] == "dual":
            _raise(out, cc, clause, item["bound"])
        entry = self.entries[cc.index]
        if len(clause) == 1:
            held = entry["rows"][clause[0]]
            if held is None or item["bound"] > held["bound"]:
                entry["rows"][clause[0]] = item
        elif "clause" not in entry or item["bound"] > entry["clause"]["bound"]:
            entry["clause"] = item

    def lp(self, cc: CompiledCase, clause: tuple[int, ...], lowered, row_duals, out=None) -> None:
        """The LP's dual item for the clause (see `offer` for `out`)."""
        item = None if row_duals is None else lp_item(cc, self.bounds, lowered, row_duals,
                                                      _RECIPES.get(self.level, self.level))
        if item is not None:
            self.offer(cc, clause, item, out)

    def solver(self, cc: CompiledCase, clause: tuple[int, ...], value: float, backend: str) -> None:
        """A bound only the MILP solver vouches for (its proven dual bound less the tolerance)."""
        fold = float(cc.fold_error[list(clause)].max())
        self.offer(cc, clause, {"kind": "trusted", "bound": float(np.nextafter(value - fold, -np.inf)),
                                "why": f"MILP dual bound of {backend} (solver-trusted)"})

    def section(self, recipe: str = "crown") -> dict:
        from optcert.checking.evidence import evidence

        return evidence(recipe, self.entries)


def _raise(out, cc: CompiledCase, clause: tuple[int, ...], bound: float) -> None:
    """out's bound on the clause raised to `bound` (a bound on the true margin) plus the fold error."""
    if len(clause) == 1:
        r = clause[0]
        out.lower[cc.index][r] = max(out.lower[cc.index][r], bound + float(cc.fold_error[r]))
    else:
        folded = bound + float(cc.fold_error.max())
        current = out.case_lower[cc.index]
        out.case_lower[cc.index] = folded if current is None else max(current, folded)


FLOOR_KEY = "lp_floor_items"   # where lp_floor leaves its items until the engine's evidence is made


def floor_item(out, cc: CompiledCase, bounds, lowered, result, row: int) -> None:
    """The LP floor's dual item for `row` (engines/common.py lp_floor), kept in the certificate
    under FLOOR_KEY for sdp_evidence, with out's bound raised to what it states."""
    from optcert.solve.linear import Trust

    if result.trust is not Trust.RIGOROUS or result.solution.row_duals is None:
        return
    item = lp_item(cc, bounds, lowered, result.solution.row_duals, "crown")
    if item is not None:
        _raise(out, cc, (row,), item["bound"])
        out.certificate.setdefault(FLOOR_KEY, []).append((cc.index, row, item))
