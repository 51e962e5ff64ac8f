"""Change one number of a stored result — to test that `optcert check` catches it (tests and
bench/certificates.py). `targets(d)` lists the numbers of a result dict by category; `tampered(d,
target)` returns a deep copy with that one number changed noticeably (v → v + max(0.1|v|, 10⁻³ ×
the mean |value| of its array, 10⁻⁶)), packed arrays re-packed.

Categories: `multiplier` (a stored ν, an SDP multiplier, a clause weight), `bound` (a bound an item
or the result states), `leaf` (a branch-and-bound split: its point, neuron or side),
`counterexample` (a coordinate of x).

Without `reseal` the evidence's SHA-256 no longer matches and the check fails at once; with it (what
an adversary would do) only re-deriving the numbers can catch the change.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from optcert.checking.arrays import pack, unpack

CATEGORIES = ("multiplier", "bound", "leaf", "counterexample")
_KEYS = {"values": "multiplier", "weights": "multiplier", "multipliers": "multiplier", "item_values": "multiplier",
         "item_weights": "multiplier", "item_bound": "bound", "values_at_leaves": "bound",
         "least_rows": "bound", "least_bound": "bound"}


@dataclass(frozen=True)
class Target:
    category: str
    path: tuple            # keys from the result dict down to a number or a packed array
    index: int | None      # element of the packed array / list (None: the number itself)

    def describe(self) -> str:
        where = "/".join(str(p) for p in self.path)
        return f"{self.category} at {where}" + ("" if self.index is None else f"[{self.index}]")


def _tree(node: dict, path: tuple, out: list[Target]) -> None:
    """A tree's splits: every split point of an input bisection, every split neuron's index."""
    layer, split = unpack(node["layer"]), unpack(node["split"])
    out += [Target("leaf", path + ("split",), int(i)) for i in np.flatnonzero(np.isfinite(split))]
    out += [Target("leaf", path + ("index",), int(i)) for i in np.flatnonzero(layer > 0)]


def _walk(node: Any, path: tuple, out: list[Target]) -> None:
    if isinstance(node, dict):
        kind = node.get("kind")
        if "layer" in node and "split" in node:
            _tree(node, path, out)
        for key, value in node.items():
            sub = path + (key,)
            if key in ("split", "index") and "split" in node:
                continue
            category = _KEYS.get(key)
            if category is not None and value is not None and not isinstance(value, (int, float)):
                finite = np.isfinite(unpack(value).reshape(-1))     # an infinite stated value stays infinite
                out += [Target(category, sub, int(i)) for i in np.flatnonzero(finite)]
            elif key == "bound" and kind is not None and isinstance(value, (int, float)) and np.isfinite(value):
                out.append(Target("bound", sub, None))
            else:
                _walk(value, sub, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, path + (i,), out)


def targets(result: dict) -> dict[str, list[Target]]:
    """Every number `tampered` can change, by category (module doc)."""
    out: list[Target] = []
    _walk(result.get("certificate", {}).get("evidence", {}), ("certificate", "evidence"), out)
    for k, case in enumerate(result.get("cases", [])):
        out += [Target("bound", ("cases", k, "lower"), i) for i, v in enumerate(case.get("lower", []))
                if isinstance(v, (int, float)) and np.isfinite(v)]
    cex = result.get("counterexample")
    if cex:
        out += [Target("counterexample", ("counterexample", "x"), i) for i in range(len(cex["x"]))]
    by: dict[str, list[Target]] = {c: [] for c in CATEGORIES}
    for t in out:
        by[t.category].append(t)
    return by


def _changed(v: float, scale: float, rng: np.random.Generator) -> float:
    delta = max(0.1 * abs(v), 1e-3 * scale, 1e-6)
    return float(v + delta * (1 if rng.random() < 0.5 else -1))


def tampered(result: dict, target: Target, rng: np.random.Generator | None = None, reseal: bool = False) -> dict:
    """A deep copy of `result` with the number at `target` changed (module doc); with `reseal`
    the evidence's digest is recomputed too (an adversary's edit, which only re-deriving the
    numbers can catch), else it is left as it was (an edit or corruption the digest shows)."""
    rng = rng or np.random.default_rng(0)
    out = copy.deepcopy(result)
    parent = out
    for key in target.path[:-1]:
        parent = parent[key]
    last = target.path[-1]
    value = parent[last]
    if target.index is None:
        parent[last] = _changed(float(value), abs(float(value)), rng)
    elif isinstance(value, list):
        arr = np.asarray([np.nan if v is None else v for v in value], dtype=np.float64)
        value[target.index] = _changed(float(arr[target.index]), float(np.nanmean(np.abs(arr))), rng)
    else:
        arr = unpack(value).astype(np.float64)
        flat = arr.reshape(-1)
        if value["dtype"] in ("i4", "i8"):
            flat[target.index] = flat[target.index] + (1 if rng.random() < 0.5 or flat[target.index] <= 0 else -1)
        else:
            flat[target.index] = _changed(float(flat[target.index]), float(np.mean(np.abs(flat))), rng)
        parent[last] = pack(arr, value["dtype"])
    evidence = out.get("certificate", {}).get("evidence")
    if reseal and isinstance(evidence, dict) and "sha256" in evidence:
        from optcert.checking.evidence import digest
        from optcert.result import Result

        restored = Result.from_dict(out).certificate["evidence"]   # infinities back, as the checker sees it
        assert isinstance(restored, dict)
        evidence["sha256"] = digest(restored)
    return out
