"""Branch-and-bound coordinator, generic over a bounding function and a branching rule.

A domain is a `Bounds` (input box, per-layer intervals, ReLU splits as hi = 0 / lo = 0) with the
certified lower bounds its bounding gave: per row of the folded net's output (`rows`) and on the
case margin (`key`). Domains wait in a heap ordered by their certified case margin (worst first,
ties by insertion order, so a run is deterministic). Each step pops up to `batch` domains, splits
each by the decision its branching rule took when it was bounded, bounds all children in one call,
and then for each child:

* proved empty (some layer has lo > hi, or an LP certifies infeasibility): dropped (bound +inf);
* decided (certified case margin > 0): pruned, its bounds kept in the running floor;
* nothing left to split (every ReLU stable or split: a linear region): handed to `leaf`, which
  solves it exactly (LP) and returns its certified value and optimal input; the input is a
  candidate counterexample, so the method is complete;
* otherwise pushed with its decision.

Every bounded domain also offers candidate inputs (`Bounded.points`: the relaxation's optimal
input, evaluated on the real network by `Task.screen`), so counterexamples are looked for all
through the search, not only by the attacks at its start.

The global lower bound per row (and on the case margin) is the minimum over every leaf of the
tree — pruned, unresolvable or still open; a child never has a worse bound than its parent. The
search stops at the first counterexample that `check` confirms, at the deadline, at the node
limit, or before the queue would exceed `max_domains` (the run then ends UNKNOWN-level with the
bound so far; nothing crashes). Verdicts are not decided here: see certify.py.

A search can be advanced in time slices (`start`, then `advance(until)` until it returns a
status), so a portfolio can interleave two searches; `closed` is the share of the root that is
decided (Σ 2^−depth over closed leaves: every split halves a domain), the portfolio's measure
of progress.
"""
from __future__ import annotations

import heapq
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from optcert.bounds.layer_bounds import Bounds
from optcert.search.branching import Bounded, Decision, children, first_changed_layer


@dataclass
class Domain:
    bounds: Bounds
    rows: np.ndarray          # certified lower bounds on the folded outputs
    key: float                # certified lower bound on the folded case margin
    decision: Decision | None
    depth: int = 0
    path: tuple = ()          # (layer, index, split point, side) of each split from the root


@dataclass(frozen=True)
class LeafAnswer:
    """A linear region solved exactly: `rows`/`key` certified (inf when infeasible), `x` its
    optimal input (None when there is none); `solved` False when the solver gave no bound."""

    rows: np.ndarray
    key: float
    x: np.ndarray | None
    solved: bool
    duals: tuple = ()     # (objective rows, lowering, row duals, infeasible?) of each LP (for certificates)


class Task(Protocol):
    """What the coordinator needs from the engine for one case."""

    root: Bounds

    def bound(self, domains: Sequence[Bounds], start: int, deadline: float) -> Bounded: ...

    def decide(self, bounded: Bounded, index: int, value: float) -> Decision | None: ...

    def value(self, rows: np.ndarray, key: float) -> float: ...

    def leaf(self, bounds: Bounds, deadline: float) -> LeafAnswer: ...

    def check(self, x: np.ndarray) -> bool: ...

    def attack(self, domains: Sequence[Bounds], deadline: float) -> list[np.ndarray]: ...

    def screen(self, points: np.ndarray) -> np.ndarray | None: ...


def _path(d: Domain, side: int, child: Bounds) -> tuple:
    """The child's path: the parent's plus this split (the input split point read off the child)."""
    assert d.decision is not None
    k, i = d.decision.layer, d.decision.index
    point = float(child.upper[0][i] if side == 0 else child.lower[0][i]) if k == 0 else float("nan")
    return d.path + ((k, i, point, side),)


@dataclass(frozen=True)
class SearchSettings:
    batch: int = 64
    max_domains: int = 50_000
    node_limit: int = 1_000_000
    attack_every: int = 5         # PGD on the most promising open domains every this many batches
    attack_domains: int = 8


@dataclass
class SearchResult:
    status: str               # proved | falsified | timeout | node_limit | memory | stuck
    rows: np.ndarray          # global per-row lower bounds (folded)
    key: float                # global lower bound on the folded case margin
    counterexample: np.ndarray | None
    stats: dict = field(default_factory=dict)


