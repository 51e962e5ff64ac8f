"""Per-domain bounding functions of the `bnb` engine (table `BOUNDING`), batched in torch.

* `crown`: CROWN on every ReLU layer under the domain's splits (recomputed from the first layer a
  split can change, and only for the neurons still unstable), then one backward pass on the
  output rows;
* `alpha-crown`: the same, then the output's lower slopes optimised by Adam, with beta-CROWN
  multipliers (Wang et al. 2021, "Beta-CROWN: efficient bound propagation with per-neuron split
  constraints") on the split neurons. ANY cases bound a convex combination of the rows instead
  (`_optimise_output`). Every iterate is a certified dual bound (bounds/crown.py: any multipliers
  are valid), so neither slopes nor betas can make a bound unsound. The branching still reads
  CROWN's multipliers: with the optimised ones the input-split smear chose so badly that ACAS Xu
  3_1 prop_1 took > 4000 domains instead of 403 (ANY cases: 1079 → 789 on 1_1 prop_2);
* `lp`: CROWN, then the LP triangle (Ehlers 2017) with the split constraints, certified from its
  duals, on each domain CROWN leaves open;
* `bm`: CROWN, then the rank-r Burer–Monteiro SDP relaxation (Chiu & Zhang 2023) of each open
  domain (split neurons become linear), certified by sdp_certificate.certify — so users can see
  how a tighter relaxation changes the tree size.
"""
from __future__ import annotations

import math
import time
from enum import Enum
from typing import Any

import numpy as np

from optcert.bounds.adam import Adam
from optcert.bounds.alpha_crown import initial_alphas
from optcert.bounds.crown import backward_bound, refine
from optcert.bounds.interval_batch import interval_layer
from optcert.bounds.torch_net import DomainBatch, torch_net
from optcert.compiled import CompiledCase
from optcert.precision import Precision
from optcert.search.branching import Bounded, row_weights
from optcert.search.deep_alpha import refine_deep
from optcert.search.leaves import exact_leaf
from optcert.search.lookahead import fsb_decisions
from optcert.spec.problem import Combine


class Bounding(Enum):
    """Per-domain bounding functions (`BOUNDING` maps each to its function)."""

    CROWN = "crown"
    ALPHA_CROWN = "alpha-crown"
    LP = "lp"
    BM = "bm"


class CaseContext:
    """Per-case tensors and settings the bounding functions share."""

    def __init__(self, cc: CompiledCase, device: str, iterations: int, lr: float, beta: bool,
                 alpha_rows: bool = True, fsb: bool = False, deep_splits: int = 0):
        """`alpha_rows`: optimise the slopes of an ALL case's rows (off for input splitting, where it
        saved few domains for 1.8× the time per domain on ACAS Xu prop_1; ANY cases always
        optimise their combined row). `fsb`: take ReLU branching decisions by the FSB look-ahead
        (search/lookahead.py) while bounding. `deep_splits` > 0: re-optimise the intermediate
        layers by alpha-CROWN on domains with at least that many splits (search/deep_alpha.py)."""
        import torch

        self.cc, self.device, self.iterations, self.lr, self.beta = cc, device, iterations, lr, beta
        self.alpha_rows, self.fsb, self.deep_splits = alpha_rows, fsb, deep_splits
        self.deep_domains = 0   # domains whose intermediate layers were re-optimised
        self.tn = torch_net(cc.net, device, Precision.FLOAT64)
        self.m = cc.case.spec.rows
        self.any_case = cc.case.combine is Combine.ANY
        self.eye = torch.eye(self.m, dtype=torch.float64, device=device)
        self.last_best: _Best | None = None   # the best iterates of the last alpha-CROWN pass (certificates)
        self.last_multipliers: tuple | None = None   # (slopes, betas) of that pass's last iterate (FSB look-ahead)


def _propagate(ctx: CaseContext, domains, start: int, deadline: float):
    """(given, computed): the domains as a batch, and their CROWN bounds on ReLU layers
    start..L−1 (intersected with the given ones; earlier layers are taken as given).
    `computed` is None when the deadline passes first."""
    given = DomainBatch.from_bounds(domains, ctx.device)
    out = given.prefix(start - 1)
    for k in range(start, ctx.tn.depth):
        if time.monotonic() > deadline:
            return given, None
        out = out.extended(*_unstable_layer_bounds(ctx, out, given.lower[k], given.upper[k], k))
    return given, out


