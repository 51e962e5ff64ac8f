"""Verdict decisions: counterexamples must survive float64 re-checks; ties are not violations."""
from __future__ import annotations

import numpy as np

from optcert.certify import EngineOutput, check_counterexample, conclude
from optcert.compiled import compile_problem
from optcert.ir import Network
from optcert.ir import ops as O
from optcert.result import Verdict
from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem


def _identity_problem(C, d, combine=Combine.ALL, lo=(-1, -1), hi=(1, 1)):
    net = Network.sequential((2,), [O.Affine(np.eye(2), np.zeros(2))])
    return VerificationProblem(net, (Case(Box(lo, hi), LinearSpec(C, d), combine),))


def test_tie_is_not_a_counterexample():
    p = _identity_problem([[1.0, 0.0]], [0.0])  # margin = x0; violation x0 <= 0; tie at x0 = 0
    cc = compile_problem(p)[0]
    assert check_counterexample(p, cc, np.array([0.0, 0.3])) is None
    assert check_counterexample(p, cc, np.array([-1e-3, 0.3])) is not None


def test_candidate_outside_box_is_clipped_before_the_check():
    p = _identity_problem([[1.0, 0.0]], [0.5], lo=(0, 0), hi=(1, 1))  # margin x0 + 0.5 > 0 on the box
    cc = compile_problem(p)[0]
    assert check_counterexample(p, cc, np.array([-5.0, 0.0])) is None


def test_any_case_needs_every_row_violated():
    p = _identity_problem([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], Combine.ANY)
    cc = compile_problem(p)[0]
    assert check_counterexample(p, cc, np.array([-0.5, 0.5])) is None
    assert check_counterexample(p, cc, np.array([-0.5, -0.5])) is not None


def test_proved_needs_strictly_positive_sound_bound():
    p = _identity_problem([[1.0, 0.0]], [2.0])  # true min margin 1
    compiled = compile_problem(p)
    zero = conclude(p, compiled, EngineOutput(lower=[np.array([0.0])]), "test", {}, {})
    assert zero.verdict is Verdict.UNKNOWN
    ok = conclude(p, compiled, EngineOutput(lower=[np.array([1.0])]), "test", {}, {})
    assert ok.verdict is Verdict.PROVED and 0 < ok.bound <= 1.0


def test_any_case_bound_uses_best_row():
    p = _identity_problem([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], Combine.ANY)
    r = conclude(p, compile_problem(p), EngineOutput(lower=[np.array([-1.0, 0.5])]), "t", {}, {})
    assert r.verdict is Verdict.PROVED


def test_falsified_wins_over_bad_bound_and_reports_margins():
    p = _identity_problem([[1.0, 0.0]], [0.0])
    r = conclude(p, compile_problem(p), EngineOutput(lower=[np.array([-1.0])], candidates=[(0, np.array([-0.5, 0.0]))]),
                 "t", {}, {})
    assert r.verdict is Verdict.FALSIFIED and r.upper == -0.5 and r.counterexample.margins == (-0.5,)


def test_an_any_case_upper_is_a_margin_one_input_achieved():
    """Rows x0 + 1 and x1 + 1 (ANY: the case margin is their maximum, true minimum 0 at (−1, −1)).
    Two candidates each make a different row small: (−1, 1) gives max(0, 2) = 2 and (1, −1) gives 2.
    The rows' best values (0 and 0) come from different inputs: the case upper is 2, not 0."""
    p = _identity_problem([[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0], Combine.ANY)
    out = EngineOutput(lower=[np.array([-1.0, -1.0])],
                       candidates=[(0, np.array([-1.0, 1.0])), (0, np.array([1.0, -1.0]))])
    r = conclude(p, compile_problem(p), out, "t", {}, {})
    assert r.cases[0].upper == (0.0, 0.0)          # each row's best achieved value
    assert r.upper == r.cases[0].case_upper == 2.0   # an achieved case margin, ≥ the true minimum 0
