"""The tree of an input-split search (search/input_split.py), recorded for its certificate.

Nodes are numbered as they are made (the root is 0). `split` records the bisection of each picked
domain (dimension, split point) and numbers its two children (left: x_d ≤ point, right: x_d ≥
point); `leaves` records each finished domain's certified per-row bounds (folded outputs) and
case-margin bound, `items` the checker items of its alpha-CROWN leaves. `encode` writes the tree
in the preorder format of optcert.checking.tree with no value per leaf, only the least over the
leaves per row and of the case margin (`stated: least`): what the result claims, and what the
checker's own bound must reach at every leaf. The search bounds its boxes by forward-mode linear
bounds in float32, which the checker's CROWN does not reproduce to the last digit; a leaf's own
value need only reach the least one.
"""
from __future__ import annotations

import numpy as np


class InputTree:
    """Splits and leaves of one input-split search (module doc)."""

    def __init__(self):
        self.count = 1
        self.parent: list[np.ndarray] = []
        self.dim: list[np.ndarray] = []
        self.point: list[np.ndarray] = []
        self.leaf_nodes: list[np.ndarray] = []
        self.leaf_rows: list[np.ndarray] = []
        self.leaf_values: list[np.ndarray] = []
        self.items: list[tuple[int, dict]] = []    # (node id, checker item) of alpha-CROWN leaves

    def split(self, parents: np.ndarray, dims: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Record k bisections; the ids of the 2k children in the search's order (lefts, rights)."""
        k = len(parents)
        self.parent.append(np.asarray(parents, dtype=np.int64))
        self.dim.append(np.asarray(dims, dtype=np.int64))
        self.point.append(np.asarray(points, dtype=np.float64))
        ids = np.arange(self.count, self.count + 2 * k, dtype=np.int64)
        self.count += 2 * k
        return ids

    def leaves(self, nodes: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
        self.leaf_nodes.append(np.asarray(nodes, dtype=np.int64))
        self.leaf_rows.append(np.asarray(rows, dtype=np.float64))
        self.leaf_values.append(np.asarray(values, dtype=np.float64))

    def encode(self, m: int) -> dict:
        """The preorder arrays (optcert.checking.tree format) with `rows_at_leaves` (leaves, m)."""
        from optcert.checking.arrays import pack
        from optcert.checking.tree import pack_items

        def cat(xs: list, dt) -> np.ndarray:
            return np.concatenate(xs) if xs else np.zeros(0, dtype=dt)

        parent, dim, point = cat(self.parent, np.int64), cat(self.dim, np.int64), cat(self.point, np.float64)
        k = len(parent)
        starts = np.cumsum([0] + [len(p) for p in self.parent])
        left = np.empty(k, dtype=np.int64)
        for b in range(len(self.parent)):        # batch b's children: lefts then rights
            n = starts[b + 1] - starts[b]
            first = 1 + 2 * starts[b]
            left[starts[b]:starts[b + 1]] = np.arange(first, first + n)
        offset = {int(p): i for i, p in enumerate(parent)}
        width = {int(p): int(starts[b + 1] - starts[b]) for b in range(len(self.parent))
                 for p in self.parent[b]}
        leaf_at = {int(n): i for i, n in enumerate(cat(self.leaf_nodes, np.int64))}
        rows, values = cat(self.leaf_rows, np.float64).reshape(-1, m), cat(self.leaf_values, np.float64)
        layer: list[int] = []
        index: list[int] = []
        split: list[float] = []
        order: list[int] = []
        preorder: dict[int, int] = {}
        stack = [0]
        while stack:
            n = stack.pop()
            preorder[n] = len(layer)
            if n in offset:
                i = offset[n]
                layer.append(0)
                index.append(int(dim[i]))
                split.append(float(point[i]))
                stack += [int(left[i]) + width[n], int(left[i])]
            else:
                if n not in leaf_at:
                    raise ValueError(f"node {n} is neither split nor a finished leaf")
                layer.append(-1)
                index.append(-1)
                split.append(float("nan"))
                order.append(leaf_at[n])
        if len(order) != len(leaf_at):
            raise ValueError(f"{len(leaf_at) - len(order)} finished leaves are not in the tree")
        return {"layer": pack(layer, "i4"), "index": pack(index, "i4"), "split": pack(split),
                "stated": "least", "least_rows": pack(rows.min(axis=0)), "least_bound": pack([values.min()]),
                "items": pack_items([(preorder[n], item) for n, item in self.items])}
