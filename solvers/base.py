"""The `Backend` protocol every solver adapter implements, and its availability report."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from optcert.forms import Limits, Solution, SolveStatus


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

    @property
    def name(self) -> str:
        """The registry name, e.g. "highs"."""

    @property
    def forms(self) -> tuple[str, ...]:
        """Form kinds it solves: "lp", "milp", "conic", "lowrank"."""

    def available(self) -> Availability:
        """Installed and licensed? Cheap, cached, never raises."""

    def fits(self, form) -> Availability:
        """Can it solve *this* problem (e.g. size-limited licence)? Never raises."""

    def solve(self, form, limits: Limits = Limits(), raw: Mapping[str, Any] | None = None) -> Solution:
        """Solve `form` within `limits`; `raw` holds native solver parameters (unknown keys are
        rejected with InvalidOptionError). Failures and time limits come back as a Solution."""


class LicenceFreeBackend:
    """`available()` and `fits()` for a backend that needs only an importable package (no
    licence). Subclasses set `name`, `forms`, `package` (for messages), `form_type` and `version()`."""

    name: str
    forms: tuple[str, ...]
    package: str
    form_type: type

    def version(self) -> str:
        """The package's version; raises if it cannot be imported."""
        raise NotImplementedError

    def available(self) -> Availability:
        """Installed? Never raises."""
        try:
            version = self.version()
        except Exception as err:  # ImportError or a broken wheel
            return Availability(self.name, False, reason=f"{self.package} not installed ({err})", forms=self.forms)
        return Availability(self.name, True, version=version, forms=self.forms)

    def fits(self, form) -> Availability:
        """Any `form_type` fits; other forms do not."""
        status = self.available()
        if status.available and not isinstance(form, self.form_type):
            return Availability(self.name, False, status.version, f"cannot solve {type(form).__name__}", self.forms)
        return status


def refusal(backend, form) -> Solution | None:
    """An UNAVAILABLE Solution saying why `backend` cannot solve `form` here, or None if it can."""
    status = backend.fits(form)
    return None if status.available else Solution(SolveStatus.UNAVAILABLE, backend.name, 0.0, message=status.reason)
