"""Typed error hierarchy.

Every error names its culprit (a file, a graph node, an option, a solver) and carries the
distinct exit code the command line uses for it. A solver failure or a time limit is *not* an
error: it comes back as an UNKNOWN `Result` with a reason.
"""
from __future__ import annotations

EXIT_CODES: dict[int, str] = {
    0: "the command ran (whatever the verdict)",
    1: "internal error (a bug: please report it with the --debug traceback)",
    2: "usage error: a missing, conflicting or malformed argument (no property, --image without --eps, "
       "--timeout 0, a .pt network without --input-shape)",
    3: "file error: an input is missing, a directory or unreadable, or an output path cannot be written",
    4: "invalid model: a malformed network (shape mismatch, NaN weight, ...)",
    5: "unsupported operator in the network (every one is listed)",
    6: "invalid specification: an empty or reversed region, an image outside the valid range, a "
       "malformed property",
    7: "invalid option: an unknown engine, method, form, format, backend or engine option (-o), or a "
       "value out of its range",
    8: "solver unavailable: not installed, not licensed, or not licensed for this size",
    9: "lowering error: the network and bounds cannot be put in the requested form",
    10: "check: the result does not re-verify (INVALID: the first failing step is named)",
    11: "check: the result rests on evidence that cannot be re-checked (a MILP solver's own bound, "
        "no stored multipliers)",
    12: "model too large: its dense affine/ReLU form would not fit in this machine's memory",
    130: "interrupted (Ctrl-C)",
}
"""The exit codes of the `optcert` command, one table for every subcommand (README: Exit codes)."""


class OptcertError(Exception):
    """Base class. `exit_code` is what `optcert` exits with when this error reaches the CLI."""

    exit_code = 1


class UsageError(OptcertError):
    """The command or call is malformed: a required argument is missing, two arguments conflict, or a
    value is out of range before any file is read (no property, `--image` without `--eps`, a
    non-positive time limit, a `.pt` network without an input shape)."""

    exit_code = 2


class UnreadableFileError(OptcertError):
    """A file is missing, unreadable, truncated or not in the expected format, or an output path cannot
    be written (a missing directory, a directory where a file is expected, no write permission)."""

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
        hint = ""
        if any(op.lower().replace("_", "") in ("softmax", "logsoftmax") for _, op in self.ops):
            hint = ("; a Softmax keeps the order of the logits: for argmax (robustness) properties, "
                    "verify the network without it")
        super().__init__(f"{source}: unsupported operator(s): {listed}{hint}")


class ModelTooLargeError(InvalidModelError):
    """The network's dense affine/ReLU form (`LayeredNet`) would need more memory than the machine has."""

    exit_code = 12


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
