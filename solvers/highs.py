"""HiGHS adapter (highspy): the embedded, licence-free default for LPs and MILPs.

The CSR matrix goes to HiGHS in one `passModel(HighsLp)` call. HiGHS's own dual convention for a
minimisation already matches `optcert.forms` (verified in tests/solvers): `row_dual` y has
y_i > 0 when row i's lower side binds, `col_dual` r = c − Aᵀy. For an LP, `Solution.bound` is
HiGHS's objective at optimality (primal and dual objectives agree within its tolerances); a
rigorous bound comes from `optcert.certificates.lp` on the row duals. For a MILP, `objective` is
the incumbent's value (None without one) and `bound` HiGHS's `mip_dual_bound`. "Unbounded" and
"unbounded or infeasible" are only reported after a zero-objective re-solve finds a feasible point.
`write_model` writes a form to an MPS or LP file with HiGHS's own writer (see `optcert.benchmarking.export`).
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from optcert.errors import InvalidOptionError, UnreadableFileError
from optcert.forms import Limits, LinearProgram, Solution, SolveStatus
from solvers.base import LicenceFreeBackend, refusal


def _highspy():
    import highspy  # lazy: an optional dependency until a solve asks for it

    return highspy


def _status_map(hs) -> dict:
    """HiGHS model status → SolveStatus (the ambiguous "unbounded or infeasible" is resolved later)."""
    M = hs.HighsModelStatus
    return {
        M.kOptimal: SolveStatus.OPTIMAL,
        M.kInfeasible: SolveStatus.INFEASIBLE,
        M.kUnbounded: SolveStatus.UNBOUNDED,
        M.kTimeLimit: SolveStatus.TIME_LIMIT,
        M.kIterationLimit: SolveStatus.ITERATION_LIMIT,
        M.kSolutionLimit: SolveStatus.ITERATION_LIMIT,  # node / improving-solution limits
        M.kObjectiveBound: SolveStatus.ITERATION_LIMIT,
        M.kObjectiveTarget: SolveStatus.ITERATION_LIMIT,
        M.kInterrupt: SolveStatus.TIME_LIMIT,         # Limits.interrupt stopped it
        M.kMemoryLimit: SolveStatus.ERROR,
        M.kUnknown: SolveStatus.NUMERICAL,
    }


_banner_done = False
_banner_lock = threading.Lock()


def _new_highs(hs, verbose: bool):
    """A Highs instance with its output switched off unless `verbose`. HiGHS prints its banner
    ("Running HiGHS ...") from C on the first construction in a process, before any option can be
    set: that construction runs with file descriptor 1 pointed at stderr, so standard output only
    ever carries what the caller prints."""
    global _banner_done
    if _banner_done:
        h = hs.Highs()
    else:
        with _banner_lock, _stdout_to_stderr():
            h = hs.Highs()
            _banner_done = True
    h.setOptionValue("output_flag", bool(verbose))
    return h


@contextlib.contextmanager
def _stdout_to_stderr():
    """Point fd 1 at fd 2 for the block (C-level writes included; C buffers flushed before and after)."""
    import ctypes
    import sys

    try:
        libc = ctypes.CDLL(None)
        sys.stdout.flush()
        libc.fflush(None)
        saved = os.dup(1)
    except (OSError, AttributeError, ValueError):   # no fd 1 or no C library: nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


def _set_options(h, options: Mapping[str, Any]) -> None:
    """Set native HiGHS options; an unknown name or a rejected value raises InvalidOptionError."""
    ok = _highspy().HighsStatus.kOk
    for key, value in options.items():
        status, _ = h.getOptionType(str(key))
        if status != ok:
            raise InvalidOptionError(f"highs: unknown option {key!r}")
        if h.setOptionValue(str(key), value) != ok:
            raise InvalidOptionError(f"highs: option {key!r} rejects value {value!r}")


def _limit_options(limits: Limits) -> dict:
    """Translate `Limits` into HiGHS option names."""
    opts: dict[str, Any] = {}
    if limits.time_limit is not None:
        opts["time_limit"] = float(limits.time_limit)
    if limits.node_limit is not None:
        opts["mip_max_nodes"] = int(limits.node_limit)
    if limits.mip_gap is not None:
        opts["mip_rel_gap"] = float(limits.mip_gap)
    if limits.threads is not None:
        opts["threads"] = int(limits.threads)
    if limits.cutoff is not None:  # HiGHS prunes nodes whose bound reaches it ("infeasible" if all do)
        opts["objective_bound"] = float(limits.cutoff)
    return opts


def _to_highs_lp(hs, lp: LinearProgram, zero_cost: bool = False):
    """A HighsLp holding `lp` with its CSR matrix passed in bulk."""
    model = hs.HighsLp()
    model.num_col_, model.num_row_ = lp.n_cols, lp.n_rows
    model.col_cost_ = np.zeros(lp.n_cols) if zero_cost else lp.c
    model.offset_ = 0.0 if zero_cost else lp.c0
    model.col_lower_, model.col_upper_ = lp.col_lo, lp.col_hi
    model.row_lower_, model.row_upper_ = lp.row_lo, lp.row_hi
    A = lp.A
    A.sort_indices()
    model.a_matrix_.format_ = hs.MatrixFormat.kRowwise
    model.a_matrix_.num_col_, model.a_matrix_.num_row_ = lp.n_cols, lp.n_rows
    model.a_matrix_.start_ = A.indptr.astype(np.int32)
    model.a_matrix_.index_ = A.indices.astype(np.int32)
    model.a_matrix_.value_ = A.data
    if lp.is_mip:
        kind = [hs.HighsVarType.kContinuous, hs.HighsVarType.kInteger]
        model.integrality_ = [kind[int(flag)] for flag in lp.integer]
    return model


MODEL_SUFFIXES = (".mps", ".lp")


def portable_name(name: str) -> str:
    """`name` with every character outside [A-Za-z0-9_] replaced by "_" ("x[3]" → "x_3")."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name).rstrip("_") or "_"


