"""Typed error hierarchy.

Every error names its culprit (a file, a graph node, an option, a solver) and carries the
distinct exit code the command line uses for it. A solver failure or a time limit is *not* an
error: it comes back as an UNKNOWN `Result` with a reason.
"""
from __future__ import annotations


class OptcertError(Exception):
    """Base class. `exit_code` is what `optcert` exits with when this error reaches the CLI."""

    exit_code = 1


class UnreadableFileError(OptcertError):
    """A file is missing, unreadable, truncated or not in the expected format."""

    exit_code = 3


class InvalidModelError(OptcertError):
    """A network is malformed: shape mismatch, NaN/inf weight, dangling node, no ReLU structure..."""

    exit_code = 4


class UnsupportedOpError(InvalidModelError):
    """One or more operators cannot be represented. `ops` lists every (node name, op type) at once."""

    exit_code = 5

    def __init__(self, ops: list[tuple[str, str]], source: str = "model"):
        self.ops = list(ops)
        listed = ", ".join(f"{node!r} ({op})" for node, op in self.ops)
        super().__init__(f"{source}: unsupported operator(s): {listed}")


class InvalidSpecError(OptcertError):
    """A specification is malformed: lo > hi, empty or contradictory property, wrong sizes..."""

    exit_code = 6


class InvalidOptionError(OptcertError):
    """An option, engine name or argument value is unknown or out of range."""

    exit_code = 7


class BackendUnavailableError(OptcertError):
    """A requested solver is not installed, not licensed, or not licensed for this problem size."""

    exit_code = 8


class LoweringError(OptcertError):
    """A network/bounds pair cannot be lowered to the requested form (e.g. infinite big-M bounds)."""

    exit_code = 9