def _unstable_layer_bounds(ctx: CaseContext, out: DomainBatch, lo, hi, k: int):
    """Layer k's given (lo, hi) intersected with interval arithmetic over `out`, then CROWN on the
    neurons still unstable (crown.refine). A stable neuron's interval does not enter the CROWN
    bound of later layers (its ν equals its Λ whatever l, u are), so keeping the given (valid,
    parent) interval there loses nothing that matters."""
    import torch

    ilo, ihi = interval_layer(ctx.tn, out, k)
    lo, hi = torch.maximum(lo, ilo), torch.minimum(hi, ihi)
    return (lo, hi) if ctx.tn.input_only(k) else refine(ctx.tn, out, k, lo, hi)


def _optimise_output(ctx: CaseContext, inner: DomainBatch, deadline: float, start=None):
    """alpha(-beta)-CROWN on the output: the best certified lower bounds over the Adam iterates.
    Betas live only on split neurons (lo = 0 or hi = 0).

    ALL case (`start` None): one objective row per spec row, (B, m). ANY case: one row per
    domain, (B, 1): the convex combination Σ λ_i m_i with λ = softmax(θ) optimised jointly with
    the slopes, started at the row with the best lower bound in `start` (B, m). Since
    max_i m_i ≥ Σ λ_i m_i, it bounds the case margin, and it proves boxes in whose parts
    different rows are positive (the minimax of the rows' linear bounds), which no single row
    can."""
    import torch

    L, B = ctx.tn.depth, inner.size
    rows = ctx.m if start is None else 1
    theta = None
    if start is not None:
        theta = torch.nn.functional.one_hot(start.argmax(dim=1), ctx.m).double().mul_(4.0).requires_grad_(True)
    alphas = initial_alphas(inner, L, rows, ctx.tn)
    masks, betas = {}, {}
    if ctx.beta:
        for j in range(1, L):
            lo, hi = inner.lower[j], inner.upper[j]
            mask = ((lo == 0) | (hi == 0))[:, None, :].double()
            if bool(mask.any()):
                masks[j] = mask
                betas[j] = torch.zeros((B, rows, lo.shape[1]), dtype=torch.float64, requires_grad=True)
    params = [(a, ctx.lr) for a in alphas.values()] + [(b, ctx.lr / 2) for b in betas.values()]
    params += [(theta, 0.5)] if theta is not None else []
    adam = Adam(params)
    best, keep = None, _Best()
    for it in range(ctx.iterations + 1):
        obj = ctx.eye if theta is None else torch.softmax(theta, dim=1)[:, None, :]
        p = backward_bound(ctx.tn, inner, L, obj, alphas=alphas, betas={j: betas[j] * masks[j] for j in betas})
        bound = p.lower
        keep.offer(bound, p.nus, None if theta is None else obj[:, 0, :])
        best = bound.detach() if best is None else torch.maximum(best, bound.detach())
        if it == ctx.iterations or not params or time.monotonic() > deadline:
            break
        grads = torch.autograd.grad(-bound.sum(), [q for q, _ in params], allow_unused=True)
        adam.step(grads)
        with torch.no_grad():
            for a in alphas.values():
                a.clamp_(0.0, 1.0)
    ctx.last_best = keep
    if ctx.fsb and theta is None:     # kept only for the FSB look-ahead (search/lookahead.py)
        ctx.last_multipliers = ({j: a.detach() for j, a in alphas.items()},
                                {j: (betas[j] * masks[j]).detach() for j in betas})
    return best


class _Best:
    """The multipliers (and, for an ANY case, the row weights) of each row's best iterate so far:
    what a certificate needs to re-derive the bound (optcert.checking.evidence)."""

    def __init__(self):
        self.lower: Any = None
        self.nus: dict = {}
        self.weights: Any = None

    def offer(self, lower, nus: dict, weights) -> None:
        import torch

        low = lower.detach()
        if self.lower is None:
            self.lower, self.nus = low, {j: v.detach() for j, v in nus.items()}
            self.weights = None if weights is None else weights.detach()
            return
        better = low > self.lower
        self.lower = torch.where(better, low, self.lower)
        self.nus = {j: torch.where(better[..., None], nus[j].detach(), v) for j, v in self.nus.items()}
        if weights is not None:
            self.weights = torch.where(better, weights.detach(), self.weights)

    def numpy(self) -> dict:
        return {"lower": self.lower.cpu().numpy(), "nus": {j: v.cpu().numpy() for j, v in self.nus.items()},
                "weights": None if self.weights is None else self.weights.cpu().numpy()}


def _input_coefficients(ctx: CaseContext, nus: dict):
    """Λ_0 (B, m, n_0): the bound's coefficients on the input, from the pass's ν."""
    tn, L = ctx.tn, ctx.tn.depth
    lam0 = 0.0
    for k in range(1, L + 1):
        nu = nus[k] if k < L else ctx.eye
        for j, w in zip(tn.sources[k - 1], tn.weights[k - 1]):
            if j == 0:
                lam0 = lam0 + nu @ w
    return lam0


