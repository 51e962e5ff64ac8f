"""`bnb` engine: complete verification by branch and bound (coordinator in optcert/bnb.py).

Per case, on the spec-folded net:
1. the falsifier (search/falsify.py: APGD from diverse starts, two losses) on every case first,
   candidates re-checked; every bounded domain then offers the relaxation's optimal input as a
   candidate too (coordinator.py), and short PGD runs start from the most promising domains' ones;
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
   * `bm`: CROWN, then the certified rank-r BM-SDP bound per open domain and row
     (bnb_bounding.py);
3. a domain with no unstable neuron left is solved exactly by an LP (lowerings/lp_triangle.py with
   every inactive ẑ kept, so the split constraints hold); its optimal input is a candidate. An LP
   that reports infeasibility is only believed after a phase-1 LP certifies a positive minimal
   violation from its duals (lp_certificate.py).
The engine never sets a verdict: it returns the tree's floor (min over leaves) per row and on the
case margin, and candidate inputs; certify.conclude decides.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import numpy as np

from optcert.certify import EngineOutput, check_counterexample
from optcert.compiled import CompiledCase
from optcert.engines.bnb_evidence import TreeRecorder, empty_evidence
from optcert.errors import InvalidOptionError
from optcert.precision import check_device
from optcert.search.bounding import BOUNDING, Bounding, CaseContext
from optcert.search.branching import Rule, Split, decide, row_weights, use_input_split
from optcert.search.coordinator import Search, SearchSettings
from optcert.search.falsify import FalsifySettings, falsify
from optcert.search.input_branching import InputRule
from optcert.search.input_split import InputSplitSearch, InputSplitSettings
from optcert.search.input_tree import InputTree
from optcert.search.leaves import exact_leaf
from optcert.spec.problem import Combine, VerificationProblem


@dataclass(frozen=True)
class BnbOptions:
    """`bounding`: per-domain bound (crown | alpha-crown | lp | bm); `split`: auto (input bisection for
    ≤ 8 inputs) | relu | input; `branching`: ReLU rule (babsr | widest | fsb);
    `input_branching`: input dimension rule (lookahead | smear | balanced); `batch`: domains bounded
    per call; `max_domains`: queue cap (the run stops UNKNOWN beyond it); `node_limit`: domains
    bounded at most; `alpha_iterations`/`lr`: Adam on the output slopes (and betas) per batch of
    domains (default: 40 with ReLU splitting, 8 with input splitting: RELU_ALPHA_ITERATIONS,
    INPUT_ALPHA_ITERATIONS);
    `beta`: optimise split multipliers too; `attack`: PGD at the start and on open domains;
    `seed`: PGD seed; `device`: torch device; `progress`: progress line on a terminal;
    `deep_alpha` > 0: on ReLU-split domains with at least this many splits, re-optimise the
    intermediate layers by alpha-CROWN (0: off); `evidence`: record the search tree for `optcert
    check` (off: faster, and a proof is then UNCHECKABLE); `input_alpha` > 0: input splitting runs alpha-CROWN
    on its domains at least this many bisections deep (search/input_split.py; 0: off)."""

    bounding: Bounding = Bounding.ALPHA_CROWN
    split: Split = Split.AUTO
    branching: Rule = Rule.BABSR
    input_branching: InputRule = InputRule.LOOKAHEAD
    batch: int = 64
    max_domains: int = 50_000
    node_limit: int = 1_000_000
    alpha_iterations: int | None = None
    lr: float = 0.1
    beta: bool = True
    attack: bool = True
    seed: int = 0
    device: str = "cpu"
    progress: bool = False
    deep_alpha: int = 0
    evidence: bool = True
    input_alpha: int = 0

    def __post_init__(self):
        check_device(self.device)
        if self.deep_alpha < 0:
            raise InvalidOptionError(f"option 'deep_alpha' must be ≥ 0, got {self.deep_alpha}")
        for name in ("batch", "max_domains", "node_limit"):
            if getattr(self, name) < 1:
                raise InvalidOptionError(f"option {name!r} must be ≥ 1, got {getattr(self, name)}")
        if self.input_alpha < 0:
            raise InvalidOptionError(f"option 'input_alpha' must be ≥ 0, got {self.input_alpha}")
        if self.alpha_iterations is not None and self.alpha_iterations < 0:
            raise InvalidOptionError(f"option 'alpha_iterations' must be ≥ 0, got {self.alpha_iterations}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InvalidOptionError(f"option 'lr' must be a positive number, got {self.lr}")
        if self.max_domains < 2 * self.batch:
            raise InvalidOptionError(f"option 'max_domains' ({self.max_domains}) must be at least 2 × batch")


# Adam steps per batch of domains. With ReLU splitting the tree shrinks fast with them: mnistfc
# 256x2 prop_6_0.03 (LP-tightened root, 60 s): 8 steps UNKNOWN, 20 proved in 9.5 s (31 domains);
# 256x4 prop_11_0.05: 8 steps −0.43 at 60 s, 20 −0.157, 40 proved in 31.6 s (263 domains;
# alpha-beta-CROWN runs 20 per BaB round after 100 at the root). Input splitting optimises only
# ANY cases' combined row, on many more, cheaper domains.
RELU_ALPHA_ITERATIONS = 40
INPUT_ALPHA_ITERATIONS = 8


class CaseTask:
    """The coordinator's view of one case (see bnb.Task)."""

    def __init__(self, problem: VerificationProblem, cc: CompiledCase, options: BnbOptions, out: EngineOutput):
        self.problem, self.cc, self.options, self.out = problem, cc, options, out
        inputs = use_input_split(options.split, cc.net.n_inputs)
        iterations = options.alpha_iterations
        if iterations is None:
            iterations = INPUT_ALPHA_ITERATIONS if inputs else RELU_ALPHA_ITERATIONS
        self.ctx = CaseContext(cc, options.device, iterations, options.lr, options.beta,
                               alpha_rows=not inputs, fsb=options.branching is Rule.FSB and not inputs,
                               deep_splits=0 if inputs else options.deep_alpha)
        self.root = cc.ibp
        self.any_case = cc.case.combine is Combine.ANY
        self.max_fold = float(np.max(cc.fold_error, initial=0.0))
        self.bounding = BOUNDING[options.bounding]
        self.generator_seed = options.seed
        self.best_margin = math.inf
        self.recorder = TreeRecorder(cc, options.bounding in (Bounding.CROWN, Bounding.ALPHA_CROWN)
                                     and (inputs or options.deep_alpha == 0), recording=options.evidence)
        self.trace = self.recorder if options.evidence else None   # what the coordinator calls
        self.hints: np.ndarray | None = None
        self._checking = threading.Lock()   # the auto portfolio's solver lane checks from a worker thread

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
        return self.recorder.leaf_items(bounds, exact_leaf(self.ctx, bounds, deadline))

    def check(self, x: np.ndarray) -> bool:
        """Is x a re-checked counterexample? Keeps it as a candidate if it is, or if it is the
        best input (lowest case margin) seen so far. Safe to call from several threads."""
        with self._checking:
            return self._check(x)

    def _check(self, x: np.ndarray) -> bool:
        x = self.cc.case.box.clip(np.asarray(x, dtype=np.float64))
        margin = float(self.cc.case.case_margin(self.cc.case.spec.margins(self.problem.network.forward(x[None, :])[0])))
        found = margin < 0 and check_counterexample(self.problem, self.cc, x) is not None
        if found or margin < self.best_margin:
            self.best_margin = min(self.best_margin, margin)
            self.out.candidates.append((self.cc.index, x))
        return found

    def screen(self, points: np.ndarray) -> np.ndarray | None:
        """The point (B, n_0) with the lowest case margin on the folded net (float64), if it beats
        the best seen so far; check() then re-checks it on the original graph."""
        points = np.clip(points, self.cc.lo, self.cc.hi)
        margins = self.cc.case.case_margin(self.cc.net.forward(points)[-1])
        i = int(np.argmin(margins))
        if margins[i] < self.best_margin:
            self.hints = points[np.argsort(margins)[:8]]
            return points[i]
        return None

    def attack(self, domains, deadline):
        if not self.options.attack or not domains:
            return []
        self.generator_seed += 1
        return attack_boxes(self.ctx, domains, self.generator_seed, deadline, hints=self.hints)


