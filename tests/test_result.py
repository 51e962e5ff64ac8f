"""Result JSON round trip and the VNN-COMP result format."""
from __future__ import annotations

import json
import math

from optcert.result import CaseBounds, Counterexample, Result, Verdict


def _result(verdict, cex=None, timed_out=False):
    return Result(verdict, bound=-math.inf if verdict is not Verdict.PROVED else 0.5, upper=math.inf,
                  cases=(CaseBounds((0.5, -math.inf), (math.inf, 1.0), 0.5, math.inf),), reason="r",
                  engine="interval", options={"a": 1}, timings={"engine": 0.1}, counterexample=cex,
                  certificate={"k": [1.0, 2.0]}, timed_out=timed_out, problem="p")


def test_json_round_trip_is_exact_and_strict():
    cex = Counterexample(0, (1, 2), (0.1, -0.2), (1.0, 2.0, 3.0), (-1.0, -2.0, 0.5))
    for r in (_result(Verdict.PROVED), _result(Verdict.FALSIFIED, cex), _result(Verdict.UNKNOWN, timed_out=True)):
        text = r.to_json()
        json.loads(text)  # strict JSON: no Infinity/NaN literals
        assert Result.from_json(text) == r


def test_vnncomp_text():
    cex = Counterexample(0, (0,), (0.1, -0.2), (1.5,), (-1.0,))
    assert _result(Verdict.PROVED).vnncomp_text() == "unsat\n"
    assert _result(Verdict.UNKNOWN).vnncomp_text() == "unknown\n"
    assert _result(Verdict.UNKNOWN, timed_out=True).vnncomp_text() == "timeout\n"
    text = _result(Verdict.FALSIFIED, cex).vnncomp_text()
    assert text == "sat\n((X_0 0.1)\n(X_1 -0.2)\n(Y_0 1.5))\n"
