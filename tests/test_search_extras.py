"""ReLU-split extras: FSB look-ahead branching and intermediate alpha on deep domains are complete and
correct against brute force, deep alpha never loosens a bound, FSB candidates are unstable
neurons, and a search advanced in slices ends exactly as one run in one go."""
from __future__ import annotations

import numpy as np
import pytest

from optcert.compiled import compile_problem
from optcert.result import Verdict
from optcert.spec.problem import Combine
from optcert.verify import verify
from tests.test_bnb import CASES, _check, _problem, _truth


@pytest.mark.parametrize("variant", [{"branching": "fsb"}, {"deep_alpha": 1}, {"branching": "fsb", "deep_alpha": 2}])
@pytest.mark.parametrize("delta", [-0.02, 0.02])
@pytest.mark.parametrize("seed,sizes,combine", CASES[1::3])
def test_fsb_and_deep_alpha_are_complete(seed, sizes, combine, delta, variant):
    truth = _truth(seed, sizes, combine)
    result = verify(_problem(seed, sizes, combine, shift=-truth + delta), "bnb", 60,
                    {"split": "relu", "attack": False, "batch": 8, **variant})
    _check(result, delta)
    assert result.verdict is (Verdict.PROVED if delta > 0 else Verdict.FALSIFIED), result.reason


def _split_domains(cc, ctx, levels: int):
    from optcert.search.bounding import bound_crown
    from optcert.search.branching import Decision, children

    domains = [bound_crown(ctx, [cc.ibp], 1, np.inf).bounds[0]]
    for _ in range(levels):
        nxt = []
        for d in domains:
            k = next((k for k in (1, 2) if d.unstable(k).any()), None)
            nxt += list(children(d, Decision(k, int(np.argmax(d.unstable(k)))))) if k else [d]
        domains = nxt
    return domains


def test_deep_alpha_only_tightens_and_stays_sound():
    from optcert.bounds.torch_net import DomainBatch
    from optcert.search.bounding import CaseContext, _propagate
    from optcert.search.deep_alpha import refine_deep, split_counts

    cc = compile_problem(_problem(3, (3, 8, 8, 8, 2), Combine.ALL))[0]
    ctx = CaseContext(cc, "cpu", 0, 0.1, False)
    domains = _split_domains(cc, ctx, 3)
    _, inner = _propagate(ctx, domains, 1, np.inf)
    refined, count = refine_deep(ctx, inner, 2, np.inf)
    assert count == int((split_counts(inner, ctx.tn.depth) >= 2).sum()) > 0
    x = np.random.default_rng(0).uniform(cc.lo, cc.hi, size=(20000, cc.lo.size))
    acts = cc.net.forward(x)
    for k in range(1, ctx.tn.depth):
        lo0, hi0 = inner.lower[k].numpy(), inner.upper[k].numpy()
        lo1, hi1 = refined.lower[k].numpy(), refined.upper[k].numpy()
        assert np.all(lo1 >= lo0) and np.all(hi1 <= hi0)
    for b, d in enumerate(domains):      # every sampled input of a domain stays inside its refined bounds
        inside = np.ones(len(x), bool)
        for k in range(1, d.depth):
            inside &= np.all((acts[k - 1] >= d.lower[k] - 1e-12) & (acts[k - 1] <= d.upper[k] + 1e-12), axis=1)
        for k in range(1, ctx.tn.depth):
            z = acts[k - 1][inside]
            assert np.all(z >= refined.lower[k][b].numpy() - 1e-9) and np.all(z <= refined.upper[k][b].numpy() + 1e-9)
    assert isinstance(refined, DomainBatch)