def falsify_cases(compiled, tasks, seed: int, device: str, deadline: float) -> bool:
    """The falsifier on every case until `deadline`, time shared equally; True if a counterexample
    re-checks."""
    for left, (cc, task) in enumerate(zip(compiled, tasks)):
        share = (deadline - time.monotonic()) / (len(compiled) - left) if math.isfinite(deadline) else math.inf
        if falsify(cc, FalsifySettings(seed=seed, device=device), min(deadline, time.monotonic() + share),
                   task.check).found:
            return True
    return False


def _attack_all(problem, compiled, tasks, options: BnbOptions, deadline: float, out: EngineOutput) -> bool:
    """The falsifier on every case (≤ 10% of the time); True if a counterexample re-checks."""
    stop = time.monotonic() + (deadline - time.monotonic()) / 10 if math.isfinite(deadline) else math.inf
    return falsify_cases(compiled, tasks, options.seed, options.device, min(stop, time.monotonic() + 30.0))


def run_bnb(problem: VerificationProblem, compiled: list[CompiledCase], options: BnbOptions,
            deadline: float) -> EngineOutput:
    from optcert.progress import progress

    start = time.monotonic()
    case_lower: list[float | None] = [None] * len(compiled)
    out = EngineOutput(lower=[np.full(cc.case.spec.rows, -np.inf) for cc in compiled], case_lower=case_lower,
                       certificate={"method": f"branch and bound ({options.bounding.value} bounding, "
                                              f"{options.split.value} split, {options.branching.value})",
                                    "cases": []})
    tasks = [CaseTask(problem, cc, options, out) for cc in compiled]
    evidence = out.certificate["evidence"] = empty_evidence(compiled)
    if options.attack and _attack_all(problem, compiled, tasks, options, deadline, out):
        out.certificate["attack_seconds"] = time.monotonic() - start
        return out
    out.certificate["attack_seconds"] = time.monotonic() - start
    reasons = []
    with progress("bnb", enabled=options.progress) as update:
        for left, (cc, task) in enumerate(zip(compiled, tasks)):
            share = (deadline - time.monotonic()) / (len(compiled) - left) if math.isfinite(deadline) else math.inf
            case_deadline = min(deadline, time.monotonic() + share)
            settings = SearchSettings(options.batch, domain_cap(cc, options), options.node_limit,
                                      attack_every=5 if options.attack else 0)
            def report(text: str, k: int = cc.index) -> None:
                update(f"case {k}: {text}")
            if use_input_split(options.split, cc.net.n_inputs):   # batched, tensors only (input_split.py)
                result = input_search(task, options, case_deadline).run()
            else:
                result = Search(task, settings, case_deadline, report).run(task.any_case)
            out.lower[cc.index] = result.rows
            case_lower[cc.index] = result.key
            out.certificate["cases"].append({"case": cc.index, "status": result.status, **result.stats,
                                             "deep_domains": task.ctx.deep_domains})
            evidence["cases"][cc.index] = task.recorder.entry(result.status, result.rows)
            if result.status == "falsified":
                return out
            if result.status != "proved":
                reasons.append(_reason(cc.index, result.status))
    out.reason = "; ".join(reasons)
    out.timed_out = any("time limit" in r for r in reasons)
    return out


