"""The `auto` portfolio's first step, before torch is imported: every case's root bounded in numpy
by the checker's own rigorous CROWN (checking/replay.py `root`: IBP, then CROWN on the neurons left
unstable, recipe crown-unstable; Zhang et al. 2018), and the run ends PROVED when that already proves
every case; else the box centre and `SAMPLES` uniform points per case are evaluated in float64, and
the run ends FALSIFIED when one of them passes the counterexample re-check (certify.py).

Why: on small instances start-up dominates — ACAS Xu 4_8 prop_3 is proved by one bounded domain in
14 ms of engine time, while `import torch` costs 0.9 s of its 1.3 s. What this step proves, the checker
re-derives exactly: the evidence is a one-leaf tree (checking/tree.py) whose value is the checker's
own number. Anything it does not prove goes to the portfolio unchanged (the cost: one numpy CROWN
pass, milliseconds on nets of a few thousand neurons; larger nets skip this step).
"""
from __future__ import annotations

import math
import time

import numpy as np

from optcert.certify import EngineOutput
from optcert.compiled import CompiledCase
from optcert.spec.problem import VerificationProblem

QUICK_NEURONS = 4096     # ReLU neurons at most (and inputs ≤ this) for the numpy root pass
QUICK_SHARE = 0.05       # of the time left, at most, is this step's (it is skipped past it)
SAMPLES = 2000           # uniform points per case tried as counterexamples (seeded)


def quick_root(problem: VerificationProblem, compiled: list[CompiledCase], deadline: float) -> EngineOutput | None:
    """The portfolio's result when the checker's root CROWN proves every case or a sampled input
    falsifies one (module doc), else None."""
    sizes = [cc.net.n_inputs for cc in compiled] + [sum(layer.size for layer in cc.net.hidden) for cc in compiled]
    if not compiled or max(sizes) > QUICK_NEURONS:
        return None
    start = time.monotonic()
    budget = QUICK_SHARE * (deadline - start) if math.isfinite(deadline) else math.inf
    proved = _root_proof(problem, compiled, start, budget)
    if proved is not None or time.monotonic() - start > budget:
        return proved
    found = _sampled_counterexample(problem, compiled)
    if found is None:
        return None
    k, x = found
    how = {"method": f"uniform sampling in numpy before torch ({SAMPLES} points, engines/quick.py)"}
    cases = [_summary(cc, "sampling", how, "falsified" if cc.index == k else None) for cc in compiled]
    certificate = {"method": "auto portfolio", "cases": cases, "decided_by": [c["decided_by"] for c in cases]}
    return EngineOutput(lower=[np.full(cc.case.spec.rows, -np.inf) for cc in compiled], candidates=[(k, x)],
                        certificate=certificate)


def _root_proof(problem: VerificationProblem, compiled: list[CompiledCase], start: float,
                budget: float) -> EngineOutput | None:
    """PROVED by the checker's CROWN at every case's root, with its one-leaf trees; else None."""
    from optcert.checking.bisect import leaf_value
    from optcert.checking.evidence import evidence
    from optcert.checking.net import check_net
    from optcert.checking.replay import root
    from optcert.checking.tree import encode_tree

    checker = check_net(problem.network)
    rows: list[np.ndarray] = []
    keys: list[float | None] = []
    entries: list[dict] = []
    cases: list[dict] = []
    for cc in compiled:
        case = problem.cases[cc.index]
        d = root(checker, case)
        value = leaf_value(case, d)
        if not value > 0 or time.monotonic() - start > budget:
            return None
        rows.append(np.array(d.out_lo, dtype=np.float64))
        keys.append(value)
        entries.append({"case": cc.index, "tree": encode_tree({()}, {(): value}, [], {})})
        cases.append(_summary(cc, "crown", {"method": "CROWN at the root in numpy before torch (engines/quick.py)",
                                            "bound": value, "seconds": round(time.monotonic() - start, 4)}, "proved"))
    certificate = {"method": "auto portfolio", "cases": cases, "decided_by": ["crown"] * len(compiled),
                   "evidence": evidence("crown-unstable", entries)}
    return EngineOutput(lower=rows, case_lower=keys, certificate=certificate)


def _summary(cc: CompiledCase, step: str, decision: dict, outcome: str | None) -> dict:
    """A case's entry in the certificate, in the portfolio's layout (auto.py `summary`); `outcome`
    None: the step did not decide this case."""
    event = f"{step} root" if step == "crown" else step
    return {"case": cc.index, "decided_by": step if outcome else None, "plan": [step], "arms": {},
            "decision": decision, "falsifier_rounds": 0, "schedule": [[event, round(time.monotonic(), 3), outcome]]}


def _sampled_counterexample(problem: VerificationProblem, compiled: list[CompiledCase]):
    """(case index, x) of a sampled input that passes the counterexample re-check, or None."""
    from optcert.certify import check_counterexample

    rng = np.random.default_rng(0)
    for cc in compiled:
        box = cc.case.box
        xs = np.vstack([(box.lo + box.hi) / 2, box.lo + (box.hi - box.lo) * rng.random((SAMPLES, box.lo.size))])
        margins = cc.case.spec.margins(problem.network.forward(xs))
        score = np.min([margins[:, list(clause)].max(axis=1) for clause in cc.case.clauses()], axis=0)
        best = int(np.argmin(score))
        if score[best] < 0 and check_counterexample(problem, cc, xs[best]) is not None:
            return cc.index, xs[best]
    return None
