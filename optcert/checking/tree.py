"""Branch-and-bound certificates: the search tree of one case, with each leaf's value.

Format (`encode_tree`): the nodes in preorder as arrays `layer`, `index`, `split` (an internal node
splits ReLU `index` of layer `layer` ≥ 1 into ẑ ≤ 0 | ẑ ≥ 0, or bisects input `index` (layer 0) at
`split` into x ≤ split | x ≥ split; a leaf has layer −1), `values_at_leaves` (each leaf's stated
value: a lower bound on the case margin over the leaf, +inf when the leaf is empty), and `items`:
dual items (evidence.py) attached to nodes by preorder index — a node's item bounds its whole
subtree. A preorder with two children per internal node is a complete binary tree by construction,
so the leaves cover the case's region: the two halves of an input split are [lo, s] and [s, hi]
(union exactly the parent box, for any lo ≤ s ≤ hi), and a ReLU split covers both signs.

`check_tree` replays the tree top-down with the checker's own bounds: at the root, IBP and CROWN
over the case box; at each child, its parent's bounds with the split applied, then CROWN on the
neurons they leave unstable from the first layer the split can change (recipe `crown-unstable`,
what the `bnb` coordinator does), intersected with the parent's. A node's rows are bounded by
CROWN's ν and by its items; a leaf's value is the best along its path (min over rows of an ALL
case, max for an ANY case). Every item and every leaf must re-derive to its stated value.

A tree of the batched input-split search (search/input_tree.py) states no value per leaf, only the
least per row and of the case margin (`stated: least`, `least_rows`, `least_bound`): the checker's
own bound at every leaf must reach them (to rounding). Such a tree is replayed as the search bounds
its boxes: the checker's own forward-mode bounds (forward.py) on every layer, then CROWN on the
neurons left unstable and, for an ANY case, on every pairwise average of rows. A leaf it still
does not reach, even bisected (bisect.py), leaves the stated bound resting on the engine's word
(UNCHECKABLE); the proof still holds when the checker's own bounds are positive at every leaf.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from optcert.checking.arrays import pack, unpack
from optcert.checking.bisect import BUDGET, bisect_to
from optcert.checking.items import CaseBound, Derived, EvidenceError, agrees, evaluate_with, with_output
from optcert.checking.net import CheckNet
from optcert.checking.report import Report
from optcert.spec.problem import Combine


def encode_tree(paths, leaf_values: dict, items: list[tuple[tuple, dict]], trusted: dict | None = None) -> dict:
    """The tree evidence of a finished search: `paths` of every bounded domain (tuples of (layer,
    index, split point, side) from the root), `leaf_values[path]`, `items` as (path, item) pairs and
    `trusted[path]`: why a leaf's value is only the solver's (e.g. an LP that proved it empty)."""
    children: dict[tuple, dict[int, tuple]] = {}
    for p in paths:
        if p:
            children.setdefault(p[:-1], {})[int(p[-1][3])] = p
    layer: list[int] = []
    index: list[int] = []
    split: list[float] = []
    values: list[float] = []
    order: dict[tuple, int] = {}
    stack: list[tuple] = [()]
    while stack:
        p = stack.pop()
        order[p] = len(layer)
        kids = children.get(p)
        if kids:
            if set(kids) != {0, 1}:
                raise ValueError(f"node {p} has children {sorted(kids)}: the tree is incomplete")
            k, i, point, _ = kids[0][-1]
            layer.append(int(k))
            index.append(int(i))
            split.append(float(point) if k == 0 else math.nan)
            stack += [kids[1], kids[0]]
        else:
            layer.append(-1)
            index.append(-1)
            split.append(math.nan)
            values.append(float(leaf_values[p]))
    out: dict = {"layer": pack(layer, "i4"), "index": pack(index, "i4"), "split": pack(split),
           "values_at_leaves": pack(values),
           "items": pack_items([(order[p], item) for p, item in items if p in order])}
    if trusted:
        out["trusted"] = [{"node": order[p], "why": why} for p, why in trusted.items() if p in order]
    return out


@dataclass
class _Node:
    layer: int
    index: int
    split: float
    children: list[int] = field(default_factory=list)
    parent: int = -1
    leaf: int = -1      # position among the leaves (preorder)


def parse_tree(tree: dict) -> list[_Node]:
    """The nodes of an encoded tree (EvidenceError unless it is a complete binary preorder)."""
    layer, index, split = (unpack(tree[k]) for k in ("layer", "index", "split"))
    if not (layer.shape == index.shape == split.shape) or layer.ndim != 1 or layer.size == 0:
        raise EvidenceError("tree arrays must be one-dimensional, of equal length")
    nodes = [_Node(int(a), int(b), float(c)) for a, b, c in zip(layer, index, split)]
    stack: list[int] = []
    leaves = 0
    for n, node in enumerate(nodes):
        if n > 0:
            if not stack:
                raise EvidenceError(f"node {n} follows a complete tree")
            node.parent = stack[-1]
            nodes[stack[-1]].children.append(n)
            if len(nodes[stack[-1]].children) == 2:
                stack.pop()
        if node.layer >= 0:
            stack.append(n)
        else:
            node.leaf, leaves = leaves, leaves + 1
    if stack:
        raise EvidenceError(f"{len(stack)} split node(s) lack a child: the leaves do not cover the region")
    return nodes


def pack_items(items: list[tuple[int, dict]]) -> dict:
    """Dual items (with their node) as columns: one array each for the nodes, rows (−1: a clause
    item, −2: an emptiness item), stated bounds, the masks of every layer one after the other, the stored ν in the same
    order, and the weights of the clause items — far smaller than one JSON object per item."""
    layers = sorted({int(j) for _, item in items for j in item["nu"]})
    masks, values, weights = [], [], []
    for _, item in items:
        for j in layers:
            entry = item["nu"][str(j)]
            masks.append(unpack(entry["mask"]).astype(bool))
            values.append(unpack(entry["values"]))
        if item.get("row") is None and not item.get("empty"):
            weights.append(unpack(item["weights"]))
    def row(item: dict) -> int:
        return -2 if item.get("empty") else (-1 if item.get("row") is None else int(item["row"]))

    return {"node": pack([n for n, _ in items], "i4"), "row": pack([row(item) for _, item in items], "i4"),
            "item_bound": pack([item["bound"] for _, item in items]), "layers": layers,
            "mask": pack(np.concatenate(masks) if masks else np.zeros(0, bool), "b1"),
            "item_values": pack(np.concatenate(values) if values else np.zeros(0)),
            "item_weights": pack(np.array(weights) if weights else np.zeros((0, 0)))}


def unpack_items(columns: dict, sizes: list[int], count: int) -> dict[int, list[dict]]:
    """The items of `pack_items`, by node, as dual items holding numpy arrays."""
    nodes, rows, bounds = (unpack(columns[k]) for k in ("node", "row", "item_bound"))
    layers = [int(j) for j in columns.get("layers", [])]
    if not (nodes.shape == rows.shape == bounds.shape) or any(not 1 <= j < len(sizes) - 1 for j in layers):
        raise EvidenceError("item columns disagree in length, or name a layer that is not a ReLU layer")
    mask, values, weights = unpack(columns["mask"]), unpack(columns["item_values"]), unpack(columns["item_weights"])
    width = sum(sizes[j] for j in layers)
    if mask.size != width * nodes.size or values.size != int(mask.sum()):
        raise EvidenceError(f"{mask.size} mask bits and {values.size} values for {nodes.size} items")
    by: dict[int, list[dict]] = {}
    bit, val, clause = 0, 0, 0
    for n, r, b in zip(nodes.astype(int), rows.astype(int), bounds):
        if not 0 <= n < count:
            raise EvidenceError(f"an item names node {n} of {count}")
        item: dict = {"kind": "dual", "bound": float(b), "row": None if r < 0 else int(r), "nu": {}}
        if r == -2:
            item["empty"] = True
        for j in layers:
            m = mask[bit:bit + sizes[j]]
            item["nu"][str(j)] = {"mask": m, "values": values[val:val + int(m.sum())]}
            bit, val = bit + sizes[j], val + int(m.sum())
        if r == -1:
            if clause >= len(weights):
                raise EvidenceError("a clause item without weights")
            item["weights"], clause = weights[clause], clause + 1
        by.setdefault(int(n), []).append(item)
    return by


class _Replay:
    """Walks the tree level by level (module doc), counting item and leaf agreement."""

    def __init__(self, report: Report, net: CheckNet, k: int, case, tree: dict):
        from optcert.checking.replay import root

        self.report, self.net, self.k, self.case = report, net, k, case
        self.nodes = parse_tree(tree)
        leaves = sum(n.layer < 0 for n in self.nodes)
        self.lower_mode = tree.get("stated") == "least"    # stated: only the least leaf values (module doc)
        self.values = np.zeros(leaves) if self.lower_mode else unpack(tree["values_at_leaves"])
        if self.values.shape != (leaves,):
            raise EvidenceError(f"{self.values.size} leaf values for {leaves} leaves")
        self.items = unpack_items(tree["items"], net.sizes(), len(self.nodes))
        self.trusted = {int(t["node"]): str(t.get("why", "")) for t in tree.get("trusted", [])}
        if self.lower_mode:
            self.least_rows, least = unpack(tree["least_rows"]), unpack(tree["least_bound"])
            if self.least_rows.shape != (case.spec.rows,) or least.shape != (1,) or \
                    np.any(np.isnan(self.least_rows)) or np.isnan(least[0]):
                raise EvidenceError("the least stated bounds must be one per row and one on the case")
            self.least = float(least[0])
        self.loose: list[str] = []     # lower mode: leaves where the checker's own bound is the looser
        self.own_min = math.inf        # lower mode: the least of the checker's own leaf values
        self.own: list[tuple] = []      # lower mode: (node, own value, own rows, scale, domain) per leaf
        self.bisected = 0               # lower mode: leaves the checker bisected itself (checking/bisect.py)
        self.bad: list[str] = []
        self.checked_items = 0
        self.state = {0: self._own(0, root(net, case, self.lower_mode))}

    def _own(self, n: int, d):
        """Fold the node's stored items into its bounds (each must re-derive to what it states)."""
        if d.empty:
            return d
        bounds = None
        for item in self.items.get(n, []):
            if item.get("kind") != "dual":
                raise EvidenceError(f"node {n}: a tree holds dual items only, not {item.get('kind')!r}")
            bounds = bounds or with_output(self.net, d.lower, d.upper)
            row = item.get("row")
            got = evaluate_with(self.net, self.case, item, row, *bounds)
            self.checked_items += 1
            # lower mode: the item's bound over the checker's own node bounds is what counts (the
            # claim checked is the stated least, `_reach`); it states what it gave over the engine's
            if not self.lower_mode and not agrees(got, float(item.get("bound", math.nan))):
                self.bad.append(f"node {n} item re-derives {got.value:.12g}, states {item.get('bound')}")
                continue
            d.scale = max(d.scale, got.scale)
            if item.get("empty"):
                d.empty = d.empty or got.value > 0
            elif row is None:
                d.key = max(d.key, got.value)
            else:
                d.out_lo[row] = max(d.out_lo[row], got.value)
        if np.any(d.out_lo > d.out_hi):
            d.empty = True
        return d

    def run(self) -> CaseBound:
        from optcert.checking.replay import child, refine

        m = self.case.spec.rows
        self.rows_min, self.value_min, self.scale = np.full(m, np.inf), math.inf, 0.0
        self.trusted_leaves, self.leaves_ok = 0, 0
        level = [0]
        while level:
            groups: dict[int, list] = {}
            for n in level:
                d, node = self.state.pop(n), self.nodes[n]
                if node.layer < 0:
                    self._leaf(n, d)
                    continue
                self._decision(n, d)
                start = 1 if node.layer == 0 else node.layer + 1
                for side, c in enumerate(node.children):
                    groups.setdefault(start, []).append((c, child(d, node.layer, node.index, node.split, side)))
            for start, pairs in groups.items():
                for (c, _), d in zip(pairs, refine([cd for _, cd in pairs], start, self.net, self.case,
                                                     self.lower_mode)):
                    self.state[c] = self._own(c, d)
            level = [c for pairs in groups.values() for c, _ in pairs]
        if self.lower_mode:      # the proof needs only the checker's own leaf values to be positive
            reached, rows_ok = self._reach()
            rows_l: list[Derived | None] = [Derived(float(v), self.scale, not ok)
                                            for v, ok in zip(self.rows_min, rows_ok)]
            case = Derived(self.value_min, self.scale, not reached)
            return CaseBound(rows_l, case, self.value_min if reached else min(self.own_min, self.value_min))
        trusted = self.trusted_leaves > 0
        rows: list[Derived | None] = [Derived(float(v), self.scale, trusted) for v in self.rows_min]
        case = Derived(self.value_min, self.scale, trusted)
        return CaseBound(rows, case, -math.inf if trusted else self.value_min)

    def _decision(self, n: int, d) -> None:
        node, L = self.nodes[n], self.net.depth
        sizes = self.net.sizes()
        if not (0 <= node.layer < L and 0 <= node.index < sizes[node.layer]):
            raise EvidenceError(f"node {n} splits neuron {node.index} of layer {node.layer}, which does not exist")
        if node.layer == 0:
            lo, hi = d.lower[0][0, node.index], d.upper[0][0, node.index]
            if not lo <= node.split <= hi:
                raise EvidenceError(f"node {n} bisects input {node.index} at {node.split!r}, outside its box "
                                    f"[{lo!r}, {hi!r}]: the halves would not cover it")

    def _leaf(self, n: int, d) -> None:
        stated = float(self.values[self.nodes[n].leaf])
        any_case = self.case.combine is Combine.ANY
        value = math.inf if d.empty else float(max(d.key, d.out_lo.max()) if any_case else d.out_lo.min())
        if self.lower_mode:
            self._lower_leaf(n, d, value)
            return
        if stated == math.inf and value < math.inf and n in self.trusted:
            self.trusted_leaves += 1
            return
        if not agrees(Derived(value, d.scale), stated):
            self.bad.append(f"leaf at node {n} re-derives {value:.12g}, states {stated:.12g}")
            return
        self.leaves_ok += 1
        if not d.empty:
            self.rows_min = np.minimum(self.rows_min, d.out_lo)
            self.value_min = min(self.value_min, value)
            self.scale = max(self.scale, d.scale)

    def _lower_leaf(self, n: int, d, value: float) -> None:
        """A leaf of a tree that states only the least leaf values: its own bounds are kept for
        `_reach`."""
        own = np.full(self.case.spec.rows, math.inf) if d.empty else d.out_lo
        self.own.append((n, value, own, d.scale, d))
        self.scale = max(self.scale, d.scale)
        self.leaves_ok += 1

    def _reach(self) -> tuple[bool, np.ndarray]:
        """Lower mode: does every leaf's own bound reach the stated least case value (to rounding),
        and per row the stated least row bound? A leaf that does not is loose: the claim there is
        only the engine's (its forward-mode bounds were tighter than the checker's CROWN)."""
        def reaches(got: float, want: float, scale: float) -> bool:
            return want == -math.inf or got >= want or agrees(Derived(got, scale), want)
        self.rows_min, self.value_min = self.least_rows, self.least
        rows_ok = np.ones(self.rows_min.shape, dtype=bool)
        for n, value, own, scale, d in self.own:
            if not (reaches(value, self.value_min, scale) and
                    all(reaches(float(a), float(b), scale) for a, b in zip(own, self.rows_min))):
                value, own = bisect_to(self.net, self.case, d, self.value_min, self.rows_min)
                self.bisected += 1
            self.own_min = min(self.own_min, value)
            rows_ok &= [reaches(float(a), float(b), scale) for a, b in zip(own, self.rows_min)]
            if not reaches(value, self.value_min, scale):
                self.trusted_leaves += 1
                self.loose.append(f"leaf at node {n}: the checker's own bound {value:.9g}, "
                                  f"below the least stated {self.value_min:.9g}")
        return self.trusted_leaves == 0, rows_ok