def input_search(task: "CaseTask", options: BnbOptions, deadline: float) -> InputSplitSearch:
    """The case's input-split search, recording its tree (and its alpha-CROWN leaves' items) in the task's
    recorder when evidence is on. It bounds at least 1024 domains per call and keeps up to 100,000
    open (as tensors: the box, the rows' bounds and the hidden layers' bounds of each)."""
    settings = InputSplitSettings(batch=max(options.batch, 1024), max_domains=max(options.max_domains, 100_000),
                                  node_limit=options.node_limit, rule=options.input_branching,
                                  alpha_depth=options.input_alpha)
    recording = options.evidence
    search = InputSplitSearch(task.cc, task.check, settings, deadline, options.device,
                              tree=InputTree() if recording else None,
                              alpha_items=task.recorder.input_alpha_items if recording else None)
    task.recorder.inputs = search.tree       # the tree the certificate states (optcert check)
    return search


MEMORY_BUDGET = 2 * 2 ** 30   # bytes of queued domain bounds, whatever max_domains says


def domain_cap(cc: CompiledCase, options: BnbOptions) -> int:
    """max_domains, lowered so that the queued bounds (two float64 per neuron) fit MEMORY_BUDGET."""
    per_domain = 16 * sum(a.size for a in cc.ibp.lower) + 512
    return max(2 * options.batch, min(options.max_domains, MEMORY_BUDGET // per_domain))


def _reason(case: int, status: str) -> str:
    text = {"timeout": "time limit reached", "node_limit": "node limit reached",
            "memory": "domain queue reached max_domains",
            "stuck": "some linear regions could not be decided (ties or solver failures)"}.get(status, status)
    return f"case {case}: {text}"


# ---- attacks inside the search ------------------------------------------------------------------------
def attack_boxes(ctx: CaseContext, domains, seed: int, deadline: float, steps: int = 20,
                 restarts: int = 4, hints: np.ndarray | None = None) -> list[np.ndarray]:
    """Best input per domain box from a short signed-gradient PGD on the case margin, started from
    the box centre, random points and (when given) `hints`: the best relaxation optima screened
    so far, clipped into each box."""
    import torch

    lo = torch.as_tensor(np.stack([d.lower[0] for d in domains]), device=ctx.device).repeat_interleave(restarts, 0)
    hi = torch.as_tensor(np.stack([d.upper[0] for d in domains]), device=ctx.device).repeat_interleave(restarts, 0)
    gen = torch.Generator(device=ctx.device).manual_seed(seed)
    x = lo + (hi - lo) * torch.rand(lo.shape, generator=gen, dtype=torch.float64, device=ctx.device)
    x[::restarts] = (lo[::restarts] + hi[::restarts]) / 2
    if hints is not None and restarts > 1:
        h = torch.as_tensor(hints[np.arange(len(domains)) % len(hints)], device=ctx.device)
        x[1::restarts] = torch.minimum(torch.maximum(h, lo[1::restarts]), hi[1::restarts])
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
