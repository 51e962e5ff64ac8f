"""`bnb` engine: complete verification by branch and bound (coordinator in optcert/bnb.py).

Per case, on the spec-folded net:
1. PGD on every clause of every case first (cheap falsification), candidates re-checked;
2. the root domain (the case box with IBP bounds) and every child are bounded in batches by the
   chosen `bounding` function (table `BOUNDING`):
   * `crown`: CROWN on every ReLU layer under the domain's splits (recomputed from the first layer
     a split can change), then one backward pass on the output rows;
   * `alpha-crown` (default): the same, then the output rows' lower slopes optimised by Adam
     (`alpha_iterations`), with beta-CROWN multipliers (Wang et al. 2021) on the split neurons
     optimised jointly when `beta` is on. Every iterate is a certified dual bound (crown.py: any
     multipliers are valid), so betas cannot make a bound unsound;
   * `lp`: CROWN, then the LP triangle (with split constraints) per domain and clause, certified
     from its duals;
3. a domain with no unstable neuron left is solved exactly by an LP (lowerings/lp_triangle.py with
   every inactive ẑ kept, so the split constraints hold); its optimal input is a candidate. An LP
   that reports infeasibility is only believed after a phase-1 LP certifies a positive minimal
   violation from its duals (lp_certificate.py).
The engine never sets a verdict: it returns the tree's floor (min over leaves) per row and on the
case margin, and candidate inputs; certify.conclude decides.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import Enum

import numpy as np

import scipy.sparse as sp

from ..attack import AttackOptions, pgd_case
from ..bnb import LeafAnswer, Search, SearchSettings
from ..bounds.adam import Adam
from ..bounds.alpha_crown import initial_alphas
from ..bounds.crown import backward_bound, layer_bounds
from ..bounds.layer_bounds import Bounds
from ..bounds.methods import check_device
from ..bounds.torch_net import DomainBatch, torch_net
from ..branching import Bounded, Rule, Split, decide, row_weights
from ..certify import EngineOutput, check_counterexample
from ..compiled import CompiledCase
from ..errors import InvalidOptionError, LoweringError
from ..forms import LinearProgram, SolveStatus
from ..linear_solve import solve_bound
from ..lowerings import Objective, lower_lp
from ..precision import Precision
from ..spec import Combine, VerificationProblem


class Bounding(Enum):
    """Per-domain bounding functions (`BOUNDING` maps each to its function; add BM here)."""

    CROWN = "crown"
    ALPHA_CROWN = "alpha-crown"
    LP = "lp"


@dataclass(frozen=True)
class BnbOptions:
    """`bounding`: per-domain bound (crown | alpha-crown | lp); `split`: auto (input bisection for
    ≤ 8 inputs) | relu | input; `branching`: ReLU rule (babsr | widest); `batch`: domains bounded
    per call; `max_domains`: queue cap (the run stops UNKNOWN beyond it); `node_limit`: domains
    bounded at most; `alpha_iterations`/`lr`: Adam on the output slopes (and betas);
    `beta`: optimise split multipliers too; `attack`: PGD at the start and on open domains;
    `seed`: PGD seed; `device`: torch device; `progress`: progress line on a terminal."""

    bounding: Bounding = Bounding.ALPHA_CROWN
    split: Split = Split.AUTO
    branching: Rule = Rule.BABSR
    batch: int = 64
    max_domains: int = 50_000
    node_limit: int = 1_000_000
    alpha_iterations: int = 8
    lr: float = 0.1
    beta: bool = True
    attack: bool = True
    seed: int = 0
    device: str = "cpu"
    progress: bool = False

    def __post_init__(self):
        check_device(self.device)
        for name in ("batch", "max_domains", "node_limit"):
            if getattr(self, name) < 1:
                raise InvalidOptionError(f"option {name!r} must be ≥ 1, got {getattr(self, name)}")
        if self.alpha_iterations < 0:
            raise InvalidOptionError(f"option 'alpha_iterations' must be ≥ 0, got {self.alpha_iterations}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InvalidOptionError(f"option 'lr' must be a positive number, got {self.lr}")
        if self.max_domains < 2 * self.batch:
            raise InvalidOptionError(f"option 'max_domains' ({self.max_domains}) must be at least 2 × batch")


class CaseTask:
    """The coordinator's view of one case (see bnb.Task)."""

    def __init__(self, problem: VerificationProblem, cc: CompiledCase, options: BnbOptions, out: EngineOutput):
        self.problem, self.cc, self.options, self.out = problem, cc, options, out
        self.ctx = CaseContext(cc, options.device, options.alpha_iterations, options.lr, options.beta)
        self.root = cc.ibp
        self.any_case = cc.case.combine is Combine.ANY
        self.max_fold = float(np.max(cc.fold_error, initial=0.0))
        self.bounding = BOUNDING[options.bounding]
        self.generator_seed = options.seed
        self.best_margin = math.inf

    def bound(self, domains, start, deadline):
        return self.bounding(self.ctx, domains, start, deadline)

    def value(self, rows: np.ndarray, key: float) -> float:
        """Certified lower bound on the true case margin (the same sums certify.conclude makes)."""
        if self.any_case:
            return float(np.nextafter(max(key, float(np.max(rows))) - self.max_fold, -np.inf))
        return float(np.min(self.cc.sound(rows)))

    def decide(self, bounded, index, value):
        weights = row_weights(self.cc.sound(bounded.lower[index]), self.any_case)
        return decide(bounded, index, weights, self.root, self.options.split, self.options.branching)

    def leaf(self, bounds, deadline):
        return exact_leaf(self.ctx, bounds, deadline)

    def check(self, x: np.ndarray) -> bool:
        """Is x a re-checked counterexample? Keeps it as a candidate if it is, or if it is the
        best input (lowest case margin) seen so far."""
        x = self.cc.case.box.clip(np.asarray(x, dtype=np.float64))
        margin = float(self.cc.case.case_margin(self.cc.case.spec.margins(self.problem.network.forward(x[None, :])[0])))
        found = margin < 0 and check_counterexample(self.problem, self.cc, x) is not None
        if found or margin < self.best_margin:
            self.best_margin = min(self.best_margin, margin)
            self.out.candidates.append((self.cc.index, x))
        return found

    def attack(self, domains, deadline):
        if not self.options.attack or not domains:
            return []
        self.generator_seed += 1
        return attack_boxes(self.ctx, domains, self.generator_seed, deadline)