def test_fsb_candidates_are_unstable_and_distinct():
    from optcert.search.bounding import CaseContext, bound_crown
    from optcert.search.branching import top_candidates

    cc = compile_problem(_problem(3, (3, 8, 8, 2), Combine.ALL))[0]
    ctx = CaseContext(cc, "cpu", 0, 0.1, False, fsb=True)
    bounded = bound_crown(ctx, _split_domains(cc, ctx, 2), 1, np.inf)
    assert bounded.decisions is not None
    for b, bounds in enumerate(bounded.bounds):
        nus = {j: v[b] for j, v in bounded.nus.items()}
        cands = top_candidates(bounds, nus, np.ones(cc.case.spec.rows), 3)
        assert len(cands) == len(set(cands))
        assert all(bounds.unstable(c.layer)[c.index] for c in cands)
        d = bounded.decisions[b]
        assert (d is None) == (not cands) and (d is None or d in cands)


def test_a_search_in_slices_ends_as_one_run():
    from optcert.certify import EngineOutput
    from optcert.engines.bnb import BnbOptions, CaseTask
    from optcert.search.coordinator import Search, SearchSettings

    seed, sizes, combine = 2, (3, 6, 6, 2), Combine.ALL
    problem = _problem(seed, sizes, combine, shift=-_truth(seed, sizes, combine) + 0.01)
    cc = compile_problem(problem)[0]
    options = BnbOptions(split="relu", attack=False, batch=4)

    def search():
        out = EngineOutput(lower=[np.full(cc.case.spec.rows, -np.inf)])
        return Search(CaseTask(problem, cc, options, out), SearchSettings(4, 1000, 10 ** 6, 0), np.inf)

    whole = search().run(False)
    sliced = search()
    status = sliced.start(False)
    steps = 0
    while status is None:
        status = sliced.advance(until=0.0)     # a slice already over: one batch at most per call
        steps += 1
        assert steps < 10 ** 4
    part = sliced.result(status)
    assert status == whole.status == "proved"
    assert part.stats["nodes"] == whole.stats["nodes"] and part.key == whole.key
    assert sliced.closed == pytest.approx(1.0) and sliced.projected() == 0.0


def test_exact_leaves_are_not_solved_past_the_deadline():
    """A leaf reached after the deadline claims nothing (its rows stay open) instead of running
    its LPs: the engine keeps its time limit (a batch of 58 leaves once overran it by 30 s)."""
    import time

    from optcert.search.bounding import CaseContext
    from optcert.search.leaves import exact_leaf

    cc = compile_problem(_problem(0, (3, 6, 6, 2), Combine.ALL))[0]
    ctx = CaseContext(cc, "cpu", 0, 0.1, False)
    late = exact_leaf(ctx, cc.ibp, time.monotonic() - 1.0)
    assert not late.solved and np.all(late.rows == -np.inf)
    assert exact_leaf(ctx, cc.ibp, time.monotonic() + 30).solved     # the LP triangle solves in time


def test_a_slow_root_does_not_end_the_search_while_one_split_still_fits():
    """The root's one-domain call carries a pass's whole fixed cost: right after it, a search with
    time for the root again splits one domain (and measures that batch) instead of stopping."""
    import time

    from optcert.certify import EngineOutput
    from optcert.engines.bnb import BnbOptions, CaseTask
    from optcert.search.coordinator import Search, SearchSettings

    seed, sizes, combine = 2, (3, 6, 6, 2), Combine.ALL
    problem = _problem(seed, sizes, combine, shift=-_truth(seed, sizes, combine) + 0.01)
    cc = compile_problem(problem)[0]
    out = EngineOutput(lower=[np.full(cc.case.spec.rows, -np.inf)])
    search = Search(CaseTask(problem, cc, BnbOptions(split="relu", attack=False, batch=4), out),
                    SearchSettings(4, 1000, 10 ** 6, 0), time.monotonic() + 10.0)
    search.start(False)
    search.rate = 6.0                       # as if the root had taken 6 s of the 10
    assert search._affordable(4) == 1       # 2 × 1.25 × 6 s does not fit, the root's 6 s does
    search.stats["batches"] = 1             # after a measured batch the plain rule applies
    assert search._affordable(4) == 0
    search.stats["batches"], search.rate = 0, 9.0
    assert search._affordable(4) == 0       # not even the root's time is left
