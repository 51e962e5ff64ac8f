"""optcert: exact certification of ReLU networks and measurement of convex-relaxation gaps.

`import optcert` is cheap: it imports neither torch nor any optional solver.
"""
from .errors import OptcertError
from .ir import Network, to_layered
from .spec import Box, Case, Combine, LinearSpec, VerificationProblem, robustness_problem

__version__ = "0.1.0"
__all__ = ["OptcertError", "Network", "to_layered", "Box", "Case", "Combine", "LinearSpec",
           "VerificationProblem", "robustness_problem", "__version__"]
