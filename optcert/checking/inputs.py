"""Is the result about these files? The SHA-256 of each input file the check was given is compared
with the one the result's provenance recorded for the same role (network, property, images)."""
from __future__ import annotations

from optcert.checking.report import Report
from optcert.provenance import sha256
from optcert.result import Result
from optcert.spec.problem import VerificationProblem


def check_inputs(report: Report, result: Result, problem: VerificationProblem) -> None:
    """One step per role both sides know; a role the result did not record is not a failure."""
    provenance = dict(result.provenance or {})
    entries = provenance.get("inputs")
    recorded = entries if isinstance(entries, dict) else {}
    given = problem.meta.get("inputs") or {}
    for role, path in sorted(given.items()):
        entry = recorded.get(role)
        if not isinstance(entry, dict) or not entry.get("sha256"):
            continue
        digest = sha256(path)
        report.add(f"input {role} is the one the result was made from", digest == entry["sha256"],
                   f"{path}: sha256 {str(digest)[:12]}…, recorded {str(entry['sha256'])[:12]}… "
                   f"({entry.get('path')})")
