"""`check_result(result, problem)`: re-verify a stored result against the network and property,
without any solver (module doc of optcert.checking).

Steps, in order: the result's shape matches the property; a FALSIFIED result's counterexample
re-checks (counterexample.py); every evidence item re-derives to the value it states (items.py,
tree.py, sdp.py); every bound the result claims (per row, per case, overall) is at most what the
evidence re-derives; a PROVED verdict has a re-derived bound > 0 on every case. A claim that only a
solver vouches for (a MILP proof) makes the result UNCHECKABLE, never VALID.
"""
from __future__ import annotations

import math
import time

import numpy as np

from optcert.checking.counterexample import check_counterexample
from optcert.checking.evidence import digest, property_digest
from optcert.checking.inputs import check_inputs
from optcert.checking.items import CaseBound, CaseEvidence, Derived, EvidenceError, agrees
from optcert.checking.net import CheckNet, check_net
from optcert.checking.report import Report
from optcert.result import Result, Verdict
from optcert.spec.problem import Combine, VerificationProblem


def check_result(result: Result, problem: VerificationProblem) -> Report:
    """The report of re-verifying `result` for `problem` (module doc)."""
    start = time.perf_counter()
    report = Report()
    try:
        _check(report, result, problem)
    finally:
        report.seconds = time.perf_counter() - start
    return report


def _check(report: Report, result: Result, problem: VerificationProblem) -> None:
    report.proof = result.verdict is Verdict.PROVED
    check_inputs(report, result, problem)
    if report.first_failure is not None or not _shape(report, result, problem):
        return
    net = check_net(problem.network)
    if result.verdict is Verdict.FALSIFIED:
        if result.counterexample is None:
            report.add("counterexample", False, "a FALSIFIED result without a counterexample")
            return
        if not check_counterexample(report, problem, net, result.counterexample):
            return
    derived = _derive(report, result, problem, net)
    if derived is None:
        return
    if not _claims(report, result, problem, derived):
        return
    if result.verdict is Verdict.PROVED:
        _proof(report, problem, derived)


def _shape(report: Report, result: Result, problem: VerificationProblem) -> bool:
    rows = [c.spec.rows for c in problem.cases]
    stated = [len(c.lower) for c in result.cases]
    return report.add("result matches the property", rows == stated,
                      f"{len(rows)} case(s) with {rows} rows" if rows == stated else
                      f"the property has rows {rows}, the result {stated}")


def _claimed(result: Result) -> bool:
    return any(np.isfinite(v) for c in result.cases for v in c.lower) or any(
        np.isfinite(c.case_lower) for c in result.cases)


def _derive(report: Report, result: Result, problem: VerificationProblem, net: CheckNet) -> list[CaseBound] | None:
    evidence = result.certificate.get("evidence") if isinstance(result.certificate, dict) else None
    if evidence is None:
        proof = result.verdict is Verdict.PROVED
        if _claimed(result):
            report.add("evidence", None, f"engine {result.engine!r} stored no evidence for its bounds")
        return None if proof else [CaseBound([None] * c.spec.rows, None) for c in problem.cases]
    entries = evidence.get("cases") if isinstance(evidence, dict) else None
    if isinstance(evidence, dict) and "sha256" in evidence:
        if not report.add("evidence integrity", digest(evidence) == evidence["sha256"],
                          "the stored SHA-256 matches the evidence" if digest(evidence) == evidence["sha256"] else
                          "the evidence is not what was stored (edited or corrupted after the run)"):
            return None
    stated = evidence.get("property_sha256") if isinstance(evidence, dict) else None
    if stated is not None and not report.add("the property is the one the result was made for",
                                             property_digest(problem.cases) == stated,
                                             "input boxes and output specification match exactly"
                                             if property_digest(problem.cases) == stated else
                                             "another input region or output specification (files, image, ε?)"):
        return None
    if not isinstance(entries, list) or len(entries) != len(problem.cases):
        report.add("evidence", False, "the evidence does not list one entry per case")
        return None
    out = []
    for k, (case, entry) in enumerate(zip(problem.cases, entries)):
        try:
            bound = _case(report, net, k, case, entry, str(evidence.get("recipe", "crown")))
        except (EvidenceError, ValueError, KeyError, TypeError) as err:
            report.add(f"case {k} evidence", False, f"malformed: {err}")
            return None
        if bound is None:
            return None
        out.append(bound)
    return out


