"""The solver matrix (issue 7, item 3): every (lowering, backend) pair on a fixed instance set.

An *instance* is one violation clause: min over case k's box of max_{i ∈ rows} m̃_i(x) (m̃ the
folded margins). Per instance the intermediate bounds are computed once, each lowering is built
once — MILP big-M (Tjeng et al. 2019), LP triangle (Ehlers 2017), full SDP (Raghunathan et al.
2018), rank-r Burer–Monteiro (Chiu & Zhang 2023, started at the box centre) — and every backend
taking that form solves it within `timeout`. A `Cell` holds the status, the solve's wall time,
the primal value, the solver's own bound and the *certified* lower bound on the clause's true
margin (less the fold error): LP from the row duals (`lp_certificate`, rigorous), MILP the
proven bound less a tolerance (solver-trusted), SDP/BM from the multipliers (`sdp_certificate`,
rigorous) — whatever the status (a time-limited iterate still gives one); None when none follows.

Nothing is faked: an uninstalled, unlicensed or size-limited backend is an UNAVAILABLE cell with
its own reason; so are SDP/BM on a several-row clause and interior-point conic solvers on a PSD
block above `max_ipm_psd` (Newton systems grow like N⁴: Clarabel took 10 GB at N = 166 here).
A time limit, a numerical failure or an exception is a cell with that status.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np

from optcert.benchmarking.conic_files import write_lowered
from optcert.benchmarking.export import file_stem
from optcert.bounds import BoundMethod, Bounds
from optcert.compiled import CompiledCase, compile_case
from optcert.errors import BackendUnavailableError, InvalidOptionError, OptcertError
from optcert.forms import Limits, SolveStatus
from optcert.ir.layered import to_layered
from optcert.solve.progressive import Tightening, intermediate_bounds
from optcert.spec.problem import VerificationProblem


class Lowering(Enum):
    MILP = "milp"
    LP = "lp"
    SDP = "sdp"
    BM = "bm"


#: The `Backend.forms` tag of each lowering's form.
FORM_TAG = {Lowering.MILP: "milp", Lowering.LP: "lp", Lowering.SDP: "conic", Lowering.BM: "lowrank"}
INTERIOR_POINT = frozenset({"clarabel", "mosek"})
SOLVED = frozenset({SolveStatus.OPTIMAL, SolveStatus.INFEASIBLE})


@dataclass(frozen=True, eq=False)
class Instance:
    """Clause `rows` of case `case` of `problem`; `network_id`/`prop_id` key it in a store."""

    name: str
    problem: VerificationProblem
    case: int = 0
    rows: tuple[int, ...] = (0,)
    network_id: str = ""
    prop_id: str = ""

    def __post_init__(self):
        rows = tuple(int(r) for r in self.rows)
        object.__setattr__(self, "rows", rows)
        if not 0 <= self.case < len(self.problem.cases):
            raise InvalidOptionError(f"instance {self.name!r}: case {self.case} is not in the problem")
        n = self.problem.cases[self.case].spec.rows
        if not rows or any(not 0 <= r < n for r in rows):
            raise InvalidOptionError(f"instance {self.name!r}: rows {rows} are not among the case's {n} rows")


@dataclass(frozen=True)
class MatrixSettings:
    """Per-run limits and lowering choices (module doc); `certify_timeout` defaults to `timeout`."""

    timeout: float = 60.0
    bounds: BoundMethod | Tightening = BoundMethod.CROWN   # a Tightening level from the command line
    threads: int = 1
    max_ipm_psd: int = 100
    hidden_boxes: bool = True
    rank: int = 0
    certify_timeout: float | None = None

    def __post_init__(self):
        if not (self.timeout > 0 and self.threads >= 1 and self.max_ipm_psd >= 1 and self.rank >= 0):
            raise InvalidOptionError(f"matrix settings out of range: timeout {self.timeout} (> 0), threads "
                                     f"{self.threads} (≥ 1), max_ipm_psd {self.max_ipm_psd} (≥ 1), "
                                     f"rank {self.rank} (≥ 0)")

    def key_options(self) -> dict:
        return {"timeout": self.timeout, "bounds": self.bounds.value, "threads": self.threads,
                "hidden_boxes": self.hidden_boxes, "rank": self.rank}


@dataclass(frozen=True)
class Cell:
    """One (instance, lowering, backend) run; see the module doc for `certified`."""

    instance: str
    lowering: Lowering
    backend: str
    status: SolveStatus
    seconds: float = 0.0
    objective: float | None = None
    solver_bound: float | None = None
    certified: float | None = None
    trust: str = "none"
    lower_seconds: float = 0.0
    certify_seconds: float = 0.0
    size: str = ""
    message: str = ""

    @property
    def solved(self) -> bool:
        return self.status in SOLVED

    @property
    def ran(self) -> bool:
        return self.status is not SolveStatus.UNAVAILABLE

    @property
    def pair(self) -> str:
        return f"{self.lowering.value}:{self.backend}"

    def label(self) -> str:
        return f"unavailable: {self.message}" if self.status is SolveStatus.UNAVAILABLE else self.status.value

    def as_row(self) -> dict:
        return {f.name: getattr(getattr(self, f.name), "value", getattr(self, f.name)) for f in fields(self)}


def pairs(lowerings: Iterable[Lowering], backends: Iterable[str]) -> list[tuple[Lowering, str]]:
    """Every (lowering, backend) whose backend takes that form (installed or not); InvalidOptionError
    for an unknown backend or when no pair is left."""
    import solvers

    report, backends = solvers.available(), list(backends)
    unknown = [b for b in backends if b not in report]
    if unknown:
        raise InvalidOptionError(f"unknown solver(s) {', '.join(unknown)}; known: {', '.join(report)}")
    lowerings = list(lowerings)
    out = [(lw, b) for lw in lowerings for b in backends if FORM_TAG[lw] in report[b].forms or not report[b].forms]
    if not out:
        forms = ", ".join(lw.value for lw in lowerings)
        raise InvalidOptionError(f"no backend among {', '.join(backends)} solves {forms}")
    return out


@dataclass(frozen=True, eq=False)
class _Prepared:
    cc: CompiledCase
    bounds: Bounds


@dataclass(frozen=True, eq=False)
class _Built:
    """One lowering of an instance: the form a backend solves, what certification needs, or why not."""

    form: Any = None         # LinearProgram, ConicProgram or LowRankSDP
    model: Any = None        # QuadraticModel (SDP/BM)
    conic: Any = None        # Lowered[ConicProgram] (SDP: maps duals to multipliers)
    seconds: float = 0.0
    size: str = ""
    reason: str = ""


class CellMemo(Protocol):
    """Where finished cells go and come back from (e.g. a results store; see bench_cli.StoreMemo)."""

    def get(self, inst: Instance, lowering: Lowering, backend: str) -> Cell | None: ...

    def put(self, inst: Instance, lowering: Lowering, backend: str, cell: Cell) -> None: ...


def run_matrix(instances: Sequence[Instance], todo: Sequence[tuple[Lowering, str]],
               settings: MatrixSettings = MatrixSettings(), memo: CellMemo | None = None,
               export_dir: str | Path | None = None, report: Callable[[Cell], None] | None = None) -> list[Cell]:
    """Every pair of `todo` on every instance, in order. `memo` supplies cells already done and
    receives each new one as it finishes; `export_dir` receives the lowered problems (MPS for
    MILP/LP, CBF and SDPA for the SDP; BM solves the SDP's problem); `report` sees every cell."""
    cells = []
    for inst in instances:
        cells += run_instance(inst, todo, settings, memo, export_dir, report)
    return cells


def run_instance(inst: Instance, todo: Sequence[tuple[Lowering, str]], settings: MatrixSettings,
                 memo: CellMemo | None = None, export_dir: str | Path | None = None,
                 report: Callable[[Cell], None] | None = None) -> list[Cell]:
    """The cells of one instance: bounds once, each lowering once (only if some cell needs it)."""
    cells, prepared = [], None
    for lowering in dict.fromkeys(lw for lw, _ in todo):
        built = None
        for backend in [b for lw, b in todo if lw is lowering]:
            cell = memo.get(inst, lowering, backend) if memo is not None else None
            if cell is None:
                prepared = prepared or _prepare(inst, settings)
                built = built or _build(prepared, lowering, inst, settings, export_dir)
                cell = _solve_cell(inst, prepared, built, lowering, backend, settings)
                if memo is not None:
                    memo.put(inst, lowering, backend, cell)
            cells.append(cell)
            if report is not None:
                report(cell)
    return cells


def _prepare(inst: Instance, settings: MatrixSettings) -> _Prepared:
    """The folded case and its intermediate bounds (computed once per instance)."""
    cc = compile_case(to_layered(inst.problem.network), inst.problem.cases[inst.case], inst.case)
    return _Prepared(cc, intermediate_bounds(cc.net, cc.ibp, settings.bounds))


def _build(prep: _Prepared, lowering: Lowering, inst: Instance, settings: MatrixSettings,
           export_dir: str | Path | None) -> _Built:
    """Lower the instance to `lowering`'s form (and export it); a LoweringError becomes the reason."""
    t = time.perf_counter()
    try:
        built = _lower(prep, lowering, inst.rows, settings)
    except OptcertError as err:
        return _Built(reason=f"lowering failed: {err}")
    built = replace(built, seconds=time.perf_counter() - t)
    if export_dir is not None and built.form is not None and lowering is not Lowering.BM:
        write_lowered(built.form, Path(export_dir) / f"{file_stem(inst.name)}.{lowering.value}",
                      f"optcert solver matrix: {lowering.value} lowering of {inst.name}; minimise")
    return built


def _lower(prep: _Prepared, lowering: Lowering, rows: tuple[int, ...], settings: MatrixSettings) -> _Built:
    from optcert.lowerings import Objective, lower_lp, lower_milp
    from optcert.lowerings.quadratic import relu_qcqp
    from optcert.lowerings.sdp_full import lower_sdp
    from optcert.lowerings.sdp_lowrank import lower_lowrank

    net = prep.cc.net
    if lowering in (Lowering.MILP, Lowering.LP):
        lp = (lower_milp if lowering is Lowering.MILP else lower_lp)(net, prep.bounds, Objective(rows)).form
        return _Built(lp, size=f"{lp.n_cols}x{lp.n_rows}, {int(lp.integer.sum())} int, {lp.A.nnz} nz")
    if len(rows) > 1:
        return _Built(reason=f"not applicable: {lowering.value} lowers one spec row; this clause has {len(rows)}")
    lowered = relu_qcqp(net, prep.bounds, rows[0], settings.hidden_boxes)
    model = lowered.form
    if lowering is Lowering.SDP:
        conic = lower_sdp(model)
        return _Built(conic.form, model, conic, size=f"PSD {model.n + 1}, {model.m} rows")
    rank = settings.rank or len(net.layers) + 1
    form = lower_lowrank(lowered, net, prep.cc.case.box.center, rank).form
    return _Built(form, model, size=f"N {model.n + 1}, rank {rank}, {model.m} rows")


def _refusal(backend: str, built: _Built, lowering: Lowering, settings: MatrixSettings):
    """(adapter, None) if `backend` may run `built`, else (None, the reason)."""
    from solvers import get

    if built.reason:
        return None, built.reason
    try:
        adapter = get(backend)
    except BackendUnavailableError as err:
        return None, str(err).split(": ", 1)[-1]
    except Exception as err:  # an adapter that cannot even load is unavailable, not a crash
        return None, f"adapter failed to load: {type(err).__name__}: {err}"
    fits = adapter.fits(built.form)
    if not fits.available:
        return None, fits.reason
    if lowering is Lowering.SDP and backend in INTERIOR_POINT and max(built.form.psd) > settings.max_ipm_psd:
        return None, (f"skipped: PSD block {max(built.form.psd)} > max_ipm_psd {settings.max_ipm_psd} "
                      "(interior-point memory grows like N^4)")
    return adapter, None


def _solve_cell(inst: Instance, prep: _Prepared, built: _Built, lowering: Lowering, backend: str,
                settings: MatrixSettings) -> Cell:
    """Solve one pair (never raises for a solver's trouble) and certify what came back."""
    base: dict[str, Any] = {"instance": inst.name, "lowering": lowering, "backend": backend,
                            "lower_seconds": built.seconds, "size": built.size}
    adapter, reason = _refusal(backend, built, lowering, settings)
    if adapter is None:
        return Cell(status=SolveStatus.UNAVAILABLE, message=reason, **base)
    t = time.perf_counter()
    try:
        solution = adapter.solve(built.form, Limits(time_limit=settings.timeout, threads=settings.threads))
    except Exception as err:  # a solver failure is a cell, never a crash
        return Cell(status=SolveStatus.ERROR, seconds=time.perf_counter() - t,
                    message=f"{type(err).__name__}: {err}", **base)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    value, trust, note = _certify(lowering, built, solution, settings)
    certified = _margin(prep.cc, inst.rows, value)
    message = "; ".join(m for m in (solution.message, note) if m)
    return Cell(status=solution.status, seconds=seconds, objective=solution.objective, solver_bound=solution.bound,
                certified=certified, trust=trust, certify_seconds=time.perf_counter() - t, message=message, **base)


def _certify(lowering: Lowering, built: _Built, solution, settings: MatrixSettings) -> tuple[float, str, str]:
    """(lower bound on the form's optimum or −inf, trust, note) from whatever the solver returned."""
    from optcert.certificates.sdp import certify
    from optcert.lowerings.sdp_full import multipliers
    from optcert.solve.linear import interpret

    try:
        if built.model is None:
            bound = interpret(built.form, solution)
            return bound.value, bound.trust.value, ""
        if solution.row_duals is None:
            return -math.inf, "none", ""
        y, lam = solution.row_duals, solution.objective
        if lowering is Lowering.SDP:
            y = multipliers(built.conic, y)
            lam = solution.bound if solution.bound is not None else lam
        budget = settings.certify_timeout or settings.timeout
        return certify(built.model, y, lam, deadline=time.monotonic() + budget).bound, "rigorous", ""
    except Exception as err:  # a certificate that cannot be computed is no bound, not a crash
        return -math.inf, "none", f"certification failed: {type(err).__name__}: {err}"


def _margin(cc: CompiledCase, rows: tuple[int, ...], value: float) -> float | None:
    """A lower bound on the clause's true margin from one on its folded value (None for −inf/NaN)."""
    if not value > -math.inf:
        return None
    if value == math.inf:
        return value
    return float(np.nextafter(value - float(np.max(cc.fold_error[list(rows)])), -np.inf))