def bound_crown(ctx: CaseContext, domains, start: int, deadline: float, alpha: bool = False) -> Bounded:
    """CROWN under each domain's splits, the output rows optionally by alpha(-beta)-CROWN."""
    import torch

    L, m = ctx.tn.depth, ctx.m
    given, inner = _propagate(ctx, domains, start, deadline)
    if inner is None:   # out of time: the domains keep their parents' bounds
        B = len(domains)
        return Bounded(list(domains), np.full((B, m), -np.inf), np.full(B, -np.inf))
    if ctx.deep_splits > 0:
        inner, deep = refine_deep(ctx, inner, ctx.deep_splits, deadline)
        ctx.deep_domains += deep
    p = backward_bound(ctx.tn, inner, L, torch.cat([ctx.eye, -ctx.eye]))
    lower = torch.maximum(p.lower[:, :m], given.lower[L])
    upper = torch.minimum(-p.lower[:, m:], given.upper[L])
    nus = {j: v[:, :m] for j, v in p.nus.items()}
    combined = None     # branching keeps CROWN's ν: the optimised ones steer it worse (module doc)
    crown_lower, ctx.last_best, ctx.last_multipliers = lower, None, None
    if alpha and ctx.iterations > 0 and ctx.any_case and m > 1:
        combined = _optimise_output(ctx, inner, deadline, start=lower)
    elif alpha and ctx.iterations > 0 and ctx.alpha_rows:
        lower = torch.maximum(lower, _optimise_output(ctx, inner, deadline))
    full = inner.extended(lower, upper)
    empty = torch.zeros(len(domains), dtype=torch.bool, device=lower.device)
    for lo, hi in zip(full.lower, full.upper):
        empty |= (lo > hi).any(dim=1)
    lam0 = _input_coefficients(ctx, nus)
    bounds = [None if e else b for e, b in zip(empty.tolist(), full.to_bounds())]
    low = lower.detach().cpu().numpy()
    low[empty.cpu().numpy()] = np.inf
    key = low.max(axis=1) if ctx.any_case else low.min(axis=1)
    if combined is not None:
        key = np.maximum(key, combined[:, 0].cpu().numpy())
    nus_np = {j: v.detach().cpu().numpy() for j, v in nus.items()}
    lam0_np = lam0.detach().cpu().numpy() if not isinstance(lam0, float) else None
    weights, focus = _focus(ctx, low)
    points = None if lam0_np is None else _optimal_inputs(given, lam0_np, focus)
    decisions = fsb_decisions(ctx, inner, bounds, nus_np, weights, focus) if ctx.fsb else None
    evidence = {"crown": crown_lower.detach().cpu().numpy(), **(ctx.last_best.numpy() if ctx.last_best else {})}
    return Bounded(bounds, low, key, nus_np, lam0_np, points, decisions, evidence)


def _focus(ctx: CaseContext, low: np.ndarray):
    """Per domain: the rows that matter (branching.row_weights) and the one to look at first —
    ALL: the worst open row; ANY: the row nearest to being proved."""
    sound = ctx.cc.sound(np.where(np.isfinite(low), low, 0.0))
    weights = np.stack([row_weights(s, ctx.any_case) for s in sound]) if len(sound) else sound
    focus = np.argmax(sound, axis=1) if ctx.any_case else np.argmin(np.where(weights > 0, sound, np.inf), axis=1)
    return weights, focus


def _optimal_inputs(given: DomainBatch, lam0: np.ndarray, focus: np.ndarray) -> np.ndarray:
    """The input minimising each domain's linear lower bound on its focus row over the domain's
    box (Λ_0 x is least at lo where Λ_0 ≥ 0, at hi elsewhere): a counterexample candidate."""
    lo, hi = given.lower[0].cpu().numpy(), given.upper[0].cpu().numpy()
    coef = lam0[np.arange(len(focus)), focus]
    return np.where(coef >= 0, lo, hi)


def bound_alpha(ctx: CaseContext, domains, start: int, deadline: float) -> Bounded:
    return bound_crown(ctx, domains, start, deadline, alpha=True)


def _refine_open(ctx: CaseContext, bounded: Bounded, deadline: float, rows_bound) -> Bounded:
    """Raise the bounds of every domain CROWN left open with `rows_bound(ctx, bounds, rows, deadline)
    -> (per-row certified lower bounds (m,), certified key)`, key +inf meaning proved empty."""
    for b, bounds in enumerate(bounded.bounds):
        if bounds is None or time.monotonic() > deadline:
            continue
        sound = ctx.cc.sound(bounded.lower[b])
        if (sound.max() if ctx.any_case else sound.min()) > 0:
            continue
        rows, key = rows_bound(ctx, bounds, [i for i in range(ctx.m) if sound[i] <= 0], deadline)
        if key == math.inf:
            bounded.bounds[b], bounded.lower[b], bounded.key[b] = None, np.inf, np.inf
            continue
        bounded.lower[b] = np.maximum(bounded.lower[b], rows)
        bounded.key[b] = max(bounded.key[b], key)
    return bounded


