"""Lowerings: a `LayeredNet` plus `Bounds` → a solver form (`Lowered[F]`).

* `lower_milp`: exact big-M MILP (Tjeng et al. 2019);  * `lower_lp`: LP triangle (Ehlers 2017).
Both share the layout and helpers of `linear_rows` (`Objective`, `pre_activation_objectives`).
"""
from optcert.lowerings.linear_rows import Combine, LayerColumns, Objective, Sense, pre_activation_objectives
from optcert.lowerings.lp_triangle import lower_lp
from optcert.lowerings.milp_bigm import lower_milp

__all__ = ["Combine", "LayerColumns", "Objective", "Sense", "lower_lp", "lower_milp",
           "pre_activation_objectives"]