def write_model(form: LinearProgram, path: str | Path, row_names: Sequence[str] = (), name: str = "") -> None:
    """Write `form` with HiGHS's own model writer; the suffix picks the format (.mps free MPS, .lp).

    Column names are `form.col_names` and rows `row_names` (either may be empty: HiGHS then writes
    c0, c1, … / r0, r1, …), made portable by `portable_name`. HiGHS keeps the objective offset c0
    (MPS: as minus the right-hand side of the objective row; LP: a constant term); HiGHS 1.16 writes
    the shortest decimal that reads back to the same double (up to 17 significant digits).
    An unknown suffix raises InvalidOptionError; a file HiGHS cannot open, UnreadableFileError.
    """
    path = Path(path)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise InvalidOptionError(f"highs: cannot write {path.name!r}: the suffix must be one of "
                                 f"{', '.join(MODEL_SUFFIXES)}")
    hs = _highspy()
    model = _to_highs_lp(hs, form)
    model.model_name_ = portable_name(name or path.stem)
    if form.col_names:
        model.col_names_ = [portable_name(n) for n in form.col_names]
    if row_names:
        model.row_names_ = [portable_name(n) for n in row_names]
    h = _new_highs(hs, False)
    if h.passModel(model) == hs.HighsStatus.kError:
        raise ValueError("HiGHS rejected the model")
    if h.writeModel(str(path)) == hs.HighsStatus.kError:
        raise UnreadableFileError(f"{path}: HiGHS could not write the model file")


def _run(hs, lp: LinearProgram, options: Mapping[str, Any], verbose: bool, zero_cost: bool = False,
         interrupt: Callable[[], bool] | None = None):
    """Build, configure and run one HiGHS instance; returns it after the run. A MILP's `interrupt`
    is polled through HiGHS's user-interrupt callbacks (its MIP loop, about 70 calls a second, and
    the simplex / IPM solves of its nodes; not its sub-MIP heuristics): True stops the solve with
    model status kInterrupt."""
    h = _new_highs(hs, verbose)
    if interrupt is not None and lp.is_mip:
        def poll(event):
            if interrupt():
                event.interrupt()

        for kind in (h.cbMipInterrupt, h.cbSimplexInterrupt, h.cbIpmInterrupt):
            kind.subscribe(poll)
    _set_options(h, options)
    if h.passModel(_to_highs_lp(hs, lp, zero_cost)) == hs.HighsStatus.kError:
        raise ValueError("HiGHS rejected the model")
    if "threads" in options:  # HiGHS's thread pool is global: re-create it at the requested size
        hs.Highs.resetGlobalScheduler(True)
    h.run()
    return h


def _resolve_ambiguous(hs, lp, options, verbose) -> tuple[SolveStatus, str]:
    """Check an unbounded(-or-infeasible) claim by re-solving with a zero objective (feasibility)."""
    h = _run(hs, lp, options, verbose, zero_cost=True)
    status = h.getModelStatus()
    if status == hs.HighsModelStatus.kOptimal:
        return SolveStatus.UNBOUNDED, "unbounded ray and a feasible point (zero-objective re-solve)"
    if status == hs.HighsModelStatus.kInfeasible:
        return SolveStatus.INFEASIBLE, "zero-objective re-solve proved infeasibility"
    return SolveStatus.ERROR, f"HiGHS: unbounded or infeasible; feasibility re-solve gave {status.name}"