def _lp_rows(ctx: CaseContext, bounds, rows: list[int], deadline: float):
    answer = exact_leaf(ctx, bounds, deadline)
    return answer.rows, answer.key


BM_SECONDS = 120.0   # cap on one domain's BM solve (ipm-lowrank: a few CPU-s per row on a full-size MNIST MLP)


def _bm_rows(ctx: CaseContext, bounds, rows: list[int], deadline: float):
    """Rank-(L+1) BM (Chiu & Zhang 2023) of the tight relaxation (split neurons are stable, so they are
    substituted or dropped) on `rows` of one domain from the box centre: by IPOPT one row at a time when
    installed, else all rows in one batched torch solve; each certified by certificates/sdp.certify
    (−inf where it gives nothing)."""
    from optcert.errors import LoweringError
    from optcert.lowerings.quadratic import network_point, relu_qcqp

    out = np.full(ctx.m, -np.inf)
    try:
        lowered = [relu_qcqp(ctx.cc.net, bounds, r, True, triangle=True) for r in rows]
    except LoweringError:
        return out, -math.inf
    rank = len(ctx.cc.net.layers) + 1
    centre = (bounds.lower[0] + bounds.upper[0]) / 2
    starts = [np.r_[1.0, network_point(lw, ctx.cc.net, centre)][:, None] for lw in lowered]
    for r, value in zip(rows, _bm_solve(ctx, lowered, starts, rank, deadline)):
        out[r] = value
    return out, float(out.max() if ctx.any_case else out.min())


def _bm_solve(ctx: CaseContext, lowered, starts, rank: int, deadline: float) -> list[float]:
    """Certified bounds of the BM problems `lowered` started at the rank-one `starts`: optcert's
    interior point (ipm-lowrank) on the CPU, its iterates certified cheaply (quick_certify) and the
    solve stopped once the domain is proved; the batched torch backend on other devices."""
    from optcert.certificates.sdp import certify, quick_certify
    from optcert.forms import Limits

    values = []
    if ctx.device == "cpu":
        from solvers.ipm_lowrank import BACKEND as IPM

        for lw, start in zip(lowered, starts):
            limit = Limits(time_limit=max(1e-3, min(BM_SECONDS, deadline - time.monotonic())))
            best = [-math.inf]

            def proved(y, objective, model=lw.form, best=best):   # certify iterates; stop once > 0
                cert = quick_certify(model, y, objective, proof=True)
                best[0] = max(best[0], cert.bound if cert is not None else -math.inf)
                return best[0] > 0

            sol = IPM.solve_model(lw.form, lw.form.objective, rank, start, limit, monitor=proved)
            final = certify(lw.form, sol.row_duals, sol.objective, deadline=deadline, primal=sol.objective).bound \
                if sol.row_duals is not None else -math.inf
            values.append(max(best[0], final))
        return values
    from solvers.torch_lowrank import BACKEND, LowRankOptions

    noise = 1e-3 * np.random.default_rng(0).standard_normal((starts[0].shape[0], rank - 1))
    noise[0] = 0.0
    init = np.stack([np.c_[s, noise] for s in starts])
    limit = Limits(time_limit=max(1e-3, min(BM_SECONDS, deadline - time.monotonic())))
    solutions = BACKEND.solve_batch(lowered[0].form, np.stack([lw.form.objective for lw in lowered]), rank, init,
                                    limit, LowRankOptions(device=ctx.device))
    return [certify(lw.form, sol.row_duals, sol.objective, deadline=deadline).bound if sol.row_duals is not None
            else -math.inf for lw, sol in zip(lowered, solutions)]


def bound_lp(ctx: CaseContext, domains, start: int, deadline: float) -> Bounded:
    """CROWN, then the LP triangle (split constraints kept) on each domain CROWN leaves open."""
    return _refine_open(ctx, bound_crown(ctx, domains, start, deadline), deadline, _lp_rows)


def bound_bm(ctx: CaseContext, domains, start: int, deadline: float) -> Bounded:
    """CROWN, then the rank-r BM-SDP bound, certified, on each domain CROWN leaves open."""
    return _refine_open(ctx, bound_crown(ctx, domains, start, deadline), deadline, _bm_rows)


BOUNDING = {Bounding.CROWN: bound_crown, Bounding.ALPHA_CROWN: bound_alpha, Bounding.LP: bound_lp,
            Bounding.BM: bound_bm}
