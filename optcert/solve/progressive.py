"""Progressive bound tightening (MIPVerify's screen; Tjeng et al. 2019, §4.2):
IBP → CROWN → alpha-CROWN → per-neuron LP → per-neuron MILP, each stage starting from the last.

The per-neuron stages minimise and maximise every *unstable* pre-activation of ReLU layer k
(k ≥ 2: layer 1 is affine in the input, so its interval bounds are already exact) over the
lowering of layers 1..k−1 built from the bounds tightened so far; doing this on every layer is
Salman et al.'s (2019) "LP-ALL". LP bounds are certified from the solver's duals
(`lp_certificate`, Neumaier & Shcherbina 2004). MILP bounds are the solver's proven dual bound
less `milp_tolerance` (1 + |bound|) — *solver-trusted*, and reported as such. After each layer,
CROWN re-bounds the deeper layers with the tighter intermediate bounds (cheap, and it often
stabilises neurons before their LPs are even posed).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Mapping

import numpy as np

from optcert.bounds.crown import Interrupted
from optcert.bounds.layer_bounds import Bounds
from optcert.bounds.methods import BoundMethod, BoundSettings, compute_bounds
from optcert.forms import SolveStatus
from optcert.ir.layered import LayeredNet
from optcert.solve.linear import BoundSession, Trust


class Tightening(Enum):
    """How far to tighten, each level including the ones before it."""

    IBP = "ibp"
    CROWN = "crown"
    ALPHA_CROWN = "alpha-crown"
    LP = "lp-all"      # per-neuron LP on every layer (Salman et al.'s LP-ALL)
    MILP = "milp"      # per-neuron MILP (time-limited) after the LPs


_ORDER = list(Tightening)


@dataclass
class TighteningReport:
    """Seconds per stage, solves, unstable neurons per layer after each stage, trust level."""

    seconds: dict = field(default_factory=dict)
    solves: int = 0
    unstable: dict = field(default_factory=dict)
    solver_trusted: bool = False
    stopped: str = ""
    skipped: int = 0     # unstable neurons left at their CROWN bounds by the per-layer time limit


def tighten(net: LayeredNet, given: Bounds, level: Tightening, backend: str = "highs",
            settings: BoundSettings | None = None, neuron_time_limit: float = 2.0,
            milp_tolerance: float = 1e-6, deadline: float = math.inf,
            raw: Mapping[str, Any] | None = None,
            layer_time_limit: float | None = None) -> tuple[Bounds, TighteningReport]:
    """Bounds on every layer of `net`, tightened up to `level`, and what it took. `raw`: native
    parameters of `backend` for the per-neuron solves. At `deadline` the bounds tightened so far
    are returned (valid, looser) and the report says where it stopped. `layer_time_limit`: solve
    seconds per layer and stage (None: every unstable neuron is solved)."""
    run = ResumableTightening(net, given, level, backend, settings, neuron_time_limit, milp_tolerance, raw,
                              layer_time_limit)
    run.advance(deadline)
    return run.bounds, run.report


class ResumableTightening:
    """`tighten` that can be advanced in slices of any length (the `auto` portfolio's arms): each
    stage and each per-neuron solve finished is kept, and a solve cut short by the end of a slice
    is posed again in the next one, so slices waste nothing. Run to the end it gives the same
    bounds as `tighten(net, given, level, …)`; `bounds` is valid at any point.

    Each layer's neurons are solved loosest first (the triangle relaxation's height
    −l·u/(u−l) at the pre-activation, largest first), so that a `layer_time_limit` (seconds of
    solving per layer and stage; None: no limit) spends its time where the relaxation is worst,
    as alpha-beta-CROWN's time-limited MILP refinement of intermediate bounds does."""

    def __init__(self, net: LayeredNet, given: Bounds, level: Tightening, backend: str = "highs",
                 settings: BoundSettings | None = None, neuron_time_limit: float = 2.0,
                 milp_tolerance: float = 1e-6, raw: Mapping[str, Any] | None = None,
                 layer_time_limit: float | None = None):
        self.net, self.bounds, self.level, self.settings = net, given, level, settings
        self.backend, self.neuron_time_limit, self.milp_tolerance = (backend, raw), neuron_time_limit, milp_tolerance
        self.layer_time_limit = math.inf if layer_time_limit is None else layer_time_limit
        self.report = TighteningReport()
        self.done = False
        self._until = math.inf
        self._stage = Tightening.CROWN
        self._ticked = 0.0              # perf_counter() up to which work is charged to a stage
        self._layer: tuple | None = None   # (k, lo, hi) of the layer being tightened
        self._steps = self._run()
        self.interrupt: Callable[[], bool] | None = None   # True stops a bound pass (engines/lane.py)

    def advance(self, until: float) -> bool:
        """Work until `until` (monotonic seconds) or the end; is the tightening complete?"""
        if self.done:
            return True
        self._until, self._ticked = until, time.perf_counter()
        try:
            self.bounds = next(self._steps)
            self.report.stopped = f"deadline reached during {self._stage.value} tightening"
        except StopIteration:
            self.done, self.report.stopped = True, ""
        self._tick()
        return self.done

    def _tick(self) -> None:
        """Charge the work since the last tick to the current stage's seconds."""
        now, name = time.perf_counter(), self._stage.value
        self.report.seconds[name] = self.report.seconds.get(name, 0.0) + now - self._ticked
        self._ticked = now

    def _so_far(self) -> Bounds:
        """The bounds so far, with the neurons of the layer in progress solved up to now."""
        if self._layer is None:
            return self.bounds
        k, lo, hi = self._layer
        return self.bounds.with_layer(k, lo.copy(), hi.copy())

    def _run(self):
        """The stages in order; yields the bounds so far whenever the slice is over."""
        for stage in _stages(self.level):
            self._tick()
            self._stage = stage
            if stage in (Tightening.CROWN, Tightening.ALPHA_CROWN):   # not cut by a slice's end
                self.bounds = yield from self._bounded(BoundMethod(stage.value))
            else:
                yield from self._per_neuron(stage)
            self.report.unstable[stage.value] = [c["unstable"] for c in self.bounds.counts()]

    def _per_neuron(self, stage: Tightening):
        """Per-neuron LP or MILP bounds on the unstable neurons of layers 2..L−1, layer by layer,
        loosest first, within `layer_time_limit` solve seconds per layer (`self.bounds` updated
        after each layer)."""
        from optcert.lowerings import lower_lp, lower_milp, pre_activation_objectives

        lower = lower_milp if stage is Tightening.MILP else lower_lp
        net = self.net
        for k in range(2, len(net.layers)):
            todo = np.flatnonzero(self.bounds.unstable(k))
            if todo.size == 0:
                continue
            lowered = lower(net, self.bounds, upto=k)
            G, g0 = pre_activation_objectives(lowered, net, k)
            session = BoundSession(lowered.form, self.backend[0], self.milp_tolerance, self.backend[1])
            lo, hi = self.bounds.lower[k].copy(), self.bounds.upper[k].copy()
            self._layer = (k, lo, hi)
            todo = todo[np.argsort(lo[todo] * hi[todo] / (hi[todo] - lo[todo]), kind="stable")]
            solving = 0.0                        # solve seconds spent on this layer
            for n, i in enumerate(todo):
                if solving >= self.layer_time_limit:
                    self.report.skipped += todo.size - n
                    break
                for sign in (1.0, -1.0):
                    if sign < 0 and (lo[i] >= 0 or solving >= self.layer_time_limit):
                        break                    # stable active (no upper solve needed) or out of time
                    value, took = yield from self._solved(session, sign * G[i], sign * g0[i],
                                                          self.layer_time_limit - solving)
                    solving += took
                    if sign > 0:
                        lo[i] = max(lo[i], value)
                    else:
                        hi[i] = min(hi[i], -value)
            self.bounds, self._layer = self.bounds.with_layer(k, lo, hi), None
            self.bounds = yield from self._bounded(BoundMethod.CROWN)

    def _bounded(self, method: BoundMethod):
        """`method`'s bounds from `self.bounds`. Not cut by the end of a slice (it may run past it),
        but by `interrupt()`: then it pauses (yields the bounds so far) and starts again when resumed."""
        while True:
            try:
                return compute_bounds(self.net, [self.bounds], method, self.settings, self._until,
                                      stop=self.interrupt)[0]
            except Interrupted:
                yield self._so_far()

    def _solved(self, session, g_row, g0: float, budget: float):
        """(lower bound on g·x + g0, solve seconds) within min(neuron_time_limit, budget) seconds of
        solving. Pauses (yields the bounds so far) whenever the slice is over; a solve the slice cut
        short is posed again in the next one (HiGHS resumes from its basis)."""
        took = 0.0
        while True:
            if time.monotonic() >= self._until:
                yield self._so_far()
                continue
            limit = min(self.neuron_time_limit, budget - took)
            short = self._until - time.monotonic() < limit
            began = time.perf_counter()
            value, limited = _solve(session, g_row, g0, limit, self._until, self.report)
            took += time.perf_counter() - began
            if not (short and limited):
                return value, took


