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
LP leaves (`lp_depth` > 0; off by default): the worst domains picked for splitting that are at least
`lp_depth` bisections deep get the LP triangle relaxation over their box and hidden bounds (search/leaves.py; for an ANY
case the minimum of the rows' max, which weighs the rows optimally — a CROWN pass bounds single
rows and pairwise averages only), worst first, while LP time stays within `lp_share` of the
search's. A domain the LP proves is a leaf, its LP duals its certificate item (`lp_item`, given by
the engine when recording); the others are split with their rows raised. Measured on ACAS Xu
3_3 prop_2 (a near tie, rows 0 and 2): the 200 worst open boxes after 40 s have CROWN bounds
around −0.011 and LP bounds +0.0028 each; at depth ≥ 20 the LP proves 60–100 % of the boxes it is
given (4_2 prop_2 likewise), but at 20–30 ms per LP it closes ~50 boxes a second against ~20,000
open ones, so neither near tie is proved within 60 s, and on other instances the LPs would only
cost time: hence off by default (bench/results/input_branching.md).
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
    lp_depth: int = 0            # LP leaves on domains at least this deep (module doc; 0: none)
    lp_share: float = 0.5        # ... within this share of the search's time


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
    lp_item: Callable | None = None  # (bounds, lowered, duals) -> checker item of an LP leaf, or None

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
        self.started = time.monotonic()
        self.stats = {"nodes": 0, "batches": 0, "lookahead": 0, "second_choice": 0, "pruned": 0, "infeasible": 0,
                      "leaf_lps": 0, "lp_leaves": 0, "unresolved_leaves": 0, "max_queue": 0, "max_depth": 0, "attacks": 0,
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

        t, state = time.monotonic(), self.state
        assert state is not None, "start() bounds the root first"
        k = min(self.settings.batch, state.lo.shape[0], self._affordable(self.rate))
        pick = torch.topk(torch.as_tensor(-state.value), k).indices
        pick, proved = self._lp_leaves(state, pick, self.rate * k * self.fanout)
        pick = pick[:self._affordable(self.rate)]       # what is left of the time after the LPs
        keep = torch.ones(state.lo.shape[0], dtype=torch.bool)
        keep[pick] = False
        keep[proved] = False
        t = time.monotonic()
        kids = self._children(state, pick) if len(pick) else None
        state = state.without(keep)
        self.state = state.plus(self._absorb(*kids)) if kids else state
        self.stats["batches"] += 1
        self.stats["max_queue"] = max(self.stats["max_queue"], self.state.lo.shape[0])
        self.rate = (time.monotonic() - t) / max(1.0, k * self.fanout)

    def _lp_leaves(self, state: _Open, pick, step: float):
        """LP leaves among the picked domains (module doc), within the search's LP share and at
        most `step` seconds (about one bounding call); (picked domains still to split, proved)."""
        import torch

        none = torch.zeros(0, dtype=torch.long)
        if not self.settings.lp_depth:
            return pick, none
        spent = self.stats["seconds"]["leaf"]
        budget = min(step, self.settings.lp_share * (time.monotonic() - self.started) - spent)
        deep = pick[state.depth[pick] >= self.settings.lp_depth].numpy()
        proved = []
        for i in deep:
            if budget <= 0 or time.monotonic() > self.deadline:
                break
            t = time.monotonic()
            rows, items = self._leaf_lp(state, int(i))
            budget -= time.monotonic() - t
            self.stats["seconds"]["leaf"] += time.monotonic() - t
            state.rows[i] = np.maximum(state.rows[i], rows)
            state.value[i] = self._values(state.rows[i:i + 1])[0]
            if state.value[i] > 0:
                proved.append(int(i))
                if self.tree is not None:
                    self.tree.items += [(int(state.node[i]), item) for item in items]
        if not proved:
            return pick, none
        done = np.array(proved)
        self.stats["pruned"] += len(done)
        self.stats["lp_leaves"] += len(done)
        self.floor_rows = np.minimum(self.floor_rows, state.rows[done, :-1].min(axis=0))
        self.floor_value = min(self.floor_value, float(state.value[done].min()))
        self.floor_key = min(self.floor_key, float(self._keys(state.rows[done]).min()))
        self.closed += float(np.sum(0.5 ** state.depth[torch.as_tensor(done)].numpy().astype(np.float64)))
        if self.tree is not None:
            self.tree.leaves(state.node[done], state.rows[done, :-1], state.value[done])
        gone = torch.as_tensor(done)
        return pick[~torch.isin(pick, gone)], gone

    def _leaf_lp(self, state: _Open, i: int) -> tuple[np.ndarray, list]:
        """The LP bounds of domain i on the folded rows (m + 1 columns, −inf where none; the last:
        an ANY case's min-max) and their certificate items (none without `lp_item`)."""
        from optcert.bounds.interval import ibp
        from optcert.bounds.layer_bounds import Bounds
        from optcert.search.leaves import solve_leaf_lp

        m = self.cc.case.spec.rows
        sizes = self.cc.net.sizes()
        cuts = np.cumsum(sizes[1:-1])[:-1]
        lo, hi = state.lo[i].numpy(), state.hi[i].numpy()
        inf = np.full(sizes[-1], np.inf)
        given = Bounds((lo, *np.split(state.hid_lo[i].numpy(), cuts), -inf),
                       (hi, *np.split(state.hid_hi[i].numpy(), cuts), inf))
        bounds = ibp(self.cc.net, lo, hi, given)
        out, items = np.full(m + 1, -np.inf), []
        objectives = [tuple(range(m))] if self.any_case else \
            [(r,) for r in np.flatnonzero(self.cc.sound(state.rows[i, :-1]) <= 0)]
        for rows in objectives:
            value, x, duals = solve_leaf_lp(self, bounds, rows, self.deadline)
            self.stats["leaf_lps"] += 1
            if x is not None:
                self._try_candidates(np.asarray(x, dtype=np.float64)[None])
            if not (-np.inf < value < np.inf) or duals is None:
                continue                     # no bound, or an (uncertified) empty box: nothing gained
            if self.lp_item is not None:     # what the certificate states is what the checker re-derives
                item = self.lp_item(bounds, duals[1], duals[2])
                if item is None:
                    continue
                items.append(item)
                fold = self.max_fold if self.any_case else float(self.cc.fold_error[rows[0]])
                value = min(value, item["bound"] + fold)
            out[m if self.any_case else rows[0]] = value
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
            self.floor_rows = np.minimum(self.floor_rows, rows[done, :-1].min(axis=0))
            self.floor_value = min(self.floor_value, float(values[done].min()))
            self.floor_key = min(self.floor_key, float(self._keys(rows[done]).min()))
        self.closed += float(np.sum(0.5 ** depth.numpy()[done].astype(np.float64)))
        if self.tree is not None and done.any():
            self.tree.leaves(nodes[done], rows[done, :-1], values[done])
        self.stats["pruned"] += int(proved.sum())
        self.stats["unresolved_leaves"] += int(stuck.sum())
        if depth.numel():
            self.stats["max_depth"] = max(self.stats["max_depth"], int(depth.max()))
        keep = torch.as_tensor(~done)
        return _Open(lo[keep], hi[keep], rows[~done], values[~done], dim[~done], depth[keep],
                     hidden[0][keep], hidden[1][keep], None if nodes is None else nodes[~done])

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
