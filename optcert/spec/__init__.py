"""Properties: input boxes, linear output specs, cases (`problem`), the VNN-LIB reader (`vnnlib`)
and images for L∞ robustness (`images`). Uses only `ir` (to check shapes against a network)."""
from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem, robustness_problem
from optcert.spec.vnnlib import read_vnnlib

__all__ = ["Box", "Case", "Combine", "LinearSpec", "VerificationProblem", "read_vnnlib", "robustness_problem"]
