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
from typing import Any, Mapping

import numpy as np

from optcert.bounds.layer_bounds import Bounds
from optcert.bounds.methods import BoundMethod, BoundSettings, compute_bounds
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


def tighten(net: LayeredNet, given: Bounds, level: Tightening, backend: str = "highs",
            settings: BoundSettings | None = None, neuron_time_limit: float = 2.0,
            milp_tolerance: float = 1e-6, deadline: float = math.inf,
            raw: Mapping[str, Any] | None = None) -> tuple[Bounds, TighteningReport]:
    """Bounds on every layer of `net`, tightened up to `level`, and what it took. `raw`: native
    parameters of `backend` for the per-neuron solves."""
    report = TighteningReport()
    bounds = given
    for stage in _stages(level):
        t = time.perf_counter()
        if stage in (Tightening.CROWN, Tightening.ALPHA_CROWN):
            bounds = compute_bounds(net, [bounds], BoundMethod(stage.value), settings, deadline)[0]
        else:
            bounds = _per_neuron(net, bounds, stage, (backend, raw), settings, neuron_time_limit,
                                 milp_tolerance, deadline, report)
        report.seconds[stage.value] = time.perf_counter() - t
        report.unstable[stage.value] = [c["unstable"] for c in bounds.counts()]
        if time.monotonic() > deadline:
            report.stopped = f"deadline reached during {stage.value} tightening"
            break
    return bounds, report


def _stages(level: Tightening) -> list[Tightening]:
    """CROWN, then alpha-CROWN only when asked for (it improves the output layer alone, which
    the LP/MILP stages do not read), then the per-neuron stages up to `level`."""
    stages = _ORDER[1:_ORDER.index(level) + 1]
    return [s for s in stages if s is not Tightening.ALPHA_CROWN or level is Tightening.ALPHA_CROWN]


def _per_neuron(net, bounds: Bounds, stage: Tightening, backend: tuple, settings, neuron_time_limit: float,
                milp_tolerance: float, deadline: float, report: TighteningReport) -> Bounds:
    """Per-neuron LP or MILP bounds on the unstable neurons of layers 2..L−1, layer by layer."""
    from optcert.lowerings import lower_lp, lower_milp, pre_activation_objectives

    lower = lower_milp if stage is Tightening.MILP else lower_lp
    for k in range(2, len(net.layers)):
        todo = np.flatnonzero(bounds.unstable(k))
        if todo.size == 0:
            continue
        lowered = lower(net, bounds, upto=k)
        G, g0 = pre_activation_objectives(lowered, net, k)
        session = BoundSession(lowered.form, backend[0], milp_tolerance, backend[1])
        lo, hi = bounds.lower[k].copy(), bounds.upper[k].copy()
        for i in todo:
            if time.monotonic() > deadline:
                return bounds.with_layer(k, lo, hi)
            lo[i] = max(lo[i], _solve(session, G[i], g0[i], neuron_time_limit, deadline, report))
            if lo[i] < 0:  # still possibly inactive: is it possibly active?
                hi[i] = min(hi[i], -_solve(session, -G[i], -g0[i], neuron_time_limit, deadline, report))
        bounds = compute_bounds(net, [bounds.with_layer(k, lo, hi)], BoundMethod.CROWN, settings, deadline)[0]
    return bounds


def _solve(session, g_row, g0: float, time_limit: float, deadline: float, report: TighteningReport) -> float:
    """A certified (LP) or solver-trusted (MILP) lower bound on g·cols + g0; −inf when none.
    An infeasible prefix (an empty split domain) claims nothing here: callers prune it."""
    result = session.bound(g_row, g0, time_limit, deadline)
    report.solves += 1
    report.solver_trusted |= result.trust is Trust.SOLVER
    return result.value if math.isfinite(result.value) else -math.inf


def intermediate_bounds(net: LayeredNet, given: Bounds, method: "Tightening | BoundMethod",
                        backend: str = "highs") -> Bounds:
    """Bounds on every layer of `net` by one of the methods the command line offers for `--bounds`
    (a `Tightening` level, as the engines take, or a `BoundMethod` from Python, e.g. Fast-Lin)."""
    if isinstance(method, BoundMethod):
        return compute_bounds(net, [given], method)[0]
    return tighten(net, given, method, backend)[0]