def _attack_all(problem, compiled, tasks, options: BnbOptions, deadline: float, out: EngineOutput) -> bool:
    """PGD on every clause of every case (≤ 10% of the time); True if a counterexample re-checks."""
    stop = time.monotonic() + (deadline - time.monotonic()) / 10 if math.isfinite(deadline) else math.inf
    for cc, task in zip(compiled, tasks):
        found = pgd_case(cc, AttackOptions(seed=options.seed, device=options.device, budget=2e7), stop)
        for attempt in found:
            if task.check(attempt.x):
                return True
    return False


def run_bnb(problem: VerificationProblem, compiled: list[CompiledCase], options: BnbOptions,
            deadline: float) -> EngineOutput:
    from ..progress import progress

    start = time.monotonic()
    out = EngineOutput(lower=[np.full(cc.case.spec.rows, -np.inf) for cc in compiled],
                       case_lower=[None] * len(compiled),
                       certificate={"method": f"branch and bound ({options.bounding.value} bounding, "
                                              f"{options.split.value} split, {options.branching.value})",
                                    "cases": []})
    tasks = [CaseTask(problem, cc, options, out) for cc in compiled]
    if options.attack and _attack_all(problem, compiled, tasks, options, deadline, out):
        out.certificate["attack_seconds"] = time.monotonic() - start
        return out
    out.certificate["attack_seconds"] = time.monotonic() - start
    reasons = []
    with progress("bnb", enabled=options.progress) as update:
        for left, (cc, task) in enumerate(zip(compiled, tasks)):
            share = (deadline - time.monotonic()) / (len(compiled) - left) if math.isfinite(deadline) else math.inf
            case_deadline = min(deadline, time.monotonic() + share)
            settings = SearchSettings(options.batch, _domain_cap(cc, options), options.node_limit,
                                      attack_every=5 if options.attack else 0)
            result = Search(task, settings, case_deadline, lambda t, k=cc.index: update(f"case {k}: {t}")).run(
                task.any_case)
            out.lower[cc.index] = result.rows
            out.case_lower[cc.index] = result.key
            out.certificate["cases"].append({"case": cc.index, "status": result.status, **result.stats})
            if result.status == "falsified":
                return out
            if result.status != "proved":
                reasons.append(_reason(cc.index, result.status))
    out.reason = "; ".join(reasons)
    out.timed_out = any("time limit" in r for r in reasons)
    return out


MEMORY_BUDGET = 2 * 2 ** 30   # bytes of queued domain bounds, whatever max_domains says


