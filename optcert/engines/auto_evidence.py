"""Evidence of the `auto` portfolio (engines/auto.py) for `optcert check`, per case from the arm
that decided it:

* a search arm (input or ReLU splitting, the bnb coordinator): its tree, recorded by the arm's
  `CaseTask.recorder` (engines/bnb_evidence.py), re-derived by the checker; the case then claims
  that arm's bounds (valid, and what its tree states) — unless the search started from a root
  tightened by per-neuron LPs (certified by their duals, but not re-derivable by the checker): its
  rows are then trusted items naming that;
* the MILP arm, or several arms jointly (the best row bounds of different searches): the rows
  as trusted items naming why — a MILP bound is the solver's word (engines/linear.py), and the
  rows of several searches are not one certificate;
* the falsifier, a search arm that falsified, or no decision: the rows as trusted items too (the
  counterexample is re-checked; the bounds of an unproved case are not needed by its verdict, but a
  changed one shows).
"""
from __future__ import annotations

import numpy as np

from optcert.checking.evidence import case_entry, simple_item

RECIPE = "crown-unstable"


def case_evidence(folio, decided: str | None) -> tuple[dict, np.ndarray, float | None]:
    """(evidence entry, row bounds, case bound) the case claims, from the portfolio `folio`
    (auto._Portfolio) and the name of what decided it (module doc)."""
    cc = folio.cc
    rows, key = folio.best_rows(), folio.best_key()
    arm = folio.arms.get(decided) if decided else None
    if arm is not None and hasattr(arm, "task") and arm.state.status == "proved":
        if not arm.root_note:
            return arm.task.recorder.entry("proved", arm.state.rows), arm.state.rows, arm.state.key
        why = f"{decided} search proof from a root with {arm.root_note}: the checker cannot re-derive that root"
    elif decided is None or decided == "falsifier" or (arm is not None and arm.state.status == "falsified"):
        why = "not proved: the best row bounds of the arms' searches, stated, not needed by the verdict"
    elif decided == "milp":
        why = "MILP proof (solver-trusted), with the other arms' row bounds"
    else:
        why = f"proved jointly by the arms {decided}: the best row bounds of several searches are not one certificate"
    sound = cc.sound(rows)
    items = [simple_item("trusted", v, why=why) if np.isfinite(v) else None for v in sound]
    clause = None
    if key is not None and np.isfinite(key):
        fold = float(np.max(cc.fold_error, initial=0.0))
        clause = simple_item("trusted", float(np.nextafter(key - fold, -np.inf)), why=why)
    return case_entry(cc.index, items, clause), rows, key
