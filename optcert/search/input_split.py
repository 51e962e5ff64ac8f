"""Branch and bound by input splitting, batched end to end (ReluVal / Neurify style; Wang et al.
2018), for nets with few inputs.

The open domains live in tensors (boxes, per-row certified lower bounds, the input dimension to
split next), never as one Python object per domain. Each step takes the `batch` domains with
the lowest certified case margin, bisects each along its chosen dimension, and bounds all the
children in one call (`bound_boxes`): forward-mode linear bounds on the hidden layers
(bounds/forward.py, intersected with interval arithmetic) and one backward CROWN pass on the
output rows, in float32 with rigorous rounding — or CROWN on every layer (`Mode.CROWN`, for nets
the forward mode does not handle). A child's rows are never below its parent's (a sub-box).

Branching (search/input_branching.py): by default a look-ahead between two candidate dimensions
per domain — the largest smear and the best balance of smear and relative width — both splits
bounded in the same call, the one whose worse child has the better bound kept (the children's
bounds are certified either way). Smear alone stalled on ACAS Xu 3_5 prop_1, splitting four
dimensions to relative width 1e-6 and never the fifth (bench/results/input_branching.md).
Deep domains (`alpha_depth` > 0): the picked domains at least `alpha_depth` bisections deep get
alpha-CROWN on the output before they are split (bounding.py's `_optimise_output`, float64, the
hidden bounds fixed; for an ANY case the rows' weights optimised with the slopes), all in one
batch; a domain it proves is a leaf whose best iterate's multipliers are its certificate items
(`alpha_items`, given by the engine when recording), the others are split with their rows raised.
The single lower slope of CROWN is what leaves near ties open: on ACAS Xu 3_3 prop_2 the 200 worst
open boxes after 40 s have CROWN bounds ≈ −0.011, and the LP triangle relaxation (+0.0028 on every
one, 11–30 ms per box with HiGHS) or 8 Adam steps of alpha-CROWN (+0.0002, 0.34 ms per box
batched; 20 steps, the default, +0.0028) prove all of them; finer row weights in CROWN alone gain
nothing. In the search itself (3_3 prop_2, 60 s, bench/results/input_alpha.md) alpha from depth 20
raises the bound from −0.0107 to −0.0059 and from depth 30 proves 99 % of the domains it is given,
yet ~30,000 shallower domains stay open: not enough for a proof, and extra work elsewhere, so it is
off by default.
Falsification: the children's centres and the minimisers of their linear lower bounds are
evaluated in float64 on the folded net; a violating one is handed to `check`, which re-checks it
on the original network. Verdicts are decided in certify.py, not here.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from optcert.bounds.forward import supported
from optcert.bounds.torch_net import torch_net
from optcert.compiled import CompiledCase
from optcert.precision import Precision
from optcert.search.box_bounding import Mode, bound_boxes
from optcert.search.coordinator import SearchResult
from optcert.search.input_branching import InputRule, candidate_dims, choose
from optcert.search.input_tree import InputTree
from optcert.spec.problem import Combine


@dataclass(frozen=True)
class InputSplitSettings:
    batch: int = 1024            # domains split per step (2 × batch children bounded per call)
    max_domains: int = 100_000   # open domains at most (the run ends "memory" beyond)
    node_limit: int = 10_000_000
    precision: Precision = Precision.FLOAT32
    mode: Mode | None = None     # None: forward when the net supports it
    rule: InputRule = InputRule.LOOKAHEAD
    alpha_depth: int = 0         # alpha-CROWN on domains at least this deep (module doc; 0: none)
    alpha_iterations: int = 20


@dataclass
class _Open:
    """The open domains as tensors."""

    lo: Any
    hi: Any
    rows: Any      # (N, m) certified lower bounds on the folded outputs
    value: Any     # (N,) certified lower bound on the case margin
    dim: Any       # (N, 2) candidate input dimensions to split next (−1: none left)
    depth: Any     # (N,)
    hid_lo: Any    # (N, Σ n_k) bounds on the hidden layers (valid in every sub-box)
    hid_hi: Any
    node: Any      # (N,) node ids in the recorded tree (search/input_tree.py), or None

    def without(self, keep) -> "_Open":
        k = keep.numpy()
        return _Open(self.lo[keep], self.hi[keep], self.rows[k], self.value[k], self.dim[k], self.depth[keep],
                     self.hid_lo[keep], self.hid_hi[keep], None if self.node is None else self.node[k])

    def plus(self, other: "_Open") -> "_Open":
        import torch

        return _Open(torch.cat([self.lo, other.lo]), torch.cat([self.hi, other.hi]),
                     np.concatenate([self.rows, other.rows]), np.concatenate([self.value, other.value]),
                     np.concatenate([self.dim, other.dim]), torch.cat([self.depth, other.depth]),
                     torch.cat([self.hid_lo, other.hid_lo]), torch.cat([self.hid_hi, other.hid_hi]),
                     None if self.node is None else np.concatenate([self.node, other.node]))


@dataclass
class InputSplitSearch:
    """One case's input-split search (module doc). `check(x)` re-checks a candidate."""

    cc: CompiledCase
    check: Callable[[np.ndarray], bool]
    settings: InputSplitSettings
    deadline: float
    device: str = "cpu"
    stats: dict = field(default_factory=dict)
    tree: InputTree | None = None    # records the splits and leaves (certificates) when given
    alpha_items: Callable | None = None  # (lower, upper, nus, weights) -> checker items per domain

    def __post_init__(self):
        self.tn = torch_net(self.cc.net, self.device, self.settings.precision)
        self.mode = self.settings.mode or (Mode.HYBRID if supported(self.tn) else Mode.CROWN)
        self.any_case = self.cc.case.combine is Combine.ANY
        self.max_fold = float(np.max(self.cc.fold_error, initial=0.0))
        width = self.cc.hi - self.cc.lo
        self.root_scale = np.where(width > 0, width, 1.0)   # relative widths are widths / this
        m = self.cc.case.spec.rows
        self.floor_rows, self.floor_value, self.floor_key = np.full(m, np.inf), math.inf, math.inf
        self.cex: np.ndarray | None = None
        self.status: str | None = None   # set once the search has ended
        self.closed = 0.0                # share of the root decided (Σ 2^-depth over closed leaves)
        self.tree_closed = False         # the open domains were recorded as leaves (the search ended)
        self.busy = 0.0                  # wall seconds spent in start/advance
        self.rate = 0.0                  # seconds per child of the last bounding call
        self.fanout = 2.0                # children bounded per split domain in the last step (2–4)
        self.state: _Open | None = None
        self.alpha_ctx = None            # bounding.CaseContext of the deep domains' alpha-CROWN
        self.stats = {"nodes": 0, "batches": 0, "lookahead": 0, "second_choice": 0, "pruned": 0, "infeasible": 0,
                      "leaf_lps": 0, "alpha_domains": 0, "alpha_leaves": 0, "unresolved_leaves": 0, "max_queue": 0,
                      "max_depth": 0, "attacks": 0,
                      "split": "input (batched)", "bounding": self.mode.value,
                      "seconds": {"bound": 0.0, "branch": 0.0, "leaf": 0.0, "attack": 0.0}}

    # ---- values and weights ------------------------------------------------------------------
    # `rows` arrays are (N, m + 1): the m folded rows' lower bounds, then the best pairwise average.
    def _values(self, rows: np.ndarray) -> np.ndarray:
        """Certified lower bounds on the true case margin (an average of rows carries at most the
        largest row's fold error)."""
        if self.any_case:
            return np.nextafter(self._keys(rows) - self.max_fold, -np.inf)
        return np.min(self.cc.sound(rows[:, :-1]), axis=1)

    def _keys(self, rows: np.ndarray) -> np.ndarray:
        """Lower bounds on the folded case margin (certify.py allows for the fold)."""
        return rows.max(axis=1) if self.any_case else rows[:, :-1].min(axis=1)

    def _weights(self, rows: np.ndarray) -> np.ndarray:
        sound = self.cc.sound(rows[:, :-1])
        if self.any_case:
            w = np.zeros_like(sound)
            w[np.arange(len(w)), np.argmax(sound, axis=1)] = 1.0
            return w
        w = (sound <= 0).astype(np.float64)
        w[~w.any(axis=1)] = 1.0
        return w

    # ---- one bounding call -------------------------------------------------------------------
    def _bound(self, lo, hi, parent_rows, given=None):
        """(rows, next split dimension, hidden-layer bounds) of the boxes, rows never below the
        parents'."""
        import torch

        t = time.monotonic()
        weights = torch.as_tensor(self._weights(parent_rows))
        out = bound_boxes(self.tn, lo, hi, self.mode, weights, pairs=self.any_case, given=given)
        rows = np.maximum(np.concatenate([out.rows.cpu().numpy(), out.pairs.cpu().numpy()[:, None]], axis=1),
                          parent_rows)
        self.stats["seconds"]["bound"] += time.monotonic() - t
        self.stats["nodes"] += lo.shape[0]
        t = time.monotonic()
        self._try_candidates(out.candidates.cpu().numpy())
        self.stats["seconds"]["attack"] += time.monotonic() - t
        dims = candidate_dims(out.smear.cpu().numpy(), (hi - lo).cpu().numpy() / self.root_scale)
        if self.settings.rule is InputRule.SMEAR:
            dims[:, 1] = dims[:, 0]
        elif self.settings.rule is InputRule.BALANCED:
            dims[:, 0] = dims[:, 1]
        return rows, dims, out.hidden

    def _try_candidates(self, xs: np.ndarray) -> None:
        """Evaluate candidate inputs on the folded net (float64); re-check the worst violating one."""
        if self.cex is not None:
            return
        out = self.cc.net.forward(xs)[-1]
        case = out.max(axis=1) if self.any_case else out.min(axis=1)
        best = int(np.argmin(case))
        if case[best] < 1e-9 * (1 + np.abs(out[best]).max()):
            self.stats["attacks"] += 1
            if self.check(xs[best]):
                self.cex = xs[best]

    # ---- the loop (resumable: start, then advance(until) until it returns a status) ----------
    def start(self) -> str | None:
        """Bound the root box; the final status if that already ends the search."""
        import torch

        t = time.monotonic()
        lo = torch.tensor(self.cc.lo, dtype=torch.float64)[None]
        hi = torch.tensor(self.cc.hi, dtype=torch.float64)[None]
        start_rows = np.append(self.cc.ibp.lower[-1], -np.inf)[None]
        rows, dim, hidden = self._bound(lo, hi, start_rows)
        self.state = self._absorb(lo, hi, rows, dim, torch.zeros(1, dtype=torch.long), hidden,
                                  None if self.tree is None else np.zeros(1, dtype=np.int64))
        self.busy += time.monotonic() - t
        self.rate = time.monotonic() - t   # one child's pace, set-up included: the first batch is
        return self._check_stop()          # sized by it (an unsized full batch overran the deadline)

    def advance(self, until: float = math.inf) -> str | None:
        """Split and bound batches until `until` (at least one batch per call, so slices
        progress); the final status when the search has ended, None when it only paused. Batch
        sizes depend on the deadline only, so a sliced search takes the same steps as one run."""
        if self.state is None:
            self.start()
        if self.status is not None:
            return self.status
        t = time.monotonic()
        try:
            while not self._check_stop():
                self._step()
                if time.monotonic() > until:
                    return self._check_stop() or None
            return self.status
        finally:
            self.busy += time.monotonic() - t

    def run(self) -> SearchResult:
        """The whole search up to the deadline (module doc)."""
        self.start()
        return self.result(self.advance())

    def projected(self) -> float:
        """Seconds this search should still need at its average pace so far (inf before progress)."""
        if self.status in ("proved", "falsified"):
            return 0.0
        if self.closed <= 0 or self.status is not None:
            return math.inf
        return self.busy * (1.0 - self.closed) / self.closed

    def _check_stop(self) -> str | None:
        if self.status is None and self.state is not None:
            self.status = self._stop(self.state, self.rate) or None
        return self.status

    def _step(self) -> None:
        """Split the `batch` worst open domains and bound their children in one call."""
        import torch

        state = self.state
        assert state is not None, "start() bounds the root first"
        k = min(self.settings.batch, state.lo.shape[0], self._affordable(self.rate))
        pick = torch.topk(torch.as_tensor(-state.value), k).indices
        pick, proved = self._deep_leaves(state, pick)
        pick = pick[:self._affordable(self.rate)]       # what is left of the time after alpha-CROWN
        keep = torch.ones(state.lo.shape[0], dtype=torch.bool)
        keep[pick] = False
        keep[proved] = False
        t = time.monotonic()                            # the rate is of bounding only
        kids = self._children(state, pick) if len(pick) else None
        state = state.without(keep)
        self.state = state.plus(self._absorb(*kids)) if kids else state
        self.stats["batches"] += 1
        self.stats["max_queue"] = max(self.stats["max_queue"], self.state.lo.shape[0])
        self.rate = (time.monotonic() - t) / max(1.0, len(pick) * self.fanout)

    def _deep_leaves(self, state: _Open, pick):
        """alpha-CROWN on the picked domains deep enough (module doc), raising their rows; the
        picked domains still to split, and the ones it proved."""
        import torch

        none = torch.zeros(0, dtype=torch.long)
        if not self.settings.alpha_depth:
            return pick, none
        deep = pick[state.depth[pick] >= self.settings.alpha_depth]
        if not len(deep):
            return pick, none
        t = time.monotonic()
        i = deep.numpy()
        rows, items = self._alpha(state, i)
        state.rows[i] = np.maximum(state.rows[i], rows)
        state.value[i] = self._values(state.rows[i])
        self.stats["alpha_domains"] += len(i)
        self.stats["seconds"]["leaf"] += time.monotonic() - t
        won = state.value[i] > 0
        if not won.any():
            return pick, none
        done = i[won]
        if self.tree is not None and items is not None:
            for b, w in zip(done, np.flatnonzero(won)):
                self.tree.items += [(int(state.node[b]), item) for item in items[w]]
        self.stats["pruned"] += len(done)
        self.stats["alpha_leaves"] += len(done)
        gone = torch.as_tensor(done)
        self._finish(state.rows[done], state.value[done], state.depth[gone].numpy(),
                     None if state.node is None else state.node[done])
        return pick[~torch.isin(pick, gone)], gone

    def _alpha(self, state: _Open, i: np.ndarray) -> tuple[np.ndarray, list | None]:
        """alpha-CROWN bounds of domains i on the folded rows ((k, m + 1), −inf where none; the
        last column: an ANY case's weighted combination) and each domain's certificate items (None
        without `alpha_items`)."""
        import torch

        from optcert.bounds.torch_net import DomainBatch
        from optcert.search.bounding import CaseContext, _optimise_output

        if self.alpha_ctx is None:
            self.alpha_ctx = CaseContext(self.cc, self.device, self.settings.alpha_iterations, 0.1, False)
        ctx, m, L = self.alpha_ctx, self.cc.case.spec.rows, self.tn.depth
        at = torch.as_tensor(i)
        sizes = self.tn.sizes()[1:L]
        lower = [state.lo[at].double(), *torch.split(state.hid_lo[at].double(), sizes, dim=1)]
        upper = [state.hi[at].double(), *torch.split(state.hid_hi[at].double(), sizes, dim=1)]
        inner = DomainBatch(tuple(x.to(self.device) for x in lower), tuple(x.to(self.device) for x in upper))
        start = torch.as_tensor(state.rows[i, :-1]) if self.any_case else None
        best = _optimise_output(ctx, inner, self.deadline, start).cpu().numpy()
        out = np.full((len(i), m + 1), -np.inf)
        if self.any_case:
            out[:, m] = best[:, 0]
        else:
            out[:, :m] = best
        if self.alpha_items is None:
            return out, None
        assert ctx.last_best is not None, "_optimise_output keeps its best iterates"
        kept = ctx.last_best.numpy()
        items = self.alpha_items([x.numpy() for x in lower], [x.numpy() for x in upper], kept["nus"],
                                 kept["weights"][:, None, :] if self.any_case else
                                 np.broadcast_to(np.eye(m), (len(i), m, m)))
        stated = np.array([[it["bound"] for it in its] for its in items])     # what the checker re-derives
        fold = self.max_fold if self.any_case else self.cc.fold_error
        if self.any_case:
            out[:, m] = np.minimum(out[:, m], stated[:, 0] + fold)
        else:
            out[:, :m] = np.minimum(out[:, :m], stated + fold)
        return out, items

    def _children(self, state: _Open, pick):
        """Both halves of each picked domain along the better of its two candidate dimensions
        (module doc), bounded; the arguments of `_absorb`."""
        import torch

        idx = pick.numpy()
        dims = state.dim[idx]
        alt = np.flatnonzero((dims[:, 1] != dims[:, 0]) & (dims[:, 1] >= 0))
        owners = np.concatenate([np.arange(len(idx)), alt])            # one split per (domain, candidate)
        d = np.concatenate([dims[:, 0], dims[alt, 1]])
        at_state = torch.as_tensor(idx[owners])
        olo, ohi = state.lo[at_state], state.hi[at_state]
        at = torch.arange(len(owners))
        dt = torch.as_tensor(d)
        mid = olo[at, dt] + (ohi[at, dt] - olo[at, dt]) / 2
        left_hi, right_lo = ohi.clone(), olo.clone()
        left_hi[at, dt] = mid
        right_lo[at, dt] = mid
        parent_rows = np.concatenate([state.rows[idx[owners]]] * 2)
        sel = at_state.repeat(2)
        given = (state.hid_lo[sel], state.hid_hi[sel])
        klo, khi = torch.cat([olo, right_lo]), torch.cat([left_hi, ohi])
        rows, kid_dims, hidden = self._bound(klo, khi, parent_rows, given)
        self.fanout = 2.0 * len(owners) / max(1, len(idx))
        chosen = choose(self._values(rows), len(idx), alt)        # (k,) split index per domain
        self.stats["lookahead"] += len(alt)
        self.stats["second_choice"] += int(np.sum(chosen >= len(idx)))
        take = torch.as_tensor(np.concatenate([chosen, chosen + len(owners)]))
        depth = (state.depth[pick] + 1).repeat(2)
        nodes = None
        if self.tree is not None:
            nodes = self.tree.split(state.node[idx], d[chosen], mid[torch.as_tensor(chosen)].numpy())
        return (klo[take], khi[take], rows[take.numpy()], kid_dims[take.numpy()], depth,
                (hidden[0][take], hidden[1][take]), nodes)

    def _absorb(self, lo, hi, rows: np.ndarray, dim: np.ndarray, depth, hidden, nodes=None) -> _Open:
        """Prune the proved children (folding them into the floor), keep the rest open; a child
        too narrow to split any further is left unresolved."""
        import torch

        values = self._values(rows)
        proved = values > 0
        stuck = ~proved & (dim[:, 0] < 0)
        done = proved | stuck
        if done.any():
            self._finish(rows[done], values[done], depth.numpy()[done], None if nodes is None else nodes[done])
        self.stats["pruned"] += int(proved.sum())
        self.stats["unresolved_leaves"] += int(stuck.sum())
        if depth.numel():
            self.stats["max_depth"] = max(self.stats["max_depth"], int(depth.max()))
        keep = torch.as_tensor(~done)
        return _Open(lo[keep], hi[keep], rows[~done], values[~done], dim[~done], depth[keep],
                     hidden[0][keep], hidden[1][keep], None if nodes is None else nodes[~done])

    def _finish(self, rows: np.ndarray, values: np.ndarray, depth: np.ndarray, nodes) -> None:
        """Fold finished domains (proved, or too narrow to split) into the floor, the closed share
        and the recorded tree."""
        self.floor_rows = np.minimum(self.floor_rows, rows[:, :-1].min(axis=0))
        self.floor_value = min(self.floor_value, float(values.min()))
        self.floor_key = min(self.floor_key, float(self._keys(rows).min()))
        self.closed += float(np.sum(0.5 ** depth.astype(np.float64)))
        if self.tree is not None:
            self.tree.leaves(nodes, rows[:, :-1], values)

    def _affordable(self, rate: float) -> int:
        """Domains to split now so that bounding their children (`fanout` per domain, look-ahead
        included) should end before the deadline (from the last call's seconds per child, with a
        quarter to spare)."""
        remaining = self.deadline - time.monotonic()
        if rate <= 0 or not math.isfinite(remaining):
            return self.settings.batch if remaining > 0 else 0
        return max(0, min(self.settings.batch, int(remaining / (self.fanout * 1.25 * rate))))

    def _stop(self, state: _Open, rate: float) -> str:
        if self.cex is not None:
            return "falsified"
        if state.lo.shape[0] == 0:
            return "stuck" if self.stats["unresolved_leaves"] else "proved"
        if self._affordable(rate) < 1:
            return "timeout"
        if self.stats["nodes"] >= self.settings.node_limit:
            return "node_limit"
        if state.lo.shape[0] + min(self.settings.batch, state.lo.shape[0]) > self.settings.max_domains:
            return "memory"
        return ""

    def result(self, status: str | None = None) -> SearchResult:
        """The floor so far (min over closed and open domains) with the search's status."""
        status = status or self.status or "timeout"
        rows, key, state = self.floor_rows.copy(), self.floor_key, self.state
        if state is not None and state.lo.shape[0]:
            rows = np.minimum(rows, state.rows[:, :-1].min(axis=0))
            key = min(key, float(self._keys(state.rows).min()))
        self.stats["open"] = int(state.lo.shape[0]) if state is not None else 0
        self.stats["closed_share"] = self.closed
        if self.tree is not None and self.status is not None and not self.tree_closed:
            self.tree_closed = True       # the search has ended: its open domains are leaves too
            if state is not None and state.lo.shape[0]:
                self.tree.leaves(state.node, state.rows[:, :-1], state.value)
        return SearchResult(status, rows, key, self.cex, self.stats)
