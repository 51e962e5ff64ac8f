"""LP triangle relaxation of a ReLU network (Ehlers 2017, "Formal verification of piece-wise
linear feed-forward neural networks"; Salman et al. 2019, "A convex relaxation barrier to tight
robustness verification of neural networks").

Per unstable neuron (l < 0 < u): ẑ ∈ [l, u], z ∈ [0, u] (z ≥ 0 is the column bound) and
    z − ẑ ≥ 0,     z − s ẑ ≤ r,    s ≥ u / (u − l),  r ≥ −s l,
the convex hull of the ReLU graph over [l, u] when s, r are exact. Stable neurons are linear as
in the MILP. It is a relaxation: its optimum is a lower bound on the network's.

Rounding. s and r are computed in float64, so they are rounded *up*: for any ẑ ∈ [l, u],
s ẑ + r ≥ s (ẑ − l) ≥ u (ẑ − l) / (u − l) because ẑ − l ≥ 0, hence the rounded row is never
tighter than the true triangle and the feasible set still contains every true network point.
Rounding to nearest could cut off points near ẑ = u and make the "bound" unsound.
"""
from __future__ import annotations

import numpy as np

from optcert.bounds.layer_bounds import Bounds
from optcert.forms import LinearProgram, Lowered
from optcert.ir.layered import LayeredNet
from optcert.lowerings.linear_rows import Objective, RowBuilder, Unstable, lower_network


def triangle_upper(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s, r) with s ≥ u/(u − l) and r ≥ −s·l in exact arithmetic, for l < 0 < u (rounded up).

    u − l is rounded down (so the quotient only grows), the quotient and −s·l one ulp up.
    s ≤ 1 always holds exactly, so s is capped at 1 without losing validity.
    """
    width = np.nextafter(hi - lo, -np.inf)
    s = np.minimum(np.nextafter(hi / width, np.inf), 1.0)
    r = np.nextafter(s * -lo, np.inf)
    return s, r


def _triangle_rows(b: RowBuilder, k: int, n: Unstable) -> None:
    """The two triangle rows (z ≥ ẑ and the upper chord) of the unstable neurons of layer k."""
    m = n.neurons.size
    s, r = triangle_upper(n.lo, n.hi)
    b.add_band(f"relu_ge_zhat{k}", [(n.z, 1.0), (n.zhat, -1.0)], 0.0, np.inf, m)
    b.add_band(f"relu_chord{k}", [(n.z, 1.0), (n.zhat, -s)], -np.inf, r, m)
    return None


def lower_lp(net: LayeredNet, bounds: Bounds, objective: Objective | None = None, *,
             upto: int | None = None, keep_inactive: bool = False) -> Lowered[LinearProgram]:
    """LP triangle relaxation (Ehlers 2017) of `net` over the input box of `bounds`: a lower bound.

    Same arguments, checks and column layout as `lower_milp` (without the f"a{k}" binaries);
    no integer columns. Produces a `Lowered[LinearProgram]`.
    """
    return lower_network(net, bounds, objective, upto, _triangle_rows, "lp_triangle", keep_inactive)
