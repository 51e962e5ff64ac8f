"""The `auto` portfolio's first step, before torch is imported: every case's root bounded in numpy
by the checker's own rigorous CROWN (checking/replay.py `root`: IBP, then CROWN on the neurons left
unstable, recipe crown-unstable; Zhang et al. 2018), and the run ends PROVED when that already proves
every case.

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


def quick_root(problem: VerificationProblem, compiled: list[CompiledCase], deadline: float) -> EngineOutput | None:
    """The portfolio's result when the checker's root CROWN proves every case, else None."""
    from optcert.checking.bisect import leaf_value
    from optcert.checking.evidence import evidence
    from optcert.checking.net import check_net
    from optcert.checking.replay import root
    from optcert.checking.tree import encode_tree

    net = problem.network
    sizes = [cc.net.n_inputs for cc in compiled] + [sum(layer.size for layer in cc.net.hidden) for cc in compiled]
    if not compiled or max(sizes) > QUICK_NEURONS:
        return None
    start = time.monotonic()
    budget = QUICK_SHARE * (deadline - start) if math.isfinite(deadline) else math.inf
    checker = check_net(net)
    rows: list[np.ndarray] = []
    keys: list[float | None] = []
    entries: list[dict] = []
    summaries: list[dict] = []
    for cc in compiled:
        case = problem.cases[cc.index]
        d = root(checker, case)
        value = leaf_value(case, d)
        if not value > 0 or time.monotonic() - start > budget:
            return None
        rows.append(np.array(d.out_lo, dtype=np.float64))
        keys.append(value)
        entries.append({"case": cc.index, "tree": encode_tree({()}, {(): value}, [], {})})
        summaries.append({"case": cc.index, "decided_by": "crown", "plan": ["crown"], "arms": {},
                          "decision": {"method": "CROWN at the root in numpy before torch (engines/quick.py)",
                                       "bound": value, "seconds": round(time.monotonic() - start, 4)},
                          "falsifier_rounds": 0, "schedule": [["crown root", round(time.monotonic(), 3), "proved"]]})
    certificate = {"method": "auto portfolio", "cases": summaries, "decided_by": ["crown"] * len(compiled),
                   "evidence": evidence("crown-unstable", entries)}
    return EngineOutput(lower=rows, case_lower=keys, certificate=certificate)
