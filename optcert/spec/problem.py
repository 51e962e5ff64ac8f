"""Specifications: input boxes, linear output properties, and verification problems.

A property is a list of `Case`s and holds iff every case holds. A case has an input `Box` and
margins m(x) = C f(x) + d (a `LinearSpec`), combined in one of two ways:

* `Combine.ALL`: every row must be positive on the whole box (each row ≤ 0 alone is a
  violation). L∞ robustness, and VNN-LIB `or` of single output atoms, are of this kind.
* `Combine.ANY`: the violation is *all* rows ≤ 0 at one input (a VNN-LIB `and` of several
  output atoms), so the case holds iff max_i m_i(x) > 0 for every x in the box.

The margin of a case is min over the box of min_i m_i (ALL) or max_i m_i (ANY); the property's
margin is the minimum over its cases. PROVED means margin > 0, so ties count as violations,
matching the non-strict `<=`/`>=` of VNN-LIB.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

import numpy as np

from optcert.errors import InvalidSpecError
from optcert.ir.network import Network


def _vector(value, name: str) -> np.ndarray:
    arr = np.array(value, dtype=np.float64, copy=True).reshape(-1)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class Box:
    """The input region lo ≤ x ≤ hi over the flattened (row-major) input."""

    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self):
        lo, hi = _vector(self.lo, "lo"), _vector(self.hi, "hi")
        if lo.shape != hi.shape:
            raise InvalidSpecError(f"box bounds have different sizes ({lo.size} and {hi.size})")
        if lo.size == 0:
            raise InvalidSpecError("box is empty (no input dimensions)")
        for name, arr in (("lower", lo), ("upper", hi)):
            bad = np.flatnonzero(~np.isfinite(arr))
            if bad.size:
                raise InvalidSpecError(f"box {name} bound of input {bad[0]} is not finite ({arr[bad[0]]})")
        bad = np.flatnonzero(lo > hi)
        if bad.size:
            i = bad[0]
            raise InvalidSpecError(f"box has lo > hi at input {i} ({lo[i]} > {hi[i]})")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def size(self) -> int:
        return int(self.lo.size)

    @property
    def center(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def radius(self) -> np.ndarray:
        return (self.hi - self.lo) / 2

    def contains(self, x: np.ndarray, tol: float = 0.0) -> bool:
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        return bool(x.size == self.size and np.all(x >= self.lo - tol) and np.all(x <= self.hi + tol))

    def clip(self, x: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(x, dtype=np.float64).reshape(-1), self.lo, self.hi)


@dataclass(frozen=True, eq=False)
class LinearSpec:
    """Margins C f(x) + d; "C f(x) + d ≥ 0 row-wise" is the property. `labels` name the rows."""

    C: np.ndarray
    d: np.ndarray
    labels: tuple[str, ...] = ()

    def __post_init__(self):
        C = np.array(self.C, dtype=np.float64, copy=True)
        if C.ndim == 1:
            C = C[None, :]
        d = _vector(self.d, "d")
        if C.ndim != 2 or C.shape[0] == 0:
            raise InvalidSpecError(f"spec matrix must be (rows, outputs) with at least one row, got {C.shape}")
        if d.shape != (C.shape[0],):
            raise InvalidSpecError(f"spec offset has {d.size} entries for {C.shape[0]} rows")
        if not (np.all(np.isfinite(C)) and np.all(np.isfinite(d))):
            raise InvalidSpecError("spec has a non-finite coefficient")
        C.setflags(write=False)
        labels = tuple(self.labels) or tuple(f"row{i}" for i in range(C.shape[0]))
        if len(labels) != C.shape[0]:
            raise InvalidSpecError(f"{len(labels)} labels for {C.shape[0]} spec rows")
        object.__setattr__(self, "C", C)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "labels", labels)

    @property
    def rows(self) -> int:
        return int(self.C.shape[0])

    def margins(self, y: np.ndarray) -> np.ndarray:
        """C y + d for outputs y of shape (n_out,) or (B, n_out)."""
        y = np.asarray(y, dtype=np.float64)
        return y @ self.C.T + self.d


class Combine(Enum):
    """How a case's rows combine; see the module docstring."""

    ALL = "all"
    ANY = "any"


@dataclass(frozen=True)
class Case:
    """One input box with its output margins."""

    box: Box
    spec: LinearSpec
    combine: Combine = Combine.ALL

    def clauses(self) -> list[tuple[int, ...]]:
        """Violation clauses as row-index tuples: a clause is violated when all its rows are ≤ 0."""
        if self.combine is Combine.ANY:
            return [tuple(range(self.spec.rows))]
        return [(i,) for i in range(self.spec.rows)]

    def case_margin(self, row_margins: np.ndarray) -> np.ndarray:
        """Combine per-row margins (…, rows) into the case margin (min for ALL, max for ANY)."""
        return row_margins.max(axis=-1) if self.combine is Combine.ANY else row_margins.min(axis=-1)