def _domain_cap(cc: CompiledCase, options: BnbOptions) -> int:
    """max_domains, lowered so that the queued bounds (two float64 per neuron) fit MEMORY_BUDGET."""
    per_domain = 16 * sum(a.size for a in cc.ibp.lower) + 512
    return max(2 * options.batch, min(options.max_domains, MEMORY_BUDGET // per_domain))


def _reason(case: int, status: str) -> str:
    text = {"timeout": "time limit reached", "node_limit": "node limit reached",
            "memory": "domain queue reached max_domains",
            "stuck": "some linear regions could not be decided (ties or solver failures)"}.get(status, status)
    return f"case {case}: {text}"


# ---- bounding ---------------------------------------------------------------------------------------
class CaseContext:
    """Per-case tensors and settings the bounding functions share."""

    def __init__(self, cc: CompiledCase, device: str, iterations: int, lr: float, beta: bool):
        import torch

        self.cc, self.device, self.iterations, self.lr, self.beta = cc, device, iterations, lr, beta
        self.tn = torch_net(cc.net, device, Precision.FLOAT64)
        self.m = cc.case.spec.rows
        self.any_case = cc.case.combine is Combine.ANY
        self.eye = torch.eye(self.m, dtype=torch.float64, device=device)


def _propagate(ctx: CaseContext, domains, start: int, deadline: float):
    """(given, computed): the domains as a batch, and their CROWN bounds on ReLU layers
    start..L−1 (intersected with the given ones; earlier layers are taken as given).
    `computed` is None when the deadline passes first."""
    given = DomainBatch.from_bounds(domains, ctx.device)
    out = DomainBatch(given.lower[:start], given.upper[:start])
    for k in range(start, ctx.tn.depth):
        if time.monotonic() > deadline:
            return given, None
        out = out.extended(*_unstable_layer_bounds(ctx, out, given.lower[k], given.upper[k], k))
    return given, out


def _unstable_layer_bounds(ctx: CaseContext, out: DomainBatch, lo, hi, k: int):
    """CROWN bounds on layer k, recomputed only for the neurons unstable in the given (lo, hi).

    A stable neuron's interval does not enter the CROWN bound of later layers (its ν equals its
    Λ whatever l, u are), so keeping the given (valid, parent) interval there loses nothing
    that matters, and the backward pass shrinks from 2n to 2U rows (U = most unstable neurons
    in a domain of the batch)."""
    import torch

    unstable = (lo < 0) & (hi > 0)
    U = int(unstable.sum(dim=1).max()) if unstable.numel() else 0
    if U == 0:
        return lo, hi
    n = lo.shape[1]
    if U == n:
        new_lo, new_hi = layer_bounds(ctx.tn, out, k)
        return torch.maximum(new_lo, lo), torch.minimum(new_hi, hi)
    idx = torch.argsort((~unstable).to(torch.int8), dim=1, stable=True)[:, :U]   # unstable first
    valid = torch.gather(unstable, 1, idx)
    sel = torch.nn.functional.one_hot(idx, n).to(torch.float64) * valid[..., None]
    lower = backward_bound(ctx.tn, out, k, torch.cat([sel, -sel], dim=1)).lower
    old_lo, old_hi = torch.gather(lo, 1, idx), torch.gather(hi, 1, idx)
    new_lo = torch.where(valid, torch.maximum(lower[:, :U], old_lo), old_lo)
    new_hi = torch.where(valid, torch.minimum(-lower[:, U:], old_hi), old_hi)
    return lo.scatter(1, idx, new_lo), hi.scatter(1, idx, new_hi)


def _optimise_output(ctx: CaseContext, inner: DomainBatch, deadline: float, start=None):
    """alpha(-beta)-CROWN on the output: best certified lower bounds and the ν of the best
    iterate per domain. Betas live only on split neurons (lo = 0 or hi = 0).

    ALL case (`start` None): one objective row per spec row, (B, m). ANY case: one row per
    domain, the convex combination Σ λ_i m_i with λ = softmax(θ) optimised jointly with the
    slopes (started at the row with the best lower bound `start` (B, m)); since max_i m_i ≥
    Σ λ_i m_i, its bound (B, 1) bounds the case margin, and is at least the best single row's
    bound when λ is a vertex — it proves boxes where different rows are positive in different
    parts (the minimax of the linear bounds). Returns (best, nus, objective of the best)."""
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
    best = best_nus = best_obj = None
    for it in range(ctx.iterations + 1):
        obj = ctx.eye if theta is None else torch.softmax(theta, dim=1)[:, None, :]
        p = backward_bound(ctx.tn, inner, L, obj, alphas=alphas, betas={j: betas[j] * masks[j] for j in betas})
        bound = p.lower.detach()
        if best is None:
            best, best_nus = bound, {j: v.detach() for j, v in p.nus.items()}
            best_obj = obj.detach().expand(B, rows, ctx.m)
        else:
            better = bound > best
            best = torch.where(better, bound, best)
            best_nus = {j: torch.where(better[..., None], p.nus[j].detach(), best_nus[j]) for j in best_nus}
            best_obj = torch.where(better[..., None], obj.detach(), best_obj)
        if it == ctx.iterations or not params or time.monotonic() > deadline:
            break
        grads = torch.autograd.grad(-p.lower.sum(), [q for q, _ in params], allow_unused=True)
        adam.step(grads)
        with torch.no_grad():
            for a in alphas.values():
                a.clamp_(0.0, 1.0)
    return best, best_nus, best_obj


def _input_coefficients(ctx: CaseContext, nus: dict, objective=None):
    """Λ_0 (B, m, n_0): the bound's coefficients on the input, from the pass's ν (and the output
    objective, default the identity)."""
    tn, L = ctx.tn, ctx.tn.depth
    lam0 = 0.0
    for k in range(1, L + 1):
        nu = nus[k] if k < L else (ctx.eye if objective is None else objective)
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
    p = backward_bound(ctx.tn, inner, L, torch.cat([ctx.eye, -ctx.eye]))
    lower = torch.maximum(p.lower[:, :m], given.lower[L])
    upper = torch.minimum(-p.lower[:, m:], given.upper[L])
    nus = {j: v[:, :m] for j, v in p.nus.items()}
    objective, combined = None, None
    if alpha and ctx.iterations > 0 and ctx.any_case and m > 1:
        # ANY case: every row carries the combined objective's multipliers (for the branching)
        combined, nus, objective = _optimise_output(ctx, inner, deadline, start=lower)
        nus, objective = {j: v.expand(-1, m, -1) for j, v in nus.items()}, objective.expand(-1, m, -1)
    elif alpha and ctx.iterations > 0:
        best, best_nus, _ = _optimise_output(ctx, inner, deadline)
        improved = best > lower
        lower = torch.maximum(lower, best)
        nus = {j: torch.where(improved[..., None], best_nus[j], nus[j]) for j in nus}
    full = inner.extended(lower, upper)
    empty = torch.zeros(len(domains), dtype=torch.bool, device=lower.device)
    for lo, hi in zip(full.lower, full.upper):
        empty |= (lo > hi).any(dim=1)
    lam0 = _input_coefficients(ctx, nus, objective)
    bounds = [None if e else b for e, b in zip(empty.tolist(), full.to_bounds())]
    low = lower.detach().cpu().numpy()
    low[empty.cpu().numpy()] = np.inf
    key = low.max(axis=1) if ctx.any_case else low.min(axis=1)
    if combined is not None:
        key = np.maximum(key, combined[:, 0].cpu().numpy())
    return Bounded(bounds, low, key, {j: v.detach().cpu().numpy() for j, v in nus.items()},
                   lam0.detach().cpu().numpy() if not isinstance(lam0, float) else None)


def bound_alpha(ctx: CaseContext, domains, start: int, deadline: float) -> Bounded:
    return bound_crown(ctx, domains, start, deadline, alpha=True)


def bound_lp(ctx: CaseContext, domains, start: int, deadline: float) -> Bounded:
    """CROWN, then the LP triangle (split constraints kept) on each domain CROWN leaves open."""
    bounded = bound_crown(ctx, domains, start, deadline)
    for b, bounds in enumerate(bounded.bounds):
        if bounds is None or time.monotonic() > deadline:
            continue
        sound = ctx.cc.sound(bounded.lower[b])
        if (sound.max() if ctx.any_case else sound.min()) > 0:
            continue
        answer = exact_leaf(ctx, bounds, deadline)
        if answer.key == math.inf:
            bounded.bounds[b], bounded.lower[b], bounded.key[b] = None, np.inf, np.inf
            continue
        bounded.lower[b] = np.maximum(bounded.lower[b], answer.rows)
        bounded.key[b] = max(bounded.key[b], answer.key)
    return bounded


BOUNDING = {Bounding.CROWN: bound_crown, Bounding.ALPHA_CROWN: bound_alpha, Bounding.LP: bound_lp}


# ---- exact leaves ---------------------------------------------------------------------------------------
def _solve_lp(ctx: CaseContext, bounds: Bounds, rows: tuple[int, ...], deadline: float):
    """(certified value, optimal input or None) of the LP triangle over `bounds` for `rows`
    (one row: its minimum; several: the minimum of their max); +inf when certified infeasible."""
    try:
        lowered = lower_lp(ctx.cc.net, bounds, Objective(rows), keep_inactive=True)
    except LoweringError:
        return -math.inf, None
    result = solve_bound(lowered.form, "highs", deadline=deadline)
    status = result.solution.status
    if status is SolveStatus.INFEASIBLE:
        return (math.inf if certify_infeasible(lowered.form, deadline) else -math.inf), None
    x = None if result.solution.x is None else lowered.read(result.solution.x)
    return result.value, x


def exact_leaf(ctx: CaseContext, bounds: Bounds, deadline: float) -> LeafAnswer:
    """The LP of a domain; exact when no neuron is unstable (a linear region)."""
    m = ctx.m
    if ctx.any_case:
        value, x = _solve_lp(ctx, bounds, tuple(range(m)), deadline)
        return LeafAnswer(np.full(m, math.inf if value == math.inf else -math.inf), value, x,
                          value > -math.inf)
    values, xs = zip(*(_solve_lp(ctx, bounds, (i,), deadline) for i in range(m)))
    rows = np.array(values, dtype=np.float64)
    worst = int(np.argmin(rows))
    key = math.inf if np.any(rows == math.inf) else float(rows.min())
    if key == math.inf:
        rows[:] = math.inf
    return LeafAnswer(rows, key, xs[worst], bool(np.all(rows > -math.inf)) or key == math.inf)


PHASE1_CAP = 1e6


def certify_infeasible(form: LinearProgram, deadline: float) -> bool:
    """True only if the LP is certifiably infeasible: the phase-1 LP min t s.t. every row
    violated by at most t, 0 ≤ t ≤ PHASE1_CAP, has a rigorous (dual-certified) positive lower
    bound. (Were the LP feasible, t = 0 would be feasible; the cap keeps the certificate finite.)"""
    lo_rows = np.flatnonzero(np.isfinite(form.row_lo))
    hi_rows = np.flatnonzero(np.isfinite(form.row_hi))
    A = form.A.tocsr()
    ones = [sp.csr_matrix(np.full((r.size, 1), s)) for r, s in ((lo_rows, 1.0), (hi_rows, -1.0))]
    A2 = sp.vstack([sp.hstack([A[lo_rows], ones[0]]), sp.hstack([A[hi_rows], ones[1]])]).tocsr()
    row_lo = np.concatenate([form.row_lo[lo_rows], np.full(hi_rows.size, -np.inf)])
    row_hi = np.concatenate([np.full(lo_rows.size, np.inf), form.row_hi[hi_rows]])
    c = np.zeros(form.n_cols + 1)
    c[-1] = 1.0
    phase1 = LinearProgram(c, A2, row_lo, row_hi, np.append(form.col_lo, 0.0),
                           np.append(form.col_hi, PHASE1_CAP))
    return solve_bound(phase1, "highs", deadline=deadline).value > 0


# ---- attacks inside the search ------------------------------------------------------------------------
def attack_boxes(ctx: CaseContext, domains, seed: int, deadline: float, steps: int = 20,
                 restarts: int = 4) -> list[np.ndarray]:
    """Best input per domain box from a short signed-gradient PGD on the case margin."""
    import torch

    lo = torch.as_tensor(np.stack([d.lower[0] for d in domains]), device=ctx.device).repeat_interleave(restarts, 0)
    hi = torch.as_tensor(np.stack([d.upper[0] for d in domains]), device=ctx.device).repeat_interleave(restarts, 0)
    gen = torch.Generator(device=ctx.device).manual_seed(seed)
    x = lo + (hi - lo) * torch.rand(lo.shape, generator=gen, dtype=torch.float64, device=ctx.device)
    x[::restarts] = (lo[::restarts] + hi[::restarts]) / 2
    best_x, best_v = x.clone(), torch.full((x.shape[0],), math.inf, dtype=torch.float64, device=ctx.device)
    for t in range(steps + 1):
        x.requires_grad_(True)
        out = ctx.tn.forward(x)[-1]
        value = out.max(dim=1).values if ctx.any_case else out.min(dim=1).values
        (grad,) = torch.autograd.grad(value.sum(), x)
        with torch.no_grad():
            better = value < best_v
            best_v = torch.where(better, value, best_v)
            best_x[better] = x[better]
            if t == steps or time.monotonic() > deadline:
                break
            size = 0.25 * 0.5 * (1 + math.cos(math.pi * t / steps)) + 1e-3
            x = torch.minimum(torch.maximum(x - size * (hi - lo) * grad.sign(), lo), hi).detach()
    v = best_v.reshape(len(domains), restarts)
    xs = best_x.reshape(len(domains), restarts, -1)
    return [xs[d, int(v[d].argmin())].detach().cpu().numpy() for d in range(len(domains))]
