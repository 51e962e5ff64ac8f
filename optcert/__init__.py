"""optcert: exact certification of ReLU networks and measurement of convex-relaxation gaps.

The few names a user needs::

    from optcert import load_network, read_vnnlib, verify
    net = load_network("net.onnx")
    result = verify(read_vnnlib("prop.vnnlib").problem(net), "bnb", timeout=60)
    print(result.verdict, result.bound)

`import optcert` is cheap: it imports nothing at all until one of these names is used (PEP 562),
so `optcert --help` and `optcert info` do not pay for numpy, networkx, the engines or torch.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from optcert.version import __version__

_WHERE = {
    "Engine": "optcert.engines.registry", "OptcertError": "optcert.errors", "Network": "optcert.ir.network",
    "to_layered": "optcert.ir.layered", "load_network": "optcert.ir.load", "Result": "optcert.result",
    "Verdict": "optcert.result", "Box": "optcert.spec.problem", "Case": "optcert.spec.problem",
    "Combine": "optcert.spec.problem", "LinearSpec": "optcert.spec.problem",
    "VerificationProblem": "optcert.spec.problem", "robustness_problem": "optcert.spec.problem",
    "read_vnnlib": "optcert.spec.vnnlib", "verify": "optcert.verify",
}
__all__ = ["Box", "Case", "Combine", "Engine", "LinearSpec", "Network", "OptcertError", "Result",
           "VerificationProblem", "Verdict", "__version__", "load_network", "read_vnnlib", "robustness_problem",
           "to_layered", "verify"]

if TYPE_CHECKING:
    from optcert.engines.registry import Engine
    from optcert.errors import OptcertError
    from optcert.ir.layered import to_layered
    from optcert.ir.load import load_network
    from optcert.ir.network import Network
    from optcert.result import Result, Verdict
    from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem, robustness_problem
    from optcert.spec.vnnlib import read_vnnlib
    from optcert.verify import verify


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` on first use (see the module doc)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'optcert' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


class _Package(types.ModuleType):
    """`optcert.verify` is the function, as it always was: loading the submodule of that name (which
    sets the package attribute) must not replace it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