def check_tree(report: Report, net: CheckNet, k: int, case, tree: dict) -> CaseBound | None:
    """Steps for a case's branch-and-bound tree (module doc); its re-derived bounds, or None."""
    replay = _Replay(report, net, k, case, tree)
    leaves = len(replay.values)
    report.add(f"case {k} tree covers the region", True,
               f"{len(replay.nodes)} nodes, {leaves} leaves: a complete binary tree of splits")
    bound = replay.run()
    first = replay.bad[0] if replay.bad else ""
    report.add(f"case {k} tree items", not any("item" in b for b in replay.bad),
               f"{replay.checked_items} stored multiplier sets re-derive to their stated bounds"
               if not any("item" in b for b in replay.bad) else first)
    if not report.add(f"case {k} tree leaves", not replay.bad,
                      f"{replay.leaves_ok} of {leaves} leaves re-derive to their stated values"
                      if not replay.bad else f"{len(replay.bad)} mismatches; first: {first}"):
        return None
    if replay.bisected:
        report.add(f"case {k} leaves bisected by the checker", True,
                   f"{replay.bisected} leaves its CROWN did not reach whole were bisected (at most "
                   f"{BUDGET} boxes each); {len(replay.loose)} still not reached")
    if replay.loose:
        report.add(f"case {k} leaves the checker's bounds do not reach", None,
                   f"{len(replay.loose)} of {leaves} leaves (their stated bounds are the engine's forward-mode "
                   f"ones); first: {replay.loose[0]}")
    elif replay.trusted_leaves:
        report.add(f"case {k} trusted leaves", None, f"{replay.trusted_leaves} leaves are empty only by the "
                   f"solver's word: {next(iter(replay.trusted.values()))}")
    return bound
