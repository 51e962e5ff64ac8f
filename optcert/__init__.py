"""optcert: exact certification of ReLU networks and measurement of convex-relaxation gaps.

The few names a user needs::

    from optcert import load_network, read_vnnlib, verify
    net = load_network("net.onnx")
    result = verify(read_vnnlib("prop.vnnlib").problem(net), "bnb", timeout=60)
    print(result.verdict, result.bound)

`import optcert` is cheap: it imports neither torch nor any optional solver.
"""
from optcert.engines.registry import Engine
from optcert.errors import OptcertError
from optcert.ir import Network, to_layered
from optcert.ir.load import load_network
from optcert.result import Result, Verdict
from optcert.spec import Box, Case, Combine, LinearSpec, VerificationProblem, read_vnnlib, robustness_problem
from optcert.verify import verify

__version__ = "0.1.0"
__all__ = ["Box", "Case", "Combine", "Engine", "LinearSpec", "Network", "OptcertError", "Result",
           "VerificationProblem", "Verdict", "__version__", "load_network", "read_vnnlib", "robustness_problem",
           "to_layered", "verify"]
