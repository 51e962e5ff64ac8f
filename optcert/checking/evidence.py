"""What engines store so that `optcert check` can re-verify them: evidence *items*, made here so
that every engine writes the same format (`certificate["evidence"]`, `FORMAT`).

Per case, `rows[i]` is the item certifying row i's lower bound (None: nothing certified) and
`clause` an optional item bounding an ANY case's margin max_i m_i directly. Items:

* `{"kind": "ibp"}`: the checker's own interval propagation over the case box;
* `{"kind": "crown"}`: the checker's own CROWN (its ν, intermediate bounds by `recipe`);
* `{"kind": "dual", "nu": {layer: {"mask", "values"}}, "weights"?}`: the Lagrangian bound
  (checking/dual.py) of the stored multipliers ν, given on the neurons of `mask` (those the engine
  saw unstable or split; elsewhere CROWN's rule); `weights` μ ≥ 0 over the rows make it a bound on
  Σ μ_i m_i / Σ μ_i ≤ max_i m_i (an ANY clause); `"empty": true` (no objective) makes it a bound on
  Σ_k ν_k·(W_k z + b_k − ẑ_k), which is 0 at every input: a positive one proves the domain empty;
* `{"kind": "sdp", …}`, `{"kind": "tree", …}`: see checking/sdp.py and checking/tree.py;
* `{"kind": "trusted", "why": …}`: a bound the checker cannot re-derive (a MILP solver's own dual
  bound; intermediate bounds from per-neuron LP/MILP solves, which keep no multipliers).

Every item states its `bound` (a lower bound on the true margin, fold error already off): for a
dual item the value of its multipliers over the engine's own intermediate bounds, computed here
with the checker's evaluator, so the checker — re-deriving the intermediate bounds by `recipe` —
must reproduce it to within rounding (any changed number shows).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from optcert.checking.arrays import pack
from optcert.checking.dual import margin_bound, stored
from optcert.checking.net import from_layered
from optcert.ir.layered import LayeredNet

FORMAT = "optcert-evidence/1"


def _canonical(value):
    """`value` as plain JSON data in one spelling (numpy → python, non-finite floats as strings)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return _canonical(value.tolist())
    if isinstance(value, np.generic):
        return _canonical(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    return value


def digest(evidence: Mapping) -> str:
    """SHA-256 of the evidence (its `sha256` field left out) in canonical JSON."""
    import hashlib
    import json

    body = {k: v for k, v in evidence.items() if k != "sha256"}
    text = json.dumps(_canonical(body), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def property_digest(cases) -> str:
    """SHA-256 of the property's cases exactly (boxes, C, d, how rows combine): a result checked
    against another region or another ε fails at once, whatever its files are called."""
    import hashlib

    h = hashlib.sha256()
    for case in cases:
        for a in (case.box.lo, case.box.hi, case.spec.C, case.spec.d):
            arr = np.ascontiguousarray(a, dtype="<f8")
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
        h.update(case.combine.value.encode())
    return h.hexdigest()


def seal(certificate: dict, cases=None) -> dict:
    """The certificate with the digest of the property (`cases`) and of its evidence stored
    (`optcert check` compares them first: a file edited or corrupted after the fact, or a result
    checked against another property, fails there before any number is re-derived)."""
    evidence = certificate.get("evidence")
    if isinstance(evidence, dict):
        if cases is not None:
            evidence["property_sha256"] = property_digest(cases)
        evidence["sha256"] = digest(evidence)
    return certificate


def evidence(recipe: str, cases: list[dict]) -> dict:
    """The certificate's evidence section: intermediate-bound recipe and per-case items."""
    return {"format": FORMAT, "recipe": recipe, "cases": cases}


def case_entry(index: int, rows: Sequence[dict | None], clause: dict | None = None) -> dict:
    out: dict = {"case": int(index), "rows": list(rows)}
    if clause is not None:
        out["clause"] = clause
    return out


def simple_item(kind: str, bound: float, **extra) -> dict:
    """An item the checker re-derives on its own (ibp, crown) or cannot (trusted)."""
    return {"kind": kind, "bound": float(bound), **extra}


def nu_masks(lower: list, upper: list) -> dict[int, np.ndarray]:
    """Per ReLU layer, the neurons whose ν is stored: those not strictly stable (lo ≤ 0 ≤ hi)."""
    return {j: ~((np.asarray(lower[j]) > 0) | (np.asarray(upper[j]) < 0)) for j in range(1, len(lower))}


def dual_items(base: LayeredNet, lower: list, upper: list, C: np.ndarray, d: np.ndarray,
               nus: Mapping[int, np.ndarray], weights: np.ndarray,
               masks: Mapping[int, np.ndarray] | None = None) -> list[dict]:
    """One dual item per objective row of one domain: `nus[j]` (m, n_j) multipliers, `weights`
    (m, rows) over the spec rows (one-hot for a row bound), `lower/upper` the engine's bounds on
    layers 0..L−1 (numpy); ν is stored on `masks[j]` (default `nu_masks`), CROWN's rule elsewhere."""
    lo = [np.asarray(a, dtype=np.float64)[None] for a in lower]
    hi = [np.asarray(a, dtype=np.float64)[None] for a in upper]
    masks = {**nu_masks(lower, upper), **(masks or {})}
    return batch_items(base, lo, hi, C, d, {j: np.asarray(v)[None] for j, v in nus.items()},
                       np.asarray(weights, dtype=np.float64)[None], {j: m[None] for j, m in masks.items()})[0]


def batch_items(base: LayeredNet, lower: list, upper: list, C: np.ndarray, d: np.ndarray,
                nus: Mapping[int, np.ndarray], weights: np.ndarray,
                masks: Mapping[int, np.ndarray] | None = None) -> list[list[dict]]:
    """Dual items of B domains at once: bounds (B, n_k) per layer, `nus[j]` (B, m, n_j), `weights`
    (B, m, rows), `masks[j]` (B, n_j) (default `nu_masks` of each domain); items[b][r]."""
    net = from_layered(base)
    masks = {**nu_masks(lower, upper), **(masks or {})}
    rule = stored({j: (masks[j][:, None, :], np.asarray(nu, dtype=np.float64)) for j, nu in nus.items()})
    lo, hi = list(lower), list(upper)
    if not np.all(np.isin(weights, (0.0, 1.0))) or np.any(np.count_nonzero(weights, axis=-1) > 1):
        from optcert.checking.interval import affine

        out = affine(net, net.depth, lo, hi)
        lo, hi = lo + [out[0]], hi + [out[1]]
    value, _ = margin_bound(net, lo, hi, np.asarray(C, dtype=np.float64), np.asarray(d, dtype=np.float64),
                            weights, rule)
    items = []
    for b in range(weights.shape[0]):
        row = []
        for r in range(weights.shape[1]):
            w = weights[b, r]
            empty = not np.any(w)      # no objective: a positive bound proves the domain empty
            item: dict = {"kind": "dual", "bound": float(value[b, r] if empty else normalised(value[b, r], w)),
                          "nu": {str(j): {"mask": pack(masks[j][b], "b1"),
                                          "values": pack(np.asarray(nus[j][b, r])[masks[j][b]])} for j in sorted(nus)}}
            if empty:
                item["empty"] = True
            elif not (np.count_nonzero(w) == 1 and w.max() == 1.0):
                item["weights"] = pack(w)
            row.append(item)
        items.append(row)
    return items


def normalised(value: float, weights: np.ndarray) -> float:
    """A lower bound on max_i m_i from a lower bound `value` on Σ μ_i m_i (μ = weights ≥ 0):
    value / Σμ, rounded down (Σμ is bracketed by one ulp each way)."""
    if not np.isfinite(value):
        return float(value)
    w = np.asarray(weights, dtype=np.float64)
    if np.any(w < 0) or not np.any(w > 0):
        return -np.inf
    if np.count_nonzero(w) == 1 and w.max() == 1.0:
        return float(value)
    import math

    s = math.fsum(w.tolist())
    s = float(np.nextafter(s, np.inf)) if value >= 0 else float(np.nextafter(s, -np.inf))
    return float(np.nextafter(value / s, -np.inf))