def _case(report: Report, net: CheckNet, k: int, case, entry: dict, recipe: str) -> CaseBound | None:
    if entry.get("case") != k:
        raise EvidenceError(f"entry {k} is for case {entry.get('case')!r}")
    if "tree" in entry:
        from optcert.checking.tree import check_tree

        return check_tree(report, net, k, case, entry["tree"])
    rows = entry.get("rows") or []
    if len(rows) != case.spec.rows:
        raise EvidenceError(f"{len(rows)} row items for {case.spec.rows} rows")
    ev = CaseEvidence(net, case)
    derived: list[Derived | None] = []
    for i, item in enumerate(rows):
        derived.append(None if item is None else _item(report, ev, item, i, f"case {k} row {i}", recipe))
        if item is not None and derived[-1] is None:
            return None
    clause = entry.get("clause")
    direct = None if clause is None else _item(report, ev, clause, None, f"case {k} clause", recipe)
    if clause is not None and direct is None:
        return None
    return CaseBound(derived, *_combine(case, derived, direct))


def _item(report: Report, ev: CaseEvidence, item: dict, row: int | None, name: str, recipe: str) -> Derived | None:
    """Re-derive one item; a step saying whether it reproduces its stated value."""
    stated = float(item.get("bound", math.nan))
    d = ev.evaluate(item, row, recipe)
    kind = item.get("kind")
    if d.trusted:
        why = item.get("why", "not re-checkable")
        report.add(f"{name} ({kind})", None, f"bound {stated:.9g}: {why}")
        return d
    ok = agrees(d, stated)
    report.add(f"{name} ({kind})", ok, f"re-derived {d.value:.12g}, stated {stated:.12g}")
    return d if ok else None


def _combine(case, rows: list[Derived | None], direct: Derived | None) -> tuple[Derived | None, float]:
    """The case margin's bound from its rows (min for ALL, max for ANY) and a direct clause bound:
    the best one (trusted if it rests on a trusted item) and the best from re-checked items only."""
    values = [r for r in rows if r is not None]
    checked = [r.value if not r.trusted else -math.inf for r in values]
    if case.combine is Combine.ALL:
        if len(values) < len(rows):
            return None, -math.inf
        worst = min(values, key=lambda r: (r.value, not r.trusted))
        return worst, min(checked)
    pool = values + ([direct] if direct else [])
    best = max(pool, key=lambda r: (r.value, not r.trusted), default=None)
    return best, max(checked + ([direct.value] if direct and not direct.trusted else []), default=-math.inf)


def _backed(claim: float, d: Derived | None, what: str, bad: list) -> bool | None:
    """Does a claimed bound equal the re-derived one (to rounding)? None: only trusted evidence
    states it, or none does (`bad` then names it). A claim above the evidence is unsupported; one
    below it is not what the evidence says either (a changed number)."""
    if not np.isfinite(claim) and claim < 0:
        return True
    if d is None:
        bad.append(f"{what} claims {claim:.9g} without evidence")
        return None
    if not agrees(d, claim):
        bad.append(f"{what} claims {claim:.9g}, the evidence gives {d.value:.9g}")
        return False
    return None if d.trusted else True


def _claims(report: Report, result: Result, problem: VerificationProblem, derived: list[CaseBound]) -> bool:
    """Every finite bound the result claims is backed by a re-derived one."""
    ok = True
    for k, (claim, bound) in enumerate(zip(result.cases, derived)):
        bad: list[str] = []
        outcomes = [_backed(v, d, f"row {i}", bad) for i, (v, d) in enumerate(zip(claim.lower, bound.rows))]
        case = _backed(claim.case_lower, bound.case, "the case bound", bad)
        outcome = False if False in outcomes + [case] else (None if None in outcomes + [case] else True)
        detail = "; ".join(bad) or ("backed by the evidence" if outcome else "backed only by trusted evidence")
        # a row claim resting on trusted evidence is a note when the case bound (what a verdict needs) is checked
        needed = None if case is not True else False
        ok &= report.add(f"case {k} claimed bounds", outcome, detail, needed=needed)
    worst = min((b.case for b in derived), key=lambda d: -math.inf if d is None else d.value, default=None)
    if (np.isfinite(result.bound) or result.bound > 0) and worst is not None:
        ok &= report.add("claimed overall bound", agrees(worst, result.bound), f"claims {result.bound:.9g}, "
                         f"the evidence gives {worst.value:.9g}")
    return ok


def _proof(report: Report, problem: VerificationProblem, derived: list[CaseBound]) -> None:
    """PROVED: every case's re-derived bound > 0 (no tolerance); trusted where only trusted
    evidence makes it positive."""
    for k, bound in enumerate(derived):
        d = bound.case
        if d is None or not d.value > 0:
            report.add(f"case {k} proved", False,
                       "no re-derived bound" if d is None else f"re-derived bound {d.value:.9g} is not positive")
            return
        if bound.checked > 0:
            report.add(f"case {k} proved", True, f"re-derived bound {bound.checked:.9g} > 0")
        else:
            report.add(f"case {k} proved", None, f"bound {d.value:.9g} > 0 rests on trusted evidence")
