"""What `optcert check` says: VALID, INVALID (naming the first step that fails) or UNCHECKABLE
(nothing fails, but some step the verdict needs rests on evidence the checker cannot re-derive,
e.g. a MILP solver's own bound)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(Enum):
    VALID = "valid"
    INVALID = "invalid"
    UNCHECKABLE = "uncheckable"


class Outcome(Enum):
    PASS = "pass"
    FAIL = "fail"
    TRUSTED = "trusted"   # not re-derivable: rests on a solver or on missing evidence
    NOTE = "note"         # not re-derived, and nothing the verdict needs (bounds of an unproved result)


@dataclass(frozen=True)
class Step:
    name: str
    outcome: Outcome
    detail: str = ""


@dataclass
class Report:
    """The steps in the order they were checked; `status` follows from them (module doc)."""

    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    proof: bool = True    # does the verdict rest on the bounds (PROVED)? Else trusted steps are notes

    def add(self, name: str, ok: bool | None, detail: str = "", needed: bool | None = None) -> bool:
        """Record a step (None: trusted, not re-derivable — a mere note when the verdict does not
        need it: `needed`, by default whether the result claims a proof); returns `ok is True`."""
        needed = self.proof if needed is None else needed
        outcome = Outcome.PASS if ok is True else (Outcome.FAIL if ok is False else
                                                   (Outcome.TRUSTED if needed else Outcome.NOTE))
        self.steps.append(Step(name, outcome, detail))
        return ok is True

    @property
    def status(self) -> Status:
        if any(s.outcome is Outcome.FAIL for s in self.steps):
            return Status.INVALID
        if any(s.outcome is Outcome.TRUSTED for s in self.steps):
            return Status.UNCHECKABLE
        return Status.VALID

    @property
    def first_failure(self) -> Step | None:
        return next((s for s in self.steps if s.outcome is Outcome.FAIL), None)

    def summary(self) -> str:
        """One line: the status, the first failing (or trusted) step, the counts."""
        counts = {o: sum(s.outcome is o for s in self.steps) for o in Outcome}
        notes = f", {counts[Outcome.NOTE]} notes" if counts[Outcome.NOTE] else ""
        tail = f"({counts[Outcome.PASS]} steps passed, {counts[Outcome.FAIL]} failed, " \
               f"{counts[Outcome.TRUSTED]} not re-checkable{notes}; {self.seconds:.2f} s)"
        first = self.first_failure or next((s for s in self.steps if s.outcome is Outcome.TRUSTED), None)
        if first is None:
            return f"{self.status.value.upper()}  {tail}"
        return f"{self.status.value.upper()}  {first.name}: {first.detail}  {tail}"

    def to_dict(self) -> dict:
        return {"status": self.status.value, "seconds": self.seconds,
                "steps": [{"name": s.name, "outcome": s.outcome.value, "detail": s.detail} for s in self.steps]}
