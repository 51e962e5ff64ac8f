"""Evidence for `optcert check` from the `sdp` and `bm` engines (engines/sdp.py), made after the
engine has run so that the engine's own code stays as it is: `run_sdp_checked` / `run_bm_checked`
(what the registry runs) call the engine, then turn its certificate into evidence items —

* each certified row entry (`certificate["rows"]`, with its multipliers y and λ) becomes an `sdp`
  item (the multipliers move there, packed and projected), its bound as the checker's own
  certificate code evaluates it over the engine's bounds (so the checker reproduces it); of several
  entries per row (the BM staircase), the best one is kept, and the row reports that bound;
* the LP floor's rows carry their LP duals as multipliers (lp_evidence.floor_item);
* every other row's bound comes from the tightened bounds' output layer (IBP or CROWN).

The intermediate bounds are re-derived by the checker (CROWN or IBP tightening); after per-neuron
LP/MILP tightening (`bounds=lp-all|milp`) the items are marked trusted (no multipliers for those).
"""
from __future__ import annotations

import numpy as np

from optcert.certify import EngineOutput
from optcert.checking.arrays import pack
from optcert.compiled import CompiledCase
from optcert.engines.lp_evidence import _RECIPES, FLOOR_KEY, LinearEvidence
from optcert.engines.sdp import BmOptions, SdpOptions, run_bm, run_sdp
from optcert.spec.problem import VerificationProblem


def run_sdp_checked(problem: VerificationProblem, compiled: list[CompiledCase], options: SdpOptions,
                    deadline: float) -> EngineOutput:
    return attach(run_sdp(problem, compiled, options, deadline), compiled, options)


def run_bm_checked(problem: VerificationProblem, compiled: list[CompiledCase], options: BmOptions,
                   deadline: float) -> EngineOutput:
    return attach(run_bm(problem, compiled, options, deadline), compiled, options)


def attach(out: EngineOutput, compiled: list[CompiledCase], options) -> EngineOutput:
    """`out` with certificate["evidence"] built from its certificate (module doc); without it (and
    with a note) if that fails — a verdict is never lost over its certificate."""
    try:
        return _attach(out, compiled, options)
    except (ValueError, KeyError, IndexError, ArithmeticError) as err:
        out.certificate.pop(FLOOR_KEY, None)
        out.certificate["evidence_note"] = f"no evidence stored: {type(err).__name__}: {err}"
        return out


def _attach(out: EngineOutput, compiled: list[CompiledCase], options) -> EngineOutput:
    from optcert.solve.progressive import tighten

    level = options.bounds.value
    evidence = LinearEvidence(compiled)
    floors = out.certificate.pop(FLOOR_KEY, [])
    entries = out.certificate.get("rows", [])
    for cc in compiled:
        reproducible = level in _RECIPES
        bounds = tighten(cc.net, cc.ibp, options.bounds)[0] if reproducible else cc.ibp
        evidence.start(cc, bounds, level)
        for case, row, item in floors:
            if case == cc.index:
                evidence.offer(cc, (row,), item)
        inequality = _inequality_rows(cc, bounds, options) if reproducible else None
        for entry in entries:
            item = _sdp_item(cc, entry, options, _RECIPES.get(level, level), inequality)
            if item is not None and reproducible:
                try:
                    item["bound"] = _stated(cc, bounds, item, int(entry["row"]))
                except (ValueError, KeyError, IndexError, ArithmeticError):
                    item = None      # the checker's model is not the engine's (see `_backed_rows`)
            if item is not None:
                evidence.offer(cc, (entry["row"],), item)
        _backed_rows(out, cc, evidence.entries[cc.index]["rows"])
    out.certificate["evidence"] = evidence.section()
    return out


UNMODELLED = ("the checker rebuilds the SDP of the earlier lowering (every active neuron lifted, "
              "no substitution): the engine's tight lowering (lowerings/quadratic.py) is not re-derived")


def _backed_rows(out: EngineOutput, cc: CompiledCase, items: list) -> None:
    """Each row's claimed bound as its item states it (sdp items: the checker's evaluation); a
    claim its item does not reach (the row was bounded by a model the checker does not rebuild)
    gets a trusted item instead, saying why — never a claim above its evidence."""
    claimed = cc.sound(out.lower[cc.index])
    for row, item in enumerate(items):
        if item is not None and item["kind"] == "sdp":
            out.lower[cc.index][row] = item["bound"] + cc.fold_error[row]
            continue
        stated = -np.inf if item is None else item["bound"]
        if claimed[row] > stated + 1e-9 * (1 + abs(stated)) and np.isfinite(claimed[row]):
            items[row] = {"kind": "trusted", "bound": float(claimed[row]), "why": UNMODELLED}


def _stated(cc: CompiledCase, bounds, item: dict, row: int) -> float:
    """The item's bound by the checker's code (checking/sdp.py) over the engine's own bounds."""
    from optcert.checking.crown import Recipe
    from optcert.checking.items import CaseEvidence
    from optcert.checking.net import from_layered
    from optcert.checking.sdp import evaluate_sdp

    L = len(cc.net.layers)
    ev = CaseEvidence(from_layered(cc.base), cc.case)
    recipe = Recipe(item["recipe"]) if item["recipe"] in {r.value for r in Recipe} else Recipe.CROWN
    ev.given(recipe, list(bounds.lower[:L]), list(bounds.upper[:L]))
    return evaluate_sdp(ev.net, cc.case, item, row, ev.bounds(recipe)).value


def _inequality_rows(cc: CompiledCase, bounds, options) -> np.ndarray:
    """Which rows of the SDP model over `bounds` are inequalities (their multipliers are ≥ 0)."""
    from optcert.lowerings.quadratic import relu_qcqp

    try:
        return ~relu_qcqp(cc.net, bounds, 0, options.hidden_boxes, options.triangle).form.equality
    except Exception:   # a lowering the engine could not build either: no SDP row to store
        return np.zeros(0, dtype=bool)


def _sdp_item(cc: CompiledCase, entry: dict, options, recipe: str, inequality: np.ndarray | None) -> dict | None:
    """A certified row entry of case `cc` as an `sdp` item: its multipliers moved into it, stored
    projected (the certificate sets negative inequality multipliers to 0 anyway, and the checker
    then refuses any negative one), with its λ and trace bound."""
    if entry.get("case") != cc.index or "multipliers" not in entry or not np.isfinite(entry.get("bound", -np.inf)):
        return None
    y = np.asarray(entry.pop("multipliers"), dtype=np.float64)
    row = int(entry["row"])
    sound = float(np.nextafter(entry["bound"] - cc.fold_error[row], -np.inf))
    if inequality is None:     # bounds the checker cannot re-derive: the item is trusted (LinearEvidence)
        return {"kind": "sdp", "bound": sound}
    if y.shape != inequality.shape:
        return None
    y = np.where(np.isfinite(y), y, 0.0)
    y = np.where(inequality, np.maximum(y, 0.0), y)
    return {"kind": "sdp", "bound": sound, "multipliers": pack(y), "lambda": float(entry["lambda"]),
            "trace_bound": entry.get("trace_bound"), "hidden_boxes": bool(options.hidden_boxes),
            "triangle": bool(options.triangle), "recipe": recipe}