@dataclass(frozen=True)
class VerificationProblem:
    """A network and a property (every case must hold)."""

    network: Network
    cases: tuple[Case, ...]
    name: str = ""
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "cases", tuple(self.cases))
        if not self.cases:
            raise InvalidSpecError(f"{self.name or 'problem'}: the property has no case")
        for k, case in enumerate(self.cases):
            if case.box.size != self.network.n_inputs:
                raise InvalidSpecError(
                    f"{self.name or 'problem'}: case {k} box has {case.box.size} inputs, "
                    f"network {self.network.name!r} takes {self.network.n_inputs}")
            if case.spec.C.shape[1] != self.network.n_outputs:
                raise InvalidSpecError(
                    f"{self.name or 'problem'}: case {k} spec reads {case.spec.C.shape[1]} outputs, "
                    f"network {self.network.name!r} has {self.network.n_outputs}")

    @classmethod
    def single(cls, network: Network, box: Box, spec: LinearSpec, name: str = "") -> "VerificationProblem":
        return cls(network, (Case(box, spec),), name=name)

    @property
    def rows(self) -> int:
        return sum(c.spec.rows for c in self.cases)


def robustness_spec(n_outputs: int, label: int, targets: Sequence[int] | None = None) -> LinearSpec:
    """Rows f_label − f_j (j ≠ label, or j in `targets`): positive iff `label` beats j."""
    if not 0 <= label < n_outputs:
        raise InvalidSpecError(f"label {label} is outside the {n_outputs} network outputs")
    others = [j for j in (range(n_outputs) if targets is None else dict.fromkeys(targets)) if j != label]
    if not others or any(not 0 <= j < n_outputs for j in others):
        raise InvalidSpecError(f"targets {list(targets or [])} are not valid other classes")
    C = np.zeros((len(others), n_outputs))
    C[np.arange(len(others)), label] = 1.0
    C[np.arange(len(others)), others] = -1.0
    return LinearSpec(C, np.zeros(len(others)), tuple(f"Y_{label}-Y_{j}" for j in others))


def check_valid_range(valid: Sequence[float]) -> tuple[float, float]:
    """`valid` as (lo, hi) with lo < hi (either may be infinite); InvalidSpecError for a reversed,
    empty or malformed range."""
    try:
        lo, hi = (float(v) for v in valid)
    except (TypeError, ValueError):
        raise InvalidSpecError(f"valid range must be two numbers LO,HI, got {valid!r}") from None
    if np.isnan(lo) or np.isnan(hi):
        raise InvalidSpecError(f"valid range [{lo}, {hi}] contains NaN")
    if lo > hi:
        raise InvalidSpecError(f"valid range [{lo:g}, {hi:g}] is reversed (LO > HI); did you mean {hi:g},{lo:g}?")
    if lo == hi:
        raise InvalidSpecError(f"valid range [{lo:g}, {hi:g}] has no width")
    return lo, hi


def check_image(image: np.ndarray, valid: tuple[float, float], what: str = "image") -> None:
    """InvalidSpecError unless every value of `image` is finite and inside the valid range (so that
    the region built around it is a neighbourhood of it)."""
    x = np.asarray(image, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise InvalidSpecError(f"{what} value {bad[0]} is not finite ({x[bad[0]]})")
    lo, hi = valid
    bad = np.flatnonzero((x < lo) | (x > hi))
    if bad.size:
        i = bad[0]
        raise InvalidSpecError(f"{what} value {i} ({x[i]:g}) is outside the valid range [{lo:g}, {hi:g}] "
                               f"({bad.size} of {x.size} values are): the region would not contain the image")


def linf_box(image: np.ndarray, eps: float, valid: Sequence[float] = (0.0, 1.0)) -> Box:
    """The L∞ ball of radius `eps` around `image`, intersected with the valid range: always a
    non-empty box containing the image (InvalidSpecError for a reversed or empty valid range, an
    image outside it or not finite, or eps negative, NaN or infinite). eps = 0 is the image alone."""
    x = np.asarray(image, dtype=np.float64).reshape(-1)
    lo, hi = check_valid_range(valid)
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) \
            or not np.isfinite(eps) or eps < 0:
        raise InvalidSpecError(f"eps must be a finite non-negative number, got {eps!r}")
    check_image(x, (lo, hi))
    return Box(np.clip(x - eps, lo, hi), np.clip(x + eps, lo, hi))


def robustness_problem(network: Network, image: np.ndarray, label: int, eps: float,
                       valid: tuple[float, float] = (0.0, 1.0), targets: Sequence[int] | None = None,
                       name: str = "") -> VerificationProblem:
    """L∞ robustness of `label` within `eps` of `image`, clipped to the valid pixel range (`linf_box`
    says what is rejected). The clean image and its label are kept in `meta` ("clean", "label"):
    `certify` checks the clean image first, so a misclassified image is reported as such."""
    x = np.asarray(image, dtype=np.float64).reshape(-1)
    if x.size != network.n_inputs:
        raise InvalidSpecError(f"image has {x.size} values, network {network.name!r} takes {network.n_inputs}")
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise InvalidSpecError(f"label must be an integer class, got {label!r}")
    box = linf_box(x, eps, valid)
    spec = robustness_spec(network.n_outputs, int(label), targets)
    x.setflags(write=False)
    return VerificationProblem(network, (Case(box, spec),), name=name or f"robust[{label}]@{eps}",
                               meta={"clean": x, "label": int(label), "eps": float(eps)})
