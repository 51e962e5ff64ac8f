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
from typing import TYPE_CHECKING, Any, Callable, Generic, Mapping, TypeVar

import numpy as np

if TYPE_CHECKING:     # scipy is imported where a form is built (it costs 0.15 s of every start-up)
    import scipy.sparse as sp


def _vec(value, n: int | None, name: str, fill: float | None = None) -> np.ndarray:
    if value is None:
        assert n is not None, f"{name}: a size is needed for a default"
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
    integer: np.ndarray = None  # type: ignore[assignment]  # None: all continuous; an array after __post_init__
    c0: float = 0.0
    col_names: tuple[str, ...] = ()

    def __post_init__(self):
        c = _vec(self.c, None, "c")
        n = c.size
        import scipy.sparse as sp

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
                             np.zeros(self.n_cols, bool), self.c0, self.col_names)

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
        import scipy.sparse as sp

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


@dataclass(frozen=True, eq=False)
class QuadraticModel:
    """The Shor (SDP) relaxation of a QCQP over v ∈ Rⁿ, written over P = [1 vᵀ; v V] ⪰ 0:

        min ⟨C, P⟩  s.t.  ⟨Q_i, P⟩ = 0 (`equality[i]`),  ⟨Q_i, P⟩ ≤ 0 (otherwise).

    Symmetric (n+1)×(n+1) matrices are stored over *slots*, the upper-triangle coordinates
    (slot_row[s] ≤ slot_col[s]) any coefficient touches: a vector q over slots means
    ⟨Q, P⟩ = Σ_s q_s P[slot_row[s], slot_col[s]], i.e. Q_ab = q_s on the diagonal, q_s / 2 off it.
    Index 0 is the constant 1 (P_00 = 1 is implied, not a row); variable i of v is index i + 1.
    `center` c and `radius2` r² describe a box around every variable (each feasible point has
    V_ii − 2c_i v_i + c_i² ≤ r_i², e.g. from a box constraint v_i² − s_i v_i + p_i ≤ 0 with
    c = s/2, r² ≥ c² − p), so the centred matrix P' = H⁻¹PH⁻ᵀ, H = [1 0; c I], has
    tr(P') ≤ 1 + Σ r_i²; None when some variable has no box (then no trace bound exists).
    `row_slack` t ≥ 0 (None: all 0): the rows the relaxation must hold at every network point are
    ⟨Q_i, P⟩ ≤ t_i (inequality) and |⟨Q_i, P⟩| ≤ t_i (equality) — room for the rounding of
    coefficients composed in floating point; a certificate from multipliers y subtracts Σ|y_i| t_i.
    """

    n: int
    slot_row: np.ndarray
    slot_col: np.ndarray
    objective: np.ndarray
    constraints: sp.csr_matrix
    equality: np.ndarray
    center: np.ndarray | None = None
    radius2: np.ndarray | None = None
    row_slack: np.ndarray | None = None

    def __post_init__(self):
        s = self.slot_row.size
        if self.row_slack is not None and (self.row_slack.shape != (self.constraints.shape[0],)
                                           or not np.all(self.row_slack >= 0)):
            raise ValueError("row_slack needs one nonnegative entry per constraint row")
        if self.slot_col.size != s or self.objective.size != s or self.constraints.shape[1] != s:
            raise ValueError("slot arrays, objective and constraint columns must agree")
        if np.any(self.slot_row > self.slot_col) or self.slot_col.max(initial=0) > self.n:
            raise ValueError("slots must be upper-triangle coordinates of an (n+1)×(n+1) matrix")
        if self.equality.shape != (self.constraints.shape[0],):
            raise ValueError("one equality flag per constraint row")
        if (self.center is None) != (self.radius2 is None) or (
                self.center is not None and self.radius2 is not None and (
                    self.center.shape != (self.n,) or self.radius2.shape != (self.n,))):
            raise ValueError("center and radius2 go together, one entry per variable")

    @property
    def n_slots(self) -> int:
        return int(self.slot_row.size)

    @property
    def m(self) -> int:
        return int(self.constraints.shape[0])

    def dense(self, q: np.ndarray) -> np.ndarray:
        """The symmetric (n+1)×(n+1) matrix of slot coefficients q (Q_ab = q_s / 2 off the diagonal)."""
        Q = np.zeros((self.n + 1, self.n + 1))
        half = np.where(self.slot_row == self.slot_col, 1.0, 0.5) * q
        np.add.at(Q, (self.slot_row, self.slot_col), half)
        off = self.slot_row != self.slot_col
        np.add.at(Q, (self.slot_col[off], self.slot_row[off]), half[off])
        return Q

    def values(self, P: np.ndarray) -> np.ndarray:
        """P's entries at the slots, so that ⟨Q, P⟩ = q · values(P)."""
        return P[self.slot_row, self.slot_col]

    def with_objective(self, objective: np.ndarray) -> "QuadraticModel":
        return QuadraticModel(self.n, self.slot_row, self.slot_col, np.asarray(objective, dtype=np.float64),
                              self.constraints, self.equality, self.center, self.radius2, self.row_slack)


@dataclass(frozen=True, eq=False)
class LowRankSDP:
    """The rank-r Burer–Monteiro restriction of a `QuadraticModel`: P = U Uᵀ with
    U = [1 0; u V] ((n+1) × r), so P_00 = 1 by construction (Burer & Monteiro 2003).
    `init` is a starting U (e.g. the PGD point with V ≈ 0), or None."""

    model: QuadraticModel
    rank: int
    init: np.ndarray | None = None

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"rank must be ≥ 1, got {self.rank}")
        if self.init is not None and self.init.shape != (self.model.n + 1, self.rank):
            raise ValueError(f"init has shape {self.init.shape}, expected {(self.model.n + 1, self.rank)}")

    def start(self) -> np.ndarray:
        """The starting U; ValueError when the lowering gave none."""
        if self.init is None:
            raise ValueError("this LowRankSDP has no starting point")
        return self.init


class SolveStatus(Enum):
    """What a backend says about its run. Only certify.py turns a solution into a verdict."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    CUTOFF = "cutoff"            # MILP with Limits.cutoff: proved that no solution has objective < cutoff
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
    cutoff: float | None = None  # MILP: only objectives below it matter (status CUTOFF if none)
    # MILP: polled during the solve by backends that can stop one (HiGHS); True stops it, as a
    # time limit would (status TIME_LIMIT, its proven bound kept). Others run to their time limit.
    interrupt: Callable[[], bool] | None = None


F = TypeVar("F")


@dataclass(frozen=True, eq=False)
class Lowered(Generic[F]):
    """A form plus `columns`: which variables hold which network quantity (e.g. "x" → input)."""

    form: F
    columns: Mapping[str, slice]
    info: Mapping[str, Any] = field(default_factory=dict)

    def read(self, x: np.ndarray, key: str = "x") -> np.ndarray:
        return np.asarray(x)[self.columns[key]]
