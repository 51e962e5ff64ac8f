"""The `Backend` protocol every solver adapter implements, and its availability report."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from optcert.forms import Limits, Solution


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here. `reason` says why not (missing package, licence, size)."""

    name: str
    available: bool
    version: str = ""
    reason: str = ""
    forms: tuple[str, ...] = ()

    def __str__(self) -> str:
        state = "available" if self.available else "unavailable"
        extra = f" ({self.reason})" if self.reason else ""
        return f"{self.name} {self.version} {state}{extra}".replace("  ", " ")


class Backend(Protocol):
    """A solver adapter: one file per backend under `solvers/`."""

    name: str
    forms: tuple[str, ...]  # form kinds it solves: "lp", "milp", "conic"

    def available(self) -> Availability:
        """Installed and licensed? Cheap, cached, never raises."""

    def fits(self, form) -> Availability:
        """Can it solve *this* problem (e.g. size-limited licence)? Never raises."""

    def solve(self, form, limits: Limits = Limits(), raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form` within `limits`; `raw` holds native solver parameters (unknown keys are
        rejected with InvalidOptionError). Failures and time limits come back as a Solution."""