class HighsBackend(LicenceFreeBackend):
    """LP and MILP through highspy; see the module docstring for conventions."""

    name = "highs"
    forms = ("lp", "milp")

    package = "highspy"
    form_type = LinearProgram

    def version(self) -> str:
        hs = _highspy()
        return f"{hs.HIGHS_VERSION_MAJOR}.{hs.HIGHS_VERSION_MINOR}.{hs.HIGHS_VERSION_PATCH}"

    def solve(self, form: LinearProgram, limits: Limits = Limits(),
              raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form`; unknown `raw` keys raise InvalidOptionError, solver trouble is a Solution."""
        start = time.perf_counter()
        refused = refusal(self, form)
        if refused is not None:
            return refused
        hs = _highspy()
        options = {**_limit_options(limits), **dict(raw or {})}
        _set_options(_new_highs(hs, False), options)  # validate before any work
        try:
            h = _run(hs, form, options, limits.verbose, interrupt=limits.interrupt)
            return self._read(hs, h, form, options, limits.verbose, start)
        except Exception as err:  # a solver failure is a status, never a crash
            return Solution(SolveStatus.ERROR, self.name, time.perf_counter() - start,
                            message=f"HiGHS failed: {err}")

    def _read(self, hs, h, lp: LinearProgram, options, verbose: bool, start: float) -> Solution:
        """Turn a finished HiGHS run into a Solution."""
        model_status = h.getModelStatus()
        message = h.modelStatusToString(model_status)
        info, sol = h.getInfo(), h.getSolution()
        if model_status in (hs.HighsModelStatus.kUnboundedOrInfeasible, hs.HighsModelStatus.kUnbounded):
            status, message = _resolve_ambiguous(hs, lp, options, verbose)
        else:
            status = _status_map(hs).get(model_status, SolveStatus.ERROR)
            if status is SolveStatus.INFEASIBLE and lp.is_mip and "objective_bound" in options:
                status, message = SolveStatus.CUTOFF, "no solution below the cutoff (objective_bound)"
            elif status is SolveStatus.OPTIMAL and lp.is_mip and "objective_bound" in options and \
                    info.objective_function_value >= options["objective_bound"]:
                # every node pruned at the cutoff: HiGHS calls its incumbent above it "optimal"
                status, message = SolveStatus.CUTOFF, "no solution below the cutoff (incumbent above it)"
        has_x = info.primal_solution_status == hs.SolutionStatus.kSolutionStatusFeasible
        has_x &= status not in (SolveStatus.INFEASIBLE, SolveStatus.UNBOUNDED, SolveStatus.ERROR)
        x = np.array(sol.col_value, dtype=np.float64) if has_x else None
        objective = float(info.objective_function_value) if x is not None else None
        stats = {"simplex_iterations": float(info.simplex_iteration_count)}
        bound: float | None
        if lp.is_mip:
            dual_bound = float(info.mip_dual_bound)
            settled = status in (SolveStatus.INFEASIBLE, SolveStatus.UNBOUNDED)
            bound = dual_bound if math.isfinite(dual_bound) and not settled else None
            stats["nodes"] = float(info.mip_node_count)
            y = r = None
        else:
            bound = objective if status == SolveStatus.OPTIMAL else None
            duals = status == SolveStatus.OPTIMAL and sol.dual_valid
            y = np.array(sol.row_dual, dtype=np.float64) if duals else None
            r = np.array(sol.col_dual, dtype=np.float64) if duals else None
        return Solution(status, self.name, time.perf_counter() - start, objective, bound, x, y, r,
                        message, stats)


    def session(self, form: LinearProgram, limits: Limits = Limits(),
                raw: Mapping[str, Any] | None = None) -> "HighsSession":
        """A model kept in HiGHS so that many objectives over the same constraints are solved
        warm-started from the previous basis (per-neuron bound tightening)."""
        return HighsSession(self, form, limits, raw)


class HighsSession:
    """`solve(c, c0)`: re-optimise the kept model for a new objective (see HighsBackend.session)."""

    def __init__(self, backend: HighsBackend, form: LinearProgram, limits: Limits, raw):
        self.hs, self.backend, self.form = _highspy(), backend, form
        self.options = {**_limit_options(limits), **dict(raw or {})}
        self.verbose = limits.verbose
        self.h = _new_highs(self.hs, limits.verbose)
        _set_options(self.h, self.options)
        if self.h.passModel(_to_highs_lp(self.hs, form)) == self.hs.HighsStatus.kError:
            raise ValueError("HiGHS rejected the model")

    def solve(self, c: np.ndarray, c0: float = 0.0, time_limit: float | None = None) -> Solution:
        """Minimise c·x + c0 over the kept constraints; failures come back as a Solution."""
        start = time.perf_counter()
        form = self.form.with_objective(c, c0)
        try:
            self.h.changeColsCost(form.n_cols, np.arange(form.n_cols, dtype=np.int32), form.c)
            self.h.changeObjectiveOffset(form.c0)
            # HiGHS compares time_limit with the run time summed over all of this object's runs
            # (ERGO-Code/HiGHS#1331, #1477: to change in 2.0), so each solve's limit is set on top
            # of the time already used; a session's solves would otherwise all stop at once.
            limit = self.options.get("time_limit", math.inf) if time_limit is None else time_limit
            self.h.setOptionValue("time_limit", self.h.getRunTime() + float(limit))
            self.h.run()
            return self.backend._read(self.hs, self.h, form, self.options, self.verbose, start)
        except Exception as err:  # a solver failure is a status, never a crash
            return Solution(SolveStatus.ERROR, self.backend.name, time.perf_counter() - start,
                            message=f"HiGHS failed: {err}")


BACKEND = HighsBackend()
