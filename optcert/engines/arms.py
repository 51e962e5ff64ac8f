"""The complete methods the `auto` portfolio interleaves ("arms"), each resumable in time slices.

* `SearchArm`: branch and bound as the bnb engine runs it — ReLU splitting by the coordinator
  `Search` on bnb's `CaseTask`, input splitting by the batched `InputSplitSearch`
  (search/input_split.py); progress = the share of the root it has decided, so its remaining
  time can be projected from its pace (`projected`).
* `MilpArm`: the exact big-M MILP (Tjeng et al. 2019) after per-neuron LP tightening, one sign-only
  MILP per undecided violation clause, HiGHS by default. A MILP cannot be paused: each slice runs
  the tightening (resumable, solve by solve) or a MILP with the slice as its time limit, and a MILP
  cut short is started again with the next, longer slice (doubling slices waste at most half).
* `TightenArm`: that per-neuron LP tightening alone, where no MILP arm runs it; the portfolio
  restarts ReLU splitting from the tightened root either way.

Every arm reports certified per-row lower bounds on the folded outputs (and an optional direct
bound on an ANY case's margin); the portfolio keeps the best per row, which is valid whatever arm
gave it. Candidate inputs all go through the case's `check` (float64 re-check). No verdicts here.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from optcert.compiled import CompiledCase
from optcert.engines.bnb import BnbOptions, CaseTask, domain_cap, input_search
from optcert.search.branching import use_input_split
from optcert.search.coordinator import Search, SearchSettings
from optcert.solve.progressive import ResumableTightening
from optcert.spec.problem import Combine


@dataclass
class ArmState:
    """What an arm knows so far: certified row bounds (folded), optional case bound, status
    (None while it runs; proved | falsified | timeout | stuck | memory | node_limit | failed)."""

    rows: np.ndarray
    key: float | None = None
    status: str | None = None
    busy: float = 0.0
    certificate: dict = field(default_factory=dict)


class SearchArm:
    """Branch and bound with one split kind (see module doc): both searches offer start(),
    advance(until), result(status), projected() and busy."""

    def __init__(self, name: str, task: CaseTask, options: BnbOptions, deadline: float):
        self.name, self.task = name, task
        self.search: Any
        if use_input_split(options.split, task.cc.net.n_inputs):
            self.search = input_search(task, options, deadline)
            self._start: Callable[[], str | None] = self.search.start
        else:
            settings = SearchSettings(options.batch, domain_cap(task.cc, options), options.node_limit,
                                      attack_every=5 if options.attack else 0)
            self.search = Search(task, settings, deadline)
            self._start = lambda: self.search.start(task.any_case)
        self.started = False
        self.root_note: str | None = None   # how the root's bounds were obtained, when not by IBP
        self.state = ArmState(np.full(task.cc.case.spec.rows, -np.inf))

    def root(self) -> str | None:
        """Bound the root only (cheap incomplete bounds: an easy case ends here); the status."""
        if not self.started:
            self.started = True
            self._record(self._start())
        return self.state.status

    def advance(self, until: float) -> str | None:
        if not self.started and self.root() is not None:
            return self.state.status
        return self._record(self.search.advance(until))

    def _record(self, status: str | None) -> str | None:
        result = self.search.result(status)
        self.state.rows, self.state.key, self.state.status = result.rows, result.key, status
        self.state.busy = self.search.busy
        self.state.certificate = {"status": status or "running", **result.stats,
                                  "deep_domains": self.task.ctx.deep_domains}
        if self.root_note:
            self.state.certificate["root"] = self.root_note
        return status

    def projected(self) -> float:
        return self.search.projected()


MIN_SOLVE = 0.25   # seconds: a MILP is not started with less time than this left in its slice


class TightenArm:
    """Per-neuron LP tightening of the root's intermediate bounds (Salman et al. 2019's LP-ALL;
    certified by the LPs' duals), resumable in slices of any length; it ends with status
    "tightened", and the portfolio restarts ReLU splitting from the tightened root (bab-refine in
    alpha-beta-CROWN's terms, Wang et al. 2021, with LPs for its MILPs). It decides nothing itself
    except a proof when the tightened output bounds already suffice."""

    name = "tighten"

    def __init__(self, tightening: ResumableTightening):
        self.tightening = tightening
        self.state = ArmState(np.full(tightening.bounds.lower[-1].shape, -np.inf))
        self.state.certificate = {"method": "per-neuron LP tightening (LP-ALL)"}

    resumable = True      # paused solve by solve at any moment

    def projected(self) -> None:
        return None       # no pace to measure: it keeps its prior share

    def advance(self, until: float) -> str | None:
        t = time.monotonic()
        done = tighten_step(self.state, self.tightening, until)
        self.state.busy += time.monotonic() - t
        self.state.status = "tightened" if done else None
        return self.state.status


def tighten_step(state: ArmState, tightening: ResumableTightening, until: float) -> bool:
    """Advance `tightening` until `until`; its output bounds raise the arm's rows and its report goes
    into the arm's certificate. Is it complete?"""
    done = tightening.advance(until)
    state.rows = np.maximum(state.rows, tightening.bounds.lower[-1])
    report = tightening.report
    state.certificate.update({"tightening_seconds": round(sum(report.seconds.values()), 3),
                              "tightening_solves": report.solves, "unstable": report.unstable})
    return done


class MilpArm:
    """Per-neuron LP tightening, then sign-only MILPs per clause (see module doc)."""

    name = "milp"

    def __init__(self, cc: CompiledCase, check: Callable[[np.ndarray], bool],
                 known: Callable[[], np.ndarray], deadline: float, tightening: ResumableTightening,
                 backend: str = "highs"):
        """`check(x)`: the case's counterexample re-check; `known()`: the portfolio's best certified
        row bounds so far (rows already proved need no MILP); `deadline`: the case's;
        `tightening`: the per-neuron LP tightening it runs first (shared with the portfolio)."""
        self.cc, self.check, self.known, self.backend = cc, check, known, backend
        self.deadline, self.tightening = deadline, tightening
        self.state = ArmState(np.full(cc.case.spec.rows, -np.inf))
        self.state.certificate = {"method": "MILP big-M (Tjeng et al. 2019)", "backend": backend,
                                  "trust": "solver", "solves": []}
        self.attempts: dict[tuple[int, ...], int] = {}
        self.lowered: dict[tuple[int, ...], object] = {}   # per clause, built once after tightening
        self.interrupt: Callable[[], bool] | None = None   # True stops a MILP solve (engines/lane.py)

    @property
    def resumable(self) -> bool:
        """Can it be paused at any moment without losing work? Yes while it tightens (solve by
        solve); no once it solves MILPs (one cut short starts again)."""
        return not self.tightening.done

    def projected(self) -> None:
        return None       # a MILP shows no progress until it ends: it keeps its prior share

    def advance(self, until: float) -> str | None:
        t = time.monotonic()
        try:
            self.state.status = self._advance(until)
        except MemoryError:
            self.state.status = "failed"
        self.state.busy += time.monotonic() - t
        return self.state.status

    def _advance(self, until: float) -> str | None:
        if not self.tightening.done:
            if not tighten_step(self.state, self.tightening, until) or time.monotonic() > until:
                return None
        for clause in self.cc.case.clauses():
            if self._decided(clause):
                continue
            if until - time.monotonic() < MIN_SOLVE:
                return None
            outcome = self._solve(clause, until)
            if outcome is not None:
                return outcome
            if not self._decided(clause):
                return None         # cut short by the slice: the next slice starts it again
        return "proved"

    def _decided(self, clause: tuple[int, ...]) -> bool:
        if self.cc.case.combine is Combine.ANY:
            return self.state.key is not None and self.state.key > self._fold()
        best = np.maximum(self.state.rows, self.known())
        return bool(np.any(self.cc.sound(best)[list(clause)] > 0))

    def _fold(self) -> float:
        return float(np.max(self.cc.fold_error, initial=0.0))

    def _solve(self, clause: tuple[int, ...], until: float) -> str | None:
        """One sign-only MILP on `clause`; falsified / stuck when it settles the case, else None."""
        from optcert.engines.linear import SIGN_CUTOFF
        from optcert.forms import SolveStatus
        from optcert.lowerings import Objective, lower_milp
        from optcert.solve.linear import solve_bound

        self.attempts[clause] = self.attempts.get(clause, 0) + 1
        if clause not in self.lowered:
            self.lowered[clause] = lower_milp(self.cc.net, self.tightening.bounds, Objective(clause))
        lowered: Any = self.lowered[clause]
        result = solve_bound(lowered.form, self.backend, deadline=until, cutoff=SIGN_CUTOFF, interrupt=self.interrupt)
        self.state.certificate["solves"].append({"clause": list(clause), **result.summary()})
        if math.isfinite(result.value) or result.value == math.inf:
            if len(clause) == 1:
                self.state.rows[clause[0]] = max(self.state.rows[clause[0]], result.value)
            else:
                self.state.key = result.value if self.state.key is None else max(self.state.key, result.value)
        if result.solution.x is not None and self.check(lowered.read(result.solution.x)):
            return "falsified"
        if result.solution.status is SolveStatus.OPTIMAL and result.value <= 0:
            return "stuck"    # an optimum ≤ 0 whose input does not re-check: a tie or rounding
        return None


def arm_summary(arm: Any) -> dict:
    """The arm's state for the result's certificate."""
    return {**{k: v for k, v in arm.state.certificate.items() if k != "status"},
            "status": arm.state.status or "running", "wall": round(arm.state.busy, 3)}
