"""`Verdict` and `Result`: what every engine returns, with JSON and VNN-COMP writers.

`bound` is the certified lower bound on the property margin (−inf when nothing is certified);
`upper` is the best margin an input actually achieved (an upper bound on the true minimum, +inf
when nothing was tried). PROVED ⇔ bound > 0; FALSIFIED ⇔ a re-checked counterexample.
Only `certify.py` constructs PROVED/FALSIFIED results.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Mapping


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
    """Per case: certified lower bounds and achieved upper values of each row's margin."""

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    case_lower: float
    case_upper: float


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

    @property
    def seconds(self) -> float:
        return float(sum(self.timings.values()))

    # ---- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["verdict"] = self.verdict.value
        return _jsonable(d)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Result":
        d = _unjson(dict(d))
        cex = d.get("counterexample")
        return cls(
            verdict=Verdict(d["verdict"]), bound=d["bound"], upper=d["upper"],
            cases=tuple(CaseBounds(tuple(c["lower"]), tuple(c["upper"]), c["case_lower"], c["case_upper"])
                        for c in d["cases"]),
            reason=d["reason"], engine=d["engine"], options=d.get("options", {}),
            timings=d.get("timings", {}),
            counterexample=None if cex is None else Counterexample(
                cex["case"], tuple(cex["clause"]), tuple(cex["x"]), tuple(cex["y"]), tuple(cex["margins"])),
            certificate=d.get("certificate", {}), timed_out=d.get("timed_out", False),
            problem=d.get("problem", ""))

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


_INF_KEYS = {math.inf: "inf", -math.inf: "-inf"}


def _jsonable(value):
    """Replace ±inf/NaN by strings and tuples by lists so the JSON is strict."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return _INF_KEYS.get(value, value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar
        return _jsonable(value.item())
    if hasattr(value, "tolist"):  # numpy array
        return _jsonable(value.tolist())
    return value


def _unjson(value):
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: _unjson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unjson(v) for v in value]
    return value
