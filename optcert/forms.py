"""Solver-facing forms: plain dataclasses of arrays, the only thing lowerings and backends share.

* `LinearProgram`: min c·x + c0  s.t.  row_lo ≤ A x ≤ row_hi,  col_lo ≤ x ≤ col_hi,  x[integer] ∈ Z.
* `ConicProgram`:  min c·x + c0  s.t.  A x + s = b,  s ∈ K = {0}^zero × R₊^nonneg × S₊^{n₁} × …
  (SCS's standard form; PSD blocks are vectorised as the lower triangle, column by column, with
  off-diagonal entries scaled by √2, so ⟨svec X, svec Y⟩ = tr(XY)).
* `Solution`: what a backend returns; a solver status is never a verdict (see certify.py).

Dual sign conventions (every adapter converts to these):
* LP: `row_duals` y and `col_duals` r satisfy r = c − Aᵀy at optimality; y_i > 0 means row i's
  lower side is binding, y_i < 0 its upper side.
* Conic: `duals` y ∈ K* with Aᵀy + c = 0 at optimality, dual objective −bᵀy + c0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, Mapping, TypeVar

import numpy as np
import scipy.sparse as sp


def _vec(value, n: int | None, name: str, fill: float | None = None) -> np.ndarray:
    if value is None:
        return np.full(n, fill, dtype=np.float64)
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} entries, expected {n}")
    return arr


@dataclass(frozen=True, eq=False)
class LinearProgram:
    """An LP or MILP in row/column-bounded form with a sparse CSR constraint matrix."""

    c: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray | None = None
    c0: float = 0.0
    col_names: tuple[str, ...] = ()

    def __post_init__(self):
        c = _vec(self.c, None, "c")
        n = c.size
        A = sp.csr_matrix(self.A, dtype=np.float64)
        if A.shape[1] != n:
            raise ValueError(f"A has {A.shape[1]} columns for {n} variables")
        m = A.shape[0]
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "row_lo", _vec(self.row_lo, m, "row_lo", -np.inf))
        object.__setattr__(self, "row_hi", _vec(self.row_hi, m, "row_hi", np.inf))
        object.__setattr__(self, "col_lo", _vec(self.col_lo, n, "col_lo", -np.inf))
        object.__setattr__(self, "col_hi", _vec(self.col_hi, n, "col_hi", np.inf))
        integer = np.zeros(n, bool) if self.integer is None else np.asarray(self.integer, bool).reshape(-1)
        if integer.size != n:
            raise ValueError(f"integer mask has {integer.size} entries for {n} variables")
        object.__setattr__(self, "integer", integer)
        object.__setattr__(self, "c0", float(self.c0))

    @property
    def n_cols(self) -> int:
        return int(self.c.size)

    @property
    def n_rows(self) -> int:
        return int(self.A.shape[0])

    @property
    def is_mip(self) -> bool:
        return bool(self.integer.any())

    def relaxed(self) -> "LinearProgram":
        """The same problem with every integrality requirement dropped."""
        return LinearProgram(self.c, self.A, self.row_lo, self.row_hi, self.col_lo, self.col_hi,
                             None, self.c0, self.col_names)

    def with_objective(self, c: np.ndarray, c0: float = 0.0) -> "LinearProgram":
        return LinearProgram(c, self.A, self.row_lo, self.row_hi, self.col_lo, self.col_hi,
                             self.integer, c0, self.col_names)


@dataclass(frozen=True, eq=False)
class ConicProgram:
    """min c·x + c0 s.t. A x + s = b, s ∈ {0}^zero × R₊^nonneg × PSD blocks (see module doc)."""

    c: np.ndarray
    A: sp.csc_matrix
    b: np.ndarray
    zero: int = 0
    nonneg: int = 0
    psd: tuple[int, ...] = ()
    c0: float = 0.0

    def __post_init__(self):
        c = _vec(self.c, None, "c")
        A = sp.csc_matrix(self.A, dtype=np.float64)
        b = _vec(self.b, A.shape[0], "b")
        psd = tuple(int(n) for n in self.psd)
        rows = int(self.zero) + int(self.nonneg) + sum(n * (n + 1) // 2 for n in psd)
        if A.shape != (rows, c.size):
            raise ValueError(f"A is {A.shape}, cones need {rows} rows and c has {c.size} entries")
        for name, value in (("c", c), ("A", A.data), ("b", b)):
            if not np.all(np.isfinite(value)):
                raise ValueError(f"{name} has a non-finite entry")
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "psd", psd)
        object.__setattr__(self, "c0", float(self.c0))


class SolveStatus(Enum):
    """What a backend says about its run. Only certify.py turns a solution into a verdict."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time_limit"
    ITERATION_LIMIT = "iteration_limit"
    NUMERICAL = "numerical"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


@dataclass(frozen=True, eq=False)
class Solution:
    """A backend's answer.

    `objective` is the primal value at `x` (the incumbent for a MILP); `bound` is the solver's
    proven dual bound on the optimum (MILP best bound; for an LP/SDP the dual objective).
    Duals follow the conventions in the module docstring; any of them may be None.
    """

    status: SolveStatus
    backend: str
    seconds: float
    objective: float | None = None
    bound: float | None = None
    x: np.ndarray | None = None
    row_duals: np.ndarray | None = None
    col_duals: np.ndarray | None = None
    message: str = ""
    stats: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    """Resource limits passed to every solve (None = no limit)."""

    time_limit: float | None = None
    node_limit: int | None = None
    mip_gap: float | None = None
    threads: int | None = None
    verbose: bool = False


F = TypeVar("F")


@dataclass(frozen=True, eq=False)
class Lowered(Generic[F]):
    """A form plus `columns`: which variables hold which network quantity (e.g. "x" → input)."""

    form: F
    columns: Mapping[str, slice]
    info: Mapping[str, object] = field(default_factory=dict)

    def read(self, x: np.ndarray, key: str = "x") -> np.ndarray:
        return np.asarray(x)[self.columns[key]]