def _stages(level: Tightening) -> list[Tightening]:
    """CROWN, then alpha-CROWN only when asked for (it improves the output layer alone, which
    the LP/MILP stages do not read), then the per-neuron stages up to `level`."""
    stages = _ORDER[1:_ORDER.index(level) + 1]
    return [s for s in stages if s is not Tightening.ALPHA_CROWN or level is Tightening.ALPHA_CROWN]


def _solve(session, g_row, g0: float, time_limit: float, deadline: float,
           report: TighteningReport) -> tuple[float, bool]:
    """A certified (LP) or solver-trusted (MILP) lower bound on g·cols + g0 (−inf when none), and
    whether the solver stopped at its time limit. An infeasible prefix (an empty split domain)
    claims nothing here: callers prune it."""
    result = session.bound(g_row, g0, time_limit, deadline)
    report.solves += 1
    report.solver_trusted |= result.trust is Trust.SOLVER
    limited = result.solution.status in (SolveStatus.TIME_LIMIT, SolveStatus.ITERATION_LIMIT)
    return (result.value if math.isfinite(result.value) else -math.inf), limited


def intermediate_bounds(net: LayeredNet, given: Bounds, method: "Tightening | BoundMethod",
                        backend: str = "highs") -> Bounds:
    """Bounds on every layer of `net` by one of the methods the command line offers for `--bounds`
    (a `Tightening` level, as the engines take, or a `BoundMethod` from Python, e.g. Fast-Lin)."""
    if isinstance(method, BoundMethod):
        return compute_bounds(net, [given], method)[0]
    return tighten(net, given, method, backend)[0]
