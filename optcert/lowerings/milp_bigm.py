"""Exact big-M MILP of a ReLU network (Tjeng, Xiao & Tedrake 2019, "Evaluating robustness of
neural networks with mixed integer programming").

Per unstable neuron (l < 0 < u) of ReLU layer k: ẑ ∈ [l, u], z ∈ [0, u], a ∈ {0, 1} and
    z − ẑ ≥ 0,     z − u a ≤ 0,     z − ẑ − l a ≤ −l,
plus the affine equality ẑ − Σ_j W z_j = b shared with the LP (see `linear_rows`). Stable neurons
are linear: inactive (u ≤ 0) have no column (z = 0), active (l ≥ 0) one column z = ẑ ∈ [l, u].
With a ∈ {0, 1} these rows force z = max(ẑ, 0) exactly, for every x whose pre-activations lie in
the given bounds, so the optimum is the exact network optimum when the bounds are valid.
Because ẑ is kept as a variable, every coefficient is a copy of a weight, of ±1, of l or u:
nothing is rounded, so the form's LP relaxation (a ∈ [0, 1]) is exactly a relaxation — the
triangle relaxation of `lp_triangle` in projection.
"""
from __future__ import annotations

import numpy as np

from optcert.bounds.layer_bounds import Bounds
from optcert.forms import LinearProgram, Lowered
from optcert.ir.layered import LayeredNet
from optcert.lowerings.linear_rows import Objective, RowBuilder, Unstable, lower_network


def _bigm_rows(b: RowBuilder, k: int, n: Unstable) -> np.ndarray:
    """Binary columns f"a{k}" and the three big-M rows of the unstable neurons of layer k."""
    m = n.neurons.size
    a = b.add_columns(f"a{k}", 0.0, 1.0, n.neurons, integer=True)
    b.add_band(f"relu_ge_zhat{k}", [(n.z, 1.0), (n.zhat, -1.0)], 0.0, np.inf, m)
    b.add_band(f"relu_on{k}", [(n.z, 1.0), (a, -n.hi)], -np.inf, 0.0, m)
    b.add_band(f"relu_off{k}", [(n.z, 1.0), (n.zhat, -1.0), (a, -n.lo)], -np.inf, -n.lo, m)
    return a


def lower_milp(net: LayeredNet, bounds: Bounds, objective: Objective | None = None, *,
               upto: int | None = None, keep_inactive: bool = False) -> Lowered[LinearProgram]:
    """Exact big-M MILP (Tjeng et al. 2019) of `net` over the input box of `bounds`.

    Accepts a `LayeredNet` (spec folded in), `Bounds` valid for it (finite where used, lo ≤ hi,
    else `LoweringError`) and an `Objective`; or `upto=k` and no objective for the prefix of
    ReLU layers 1..k−1 that bounds layer k (see `pre_activation_objectives`). `keep_inactive`
    adds ẑ ∈ [l, u] for inactive neurons too, so a branch-and-bound split ẑ ≤ 0 is enforced.
    Produces a `Lowered[LinearProgram]` laid out as in `linear_rows`; info["layers"][k].a holds
    the binary column of each unstable neuron (fix its bounds to branch).
    """
    return lower_network(net, bounds, objective, upto, _bigm_rows, "milp_bigm", keep_inactive)
