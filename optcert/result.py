"""`Verdict` and `Result`: what every engine returns, with JSON and VNN-COMP writers.

`bound` is the certified lower bound on the property margin (−inf when nothing is certified);
`upper` is the best margin an input actually achieved (an upper bound on the true minimum, +inf
when nothing was tried). PROVED ⇔ bound > 0; FALSIFIED ⇔ a re-checked counterexample.
Only `certify.py` constructs PROVED/FALSIFIED results.

Each case's `row_source[i]` names the method whose certified bound row i carries (`"interval"`,
`"crown"`, `"lp-floor"`, `"bm"`, ...; `"none"` where nothing is certified). `timed_out` says
whether a time limit was hit (the reason then says so too). `clean_violation` is True when the
clean input itself already violates the property: for a robustness problem the network
misclassifies the unperturbed image (FALSIFIED by any engine, with that image as counterexample);
for a VNN-LIB property a FALSIFIED result's input-box centre is itself a counterexample.
`provenance` records who made the result and from what (see `optcert.provenance`).

JSON (`to_json`, schema `optcert-result/1`): strict JSON (no NaN/Infinity tokens). Every
non-finite number is written as `null`, and its JSON Pointer (RFC 6901) is listed in the
top-level object `nonfinite` with its value, `"inf"`, `"-inf"` or `"nan"`: e.g. `"bound": null`
with `"nonfinite": {"/bound": "-inf"}`. `from_json` restores them exactly. A null that is not
listed there is a missing value (e.g. no counterexample). `certificate` holds the engine's own
record (multipliers, per-row solver statuses, ...) under the same convention, so an offline checker
can recompute a bound from it.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

SCHEMA = "optcert-result/1"


class Verdict(Enum):
    PROVED = "proved"
    FALSIFIED = "falsified"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Counterexample:
    """An input inside case `case`'s box whose float64 outputs violate clause `clause`."""

    case: int
    clause: tuple[int, ...]
    x: tuple[float, ...]
    y: tuple[float, ...]
    margins: tuple[float, ...]


@dataclass(frozen=True)
class CaseBounds:
    """Per case: certified lower bounds and achieved upper values of each row's margin, and which
    method certified each row's lower bound (`row_source`, empty when unrecorded)."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    case_lower: float
    case_upper: float
    row_source: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    verdict: Verdict
    bound: float
    upper: float
    cases: tuple[CaseBounds, ...]
    reason: str
    engine: str
    options: Mapping[str, object] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    counterexample: Counterexample | None = None
    certificate: Mapping[str, object] = field(default_factory=dict)
    timed_out: bool = False
    problem: str = ""
    clean_violation: bool = False
    provenance: Mapping[str, object] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return float(sum(self.timings.values()))

    @property
    def row_source(self) -> tuple[str, ...]:
        """Every row's bound source, cases in order."""
        return tuple(s for c in self.cases for s in c.row_source)

    # ---- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A strict-JSON dict (module doc: non-finite numbers as null, listed in `nonfinite`)."""
        d = asdict(self)
        d["verdict"] = self.verdict.value
        nonfinite: dict[str, str] = {}
        body = _jsonable(d, "", nonfinite)
        return {"schema": SCHEMA, **body, "nonfinite": nonfinite}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Result":
        d = copy.deepcopy(dict(d)) if "schema" in d else _unjson(dict(d))   # before schema 1: strings
        d = _restore(d, d.get("nonfinite") or {})
        cex = d.get("counterexample")
        return cls(
            verdict=Verdict(d["verdict"]), bound=d["bound"], upper=d["upper"],
            cases=tuple(CaseBounds(tuple(c["lower"]), tuple(c["upper"]), c["case_lower"], c["case_upper"],
                                   tuple(c.get("row_source", ()))) for c in d["cases"]),
            reason=d["reason"], engine=d["engine"], options=d.get("options", {}),
            timings=d.get("timings", {}),
            counterexample=None if cex is None else Counterexample(
                cex["case"], tuple(cex["clause"]), tuple(cex["x"]), tuple(cex["y"]), tuple(cex["margins"])),
            certificate=d.get("certificate", {}), timed_out=d.get("timed_out", False),
            problem=d.get("problem", ""), clean_violation=d.get("clean_violation", False),
            provenance=d.get("provenance", {}))

    @classmethod
    def from_json(cls, text: str) -> "Result":
        return cls.from_dict(json.loads(text))

    # ---- VNN-COMP ---------------------------------------------------------------------------
    def vnncomp_text(self) -> str:
        """The competition's result file: unsat / sat + assignment / timeout / unknown."""
        if self.verdict is Verdict.PROVED:
            return "unsat\n"
        if self.verdict is Verdict.FALSIFIED and self.counterexample is not None:
            cex = self.counterexample
            lines = [f"(X_{i} {v!r})" for i, v in enumerate(cex.x)]
            lines += [f"(Y_{j} {v!r})" for j, v in enumerate(cex.y)]
            return "sat\n(" + "\n".join(lines) + ")\n"
        return "timeout\n" if self.timed_out else "unknown\n"

    def write_vnncomp(self, path: str | Path) -> None:
        Path(path).write_text(self.vnncomp_text())


def _pointer(base: str, key: object) -> str:
    return f"{base}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _jsonable(value: Any, path: str, nonfinite: dict[str, str]) -> Any:
    """`value` as strict JSON: non-finite floats → None (recorded at their pointer in `nonfinite`),
    tuples and arrays → lists, enums → their values."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        nonfinite[path] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, _pointer(path, k), nonfinite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, _pointer(path, i), nonfinite) for i, v in enumerate(value)]
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return _jsonable(value.item(), path, nonfinite)
    if hasattr(value, "tolist"):  # numpy array
        return _jsonable(value.tolist(), path, nonfinite)
    return value


def _restore(value: Any, nonfinite: Mapping[str, str]) -> Any:
    """Put the non-finite numbers listed in `nonfinite` (pointer → "inf"/"-inf"/"nan") back."""
    for pointer, text in nonfinite.items():
        keys = [k.replace("~1", "/").replace("~0", "~") for k in pointer.split("/")[1:]]
        if not keys:
            continue
        node = value
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = float(text)
        else:
            node[last] = float(text)
    return value


def _unjson(value):
    """Results written before schema 1 spelled infinities as strings; read those too."""
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: (v if k == "nonfinite" else _unjson(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjson(v) for v in value]
    return value