class Search:
    def __init__(self, task: Task, settings: SearchSettings, deadline: float,
                 report: Callable[[str], None] | None = None):
        self.task, self.settings, self.deadline = task, settings, deadline
        self.report = report or (lambda text: None)
        self.heap: list[tuple[float, int, Domain]] = []
        self.counter = itertools.count()
        m = task.root.lower[-1].size
        self.floor_rows, self.floor_key = np.full(m, np.inf), math.inf
        self.cex: np.ndarray | None = None
        self.trace = getattr(task, "trace", None)   # optional recorder of the tree (certificates)
        self.any_case = False
        self.status: str | None = None   # set once the search has ended
        self.closed = 0.0                # share of the root decided (Σ 2^-depth over closed leaves)
        self.busy = 0.0                  # wall seconds spent in start/advance
        self.rate = 0.0   # seconds per domain of the last bounding call
        self.stats: dict[str, Any] = {"nodes": 0, "batches": 0, "pruned": 0, "infeasible": 0, "leaf_lps": 0,
                      "unresolved_leaves": 0, "max_queue": 0, "max_depth": 0, "attacks": 0,
                      "screened": 0, "seconds": {"bound": 0.0, "branch": 0.0, "leaf": 0.0, "attack": 0.0}}

    # ---- bookkeeping -----------------------------------------------------------------------------
    def _leaf(self, rows: np.ndarray, key: float, depth: int) -> None:
        """Fold a finished leaf's bounds into the running floor."""
        self.floor_rows = np.minimum(self.floor_rows, rows)
        self.floor_key = min(self.floor_key, key)
        self.closed += 2.0 ** -depth

    def _timed(self, phase: str, start: float) -> None:
        self.stats["seconds"][phase] += time.monotonic() - start

    def _candidate(self, x: np.ndarray | None) -> bool:
        if x is not None and self.cex is None and self.task.check(x):
            self.cex = np.asarray(x)
        return self.cex is not None

    def result(self, status: str | None = None) -> SearchResult:
        status = status or self.status or "timeout"
        rows, key = self.floor_rows.copy(), self.floor_key
        for _, _, d in self.heap:
            rows, key = np.minimum(rows, d.rows), min(key, d.key)
        self.stats["open"] = len(self.heap)
        self.stats["closed_share"] = self.closed
        return SearchResult(status, rows, key, self.cex, self.stats)

    def projected(self) -> float:
        """Seconds this search should still need at its average pace so far (inf before progress)."""
        if self.status == "proved" or self.status == "falsified":
            return 0.0
        if self.closed <= 0 or self.status is not None:
            return math.inf
        return self.busy * (1.0 - self.closed) / self.closed

    # ---- the loop ---------------------------------------------------------------------------------
    def _traced(self, path: tuple, bounded: Bounded | None, b: int, leaf: float | None) -> None:
        """Tell the recorder (if any) about a bounded domain; `leaf` its final value if it closed."""
        if self.trace is not None:
            self.trace(path, bounded, b, leaf)

    def absorb(self, kids: list[tuple[Bounds, np.ndarray, float, int, tuple]], bounded: Bounded) -> None:
        """Prune, solve or queue each bounded child (see module doc)."""
        self._screen(bounded)
        for b, (_, parent_rows, parent_key, depth, path) in enumerate(kids):
            bounds = bounded.bounds[b]
            if bounds is None:
                self.stats["infeasible"] += 1
                self.closed += 2.0 ** -depth
                self._traced(path, bounded, b, math.inf)
                continue
            rows = np.maximum(bounded.lower[b], parent_rows)
            key = max(float(bounded.key[b]), parent_key, float(np.max(rows) if self.any_case else np.min(rows)))
            value = self.task.value(rows, key)
            self.stats["max_depth"] = max(self.stats["max_depth"], depth)
            if value > 0:
                self.stats["pruned"] += 1
                self._leaf(rows, key, depth)
                self._traced(path, bounded, b, value)
                continue
            t = time.monotonic()
            decision = bounded.decisions[b] if bounded.decisions is not None else self.task.decide(bounded, b, value)
            self._timed("branch", t)
            if decision is None:
                if self.cex is not None:      # already falsified: keep the floor valid, skip the LP
                    self._leaf(rows, key, depth)
                else:
                    self._traced(path, bounded, b, self._solve_leaf(bounds, rows, key, depth))
                continue
            self._traced(path, bounded, b, None)
            heapq.heappush(self.heap, (value, next(self.counter), Domain(bounds, rows, key, decision, depth, path)))
        self.stats["max_queue"] = max(self.stats["max_queue"], len(self.heap))

    def _screen(self, bounded: Bounded) -> None:
        """Evaluate the domains' candidate points on the real network; check the most violating."""
        if bounded.points is None or self.cex is not None or not len(bounded.points):
            return
        self.stats["screened"] += len(bounded.points)
        self._candidate(self.task.screen(bounded.points))

    def _solve_leaf(self, bounds: Bounds, rows: np.ndarray, key: float, depth: int) -> float:
        """Exact LP on a linear region; its optimal input is checked as a counterexample. Returns
        the leaf's certified value (+inf when infeasible)."""
        t = time.monotonic()
        answer = None                   # out of time: the leaf stays open (its bounds keep the floor valid)
        if t <= self.deadline:
            answer = self.task.leaf(bounds, self.deadline)
            self._timed("leaf", t)
            self.stats["leaf_lps"] += 1
        if answer is None or not answer.solved:
            self.stats["unresolved_leaves"] += 1
            self._leaf(rows, key, depth)
            return self.task.value(rows, key)
        rows, key = np.maximum(rows, answer.rows), max(key, answer.key)
        if math.isinf(key) and key > 0:
            self.stats["infeasible"] += 1
            self.closed += 2.0 ** -depth
            return math.inf
        self._candidate(answer.x)
        if self.task.value(rows, key) > 0:
            self.stats["pruned"] += 1
        else:
            self.stats["unresolved_leaves"] += 1   # a tie: neither provable nor falsifiable here
        self._leaf(rows, key, depth)
        return self.task.value(rows, key)

    def _affordable(self, batch: int) -> int:
        """How many domains to split now so that bounding their children should end before the
        deadline (from the last call's seconds per domain); 0 when not even one fits. Right after
        the root, whose one-domain call carries the whole fixed cost of a pass (large nets: seconds),
        one domain is split if the root's time fits, and the pace of that batch is measured."""
        remaining = self.deadline - time.monotonic()
        if not math.isfinite(remaining) or self.rate <= 0:
            return batch
        fits = max(0, min(batch, int(remaining / (2.0 * 1.25 * self.rate))))
        if fits == 0 and self.stats["batches"] == 0 and remaining > 1.25 * self.rate:
            return 1
        return fits

    def _bound(self, kids: list[tuple[Bounds, np.ndarray, float, int, tuple]], start: int) -> Bounded:
        t = time.monotonic()
        bounded = self.task.bound([k[0] for k in kids], start, self.deadline)
        self._timed("bound", t)
        self.rate = (time.monotonic() - t) / len(kids)
        self.stats["nodes"] += len(kids)
        return bounded

    def _attack(self) -> bool:
        t = time.monotonic()
        best = heapq.nsmallest(self.settings.attack_domains, self.heap)
        xs = self.task.attack([d.bounds for _, _, d in best], self.deadline)
        self.stats["attacks"] += 1
        found = any(self._candidate(x) for x in xs)
        self._timed("attack", t)
        return found

    def start(self, any_case: bool) -> str | None:
        """Bound the root; the final status if that already ends the search."""
        t = time.monotonic()
        self.any_case = any_case
        root = self.task.root
        rows = root.lower[-1]      # the root's own output bounds (IBP) are valid to start from
        key = float(np.max(rows) if any_case else np.min(rows))
        self.absorb([(root, rows, key, 0, ())], self._bound([(root, rows, key, 0, ())], 1))
        self.busy += time.monotonic() - t
        return self._finish() if self.cex is not None or not self.heap else None

    def _finish(self) -> str:
        if self.cex is not None:
            self.status = "falsified"
        elif self.heap:
            self.status = "timeout"
        else:
            self.status = "stuck" if self.stats["unresolved_leaves"] else "proved"
        return self.status

    def advance(self, until: float = math.inf) -> str | None:
        """Split and bound batches until `until` (capped by the deadline); the final status when
        the search has ended, None when it only paused."""
        if self.status is not None:
            return self.status
        t = time.monotonic()
        try:
            return self._loop(min(until, self.deadline))
        finally:
            self.busy += time.monotonic() - t

    def _loop(self, until: float) -> str | None:
        s = self.settings
        while self.heap:
            if time.monotonic() > self.deadline:
                return self._end("timeout")
            if self.stats["nodes"] >= s.node_limit:
                return self._end("node_limit")
            if s.attack_every and self.stats["batches"] % s.attack_every == 0 and self._attack():
                return self._finish()
            size = self._affordable(s.batch)
            if size == 0:
                return self._end("timeout")
            popped = [heapq.heappop(self.heap) for _ in range(min(size, len(self.heap)))]
            if len(self.heap) + 2 * len(popped) > s.max_domains:
                for item in popped:
                    heapq.heappush(self.heap, item)
                return self._end("memory")
            kids, start = [], math.inf
            for _, _, d in popped:
                assert d.decision is not None, "only domains with a decision are queued"
                start = min(start, first_changed_layer(d.decision))
                kids += [(c, d.rows, d.key, d.depth + 1, _path(d, side, c))
                         for side, c in enumerate(children(d.bounds, d.decision))]
            self.absorb(kids, self._bound(kids, int(start)))
            self.stats["batches"] += 1
            if self.cex is not None:
                return self._finish()
            self.report(f"{len(self.heap)} domains open, {self.stats['nodes']} bounded, "
                        f"{100 * self.closed:.3g}% closed, "
                        f"worst bound {self.heap[0][0] if self.heap else float('nan'):.4g}")
            if self.heap and time.monotonic() > until:
                return None      # paused (every call does at least one batch, so slices progress)
        return self._finish()

    def _end(self, status: str) -> str:
        self.status = status
        return status

    def run(self, any_case: bool) -> SearchResult:
        """The whole search up to the deadline (see module doc)."""
        status = self.start(any_case)
        return self.result(status or self.advance())
