"""The `bnb` engine's certificate: its search tree, recorded as the coordinator goes
(`TreeRecorder` is the coordinator's `trace`), encoded by optcert.checking.tree.

Every bounded domain is a node (its path of splits from the root); a leaf keeps its certified
value. The checker re-derives CROWN on every node itself, so a node stores multipliers only where
alpha/beta-CROWN (or an exact LP leaf) gave a row a positive bound that CROWN did not: the ν of
the best iterate, on the neurons the domain leaves unstable or split (beta-CROWN's multipliers live
there), and for an ANY case the rows' weights. Each stored item states its bound as the checker's
evaluator computes it over the engine's own domain bounds (evidence.batch_items).
"""
from __future__ import annotations

import math

import numpy as np

from optcert.checking.evidence import batch_items, case_entry, evidence
from optcert.checking.tree import encode_tree
from optcert.compiled import CompiledCase
from optcert.engines.lp_evidence import lp_item
from optcert.search.input_tree import InputTree
from optcert.spec.problem import Combine

RECIPE = "crown-unstable"


def empty_evidence(compiled: list[CompiledCase]) -> dict:
    """The evidence section before any case is searched: no item anywhere."""
    return evidence(RECIPE, [case_entry(cc.index, [None] * cc.case.spec.rows) for cc in compiled])


class TreeRecorder:
    """Called by the coordinator for every bounded domain (search/coordinator.py `trace`)."""

    def __init__(self, cc: CompiledCase, checkable: bool, recording: bool = True):
        self.cc, self.checkable, self.recording = cc, checkable, recording
        self.paths: set[tuple] = set()
        self.values: dict[tuple, float] = {}
        self.items: list[tuple[tuple, dict]] = []
        self.trusted: dict[tuple, str] = {}
        self.pending: list[dict] = []      # items of the exact-LP leaf being solved
        self.inputs: InputTree | None = None   # the tree of a batched input-split search instead

    def __call__(self, path: tuple, bounded, b: int, leaf: float | None) -> None:
        self.paths.add(path)
        if leaf is not None:
            self.values[path] = float(leaf)
            self.items += [(path, item) for item in self.pending]
            if leaf == math.inf and bounded is not None and bounded.bounds[b] is not None and \
                    not any(item.get("empty") for item in self.pending):
                self.trusted[path] = "an exact-LP leaf proved empty by a phase-1 LP whose duals do not re-derive it"
        self.pending = []
        if self.checkable and bounded is not None and bounded.bounds[b] is not None and bounded.evidence:
            self.items += [(path, item) for item in self._alpha(bounded, b)]

    def _alpha(self, bounded, b: int) -> list[dict]:
        """Items where the best alpha/beta iterate proves what CROWN did not (module doc)."""
        ev = bounded.evidence
        if not ev.get("nus"):
            return []
        crown, best, fold = ev["crown"][b], ev["lower"][b], self.cc.fold_error
        spec, m = self.cc.case.spec, self.cc.case.spec.rows
        if ev.get("weights") is None:
            picks = [r for r in range(m) if best[r] > crown[r] and best[r] - fold[r] > 0]
            weights = np.eye(m)[picks]
            rows: list[int | None] = list(picks)
        else:
            if not (best[0] > crown.max() and best[0] - fold.max() > 0):
                return []
            weights, picks, rows = ev["weights"][b][None], [0], [None]
        if not picks:
            return []
        bounds = bounded.bounds[b]
        L = len(self.cc.net.layers)
        nus = {j: v[b][picks][None] for j, v in ev["nus"].items()}
        items = batch_items(self.cc.base, [a[None] for a in bounds.lower[:L]], [a[None] for a in bounds.upper[:L]],
                            spec.C, spec.d, nus, weights[None])[0]
        for item, row in zip(items, rows):
            item["row"] = row
        return items

    def leaf_items(self, bounds, answer) -> object:
        """An exact-LP leaf's answer with its LP duals as items (kept for the coming trace call),
        its rows raised to what those items state (fold error put back)."""
        if not self.checkable or not self.recording or not answer.duals:
            return answer
        rows, key = answer.rows.copy(), answer.key
        for objective, lowered, duals, empty in answer.duals:
            if empty and any(p.get("empty") for p in self.pending):
                continue                        # one proof of emptiness is enough
            item = lp_item(self.cc, bounds, lowered, duals, RECIPE, empty)
            if item is None or (empty and not item["bound"] > 0):
                continue
            if empty:
                item["row"] = None
            elif len(objective) == 1:
                item["row"] = int(objective[0])
                rows[objective[0]] = max(rows[objective[0]], item["bound"] + self.cc.fold_error[objective[0]])
            else:
                item["row"] = None
                key = max(key, item["bound"] + float(self.cc.fold_error.max()))
            self.pending.append(item)
        from dataclasses import replace

        return replace(answer, rows=rows, key=key)

    def input_alpha_items(self, lower: list, upper: list, nus: dict, weights: np.ndarray) -> list[list[dict]]:
        """Checker items of input-split domains bounded by alpha-CROWN (search/input_split.py): per
        domain, one per objective row (a spec row, or an ANY case's weighted combination)."""
        spec = self.cc.case.spec
        items = batch_items(self.cc.base, lower, upper, spec.C, spec.d, nus, weights)
        clause = self.cc.case.combine is Combine.ANY and spec.rows > 1    # one weighted item, else one per row
        for its in items:
            for r, item in enumerate(its):
                item["row"] = None if clause else r
        return items

    def entry(self, status: str, rows: np.ndarray) -> dict:
        """The case's evidence entry: its tree when proved, else nothing (or trusted items)."""
        m = self.cc.case.spec.rows
        if status == "proved" and self.inputs is not None:
            try:
                return {"case": self.cc.index, "tree": self.inputs.encode(m)}
            except (KeyError, ValueError) as err:     # never lose a verdict over its certificate
                return {**case_entry(self.cc.index, [None] * m), "note": f"tree not recorded: {err}"}
        if status == "proved" and self.checkable and () in self.paths:
            try:
                return {"case": self.cc.index, "tree": encode_tree(self.paths, self.values, self.items, self.trusted)}
            except (KeyError, ValueError) as err:     # never lose a verdict over its certificate
                return {**case_entry(self.cc.index, [None] * m), "note": f"tree not recorded: {err}"}
        if status == "proved" and not self.recording:
            return case_entry(self.cc.index, [{"kind": "trusted", "bound": float(v), "why": "no search tree "
                                               "recorded (option evidence=false)"} for v in self.cc.sound(rows)])
        if status == "proved":
            sound = self.cc.sound(rows)
            return case_entry(self.cc.index, [{"kind": "trusted", "bound": float(v), "why":
                                               "per-domain multipliers of lp/bm bounding, or intermediate bounds "
                                               "by deep alpha-CROWN, are not stored"}
                                              for v in sound])
        why = f"not proved ({status}): the search's floor, stated, not needed by the verdict"
        return case_entry(self.cc.index, [{"kind": "trusted", "bound": float(v), "why": why} if np.isfinite(v)
                                          else None for v in self.cc.sound(rows)])
