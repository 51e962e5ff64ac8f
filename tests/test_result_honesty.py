"""Issue 15, defect 4 and item 8: every result says which method certified each row, whether a time
limit was hit (and the reason says so), where it came from (provenance), and writes infinities as
JSON null under a documented convention that reads back exactly."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from optcert.certify import EngineOutput, conclude
from optcert.compiled import compile_problem
from optcert.engines import registry
from optcert.engines.registry import ENGINES, Engine
from optcert.ir.load import load_network
from optcert.result import SCHEMA, Result, Verdict
from optcert.spec.problem import Box, Case, LinearSpec, VerificationProblem
from optcert.spec.vnnlib import read_vnnlib
from optcert.verify import verify
from tests.builders import DATA, random_mlp


def _problem(rows: int = 2, cases: int = 1) -> VerificationProblem:
    net = random_mlp(np.random.default_rng(3), [2, 4, 3])
    spec = LinearSpec(np.eye(3)[:rows] - np.eye(3)[2], np.full(rows, 5.0))
    box = Box(np.zeros(2), np.full(2, 0.1))
    return VerificationProblem(net, tuple(Case(box, spec) for _ in range(cases)), name="p")


def test_row_source_defaults_to_the_engine_and_says_none_where_nothing_is_certified():
    p = _problem()
    r = conclude(p, compile_problem(p), EngineOutput(lower=[np.array([1.0, -np.inf])]), "crown", {}, {})
    assert r.cases[0].row_source == ("crown", "none") and r.row_source == ("crown", "none")


@pytest.mark.parametrize("given", [["lp-floor", "bm", "crown", "bm"], [["lp-floor", "bm"], ["crown", "bm"]]])
def test_row_source_comes_from_the_certificate_flat_or_per_case(given):
    p = _problem(cases=2)
    out = EngineOutput(lower=[np.array([1.0, 2.0]), np.array([3.0, 4.0])], certificate={"row_source": given})
    r = conclude(p, compile_problem(p), out, "bm", {}, {})
    assert r.cases[0].row_source == ("lp-floor", "bm") and r.cases[1].row_source == ("crown", "bm")
    assert Result.from_json(r.to_json()).cases[1].row_source == ("crown", "bm")


def test_a_malformed_row_source_falls_back_to_the_engine_name():
    p = _problem()
    out = EngineOutput(lower=[np.array([1.0, 2.0])], certificate={"row_source": ["only-one"]})
    assert conclude(p, compile_problem(p), out, "sdp", {}, {}).row_source == ("sdp", "sdp")


def test_timed_out_engine_output_is_said_in_the_reason():
    p = _problem()
    out = EngineOutput(lower=[np.array([-1.0, 2.0])], timed_out=True)
    r = conclude(p, compile_problem(p), out, "bm", {}, {})
    assert r.timed_out and r.verdict is Verdict.UNKNOWN
    assert "not positive" in r.reason and "time limit" in r.reason


@pytest.mark.parametrize("lower, verdict", [(-np.inf, Verdict.UNKNOWN), (None, Verdict.PROVED)])
def test_an_engine_that_overruns_its_deadline_is_marked_timed_out(lower, verdict, monkeypatch):
    def slow(problem, compiled, options, deadline):
        time.sleep(0.3)
        rows = [cc.ibp.lower[-1] if lower is None else np.full(cc.case.spec.rows, lower) for cc in compiled]
        return EngineOutput(lower=rows, reason="some engine reason")
    entry = ENGINES[Engine.INTERVAL]
    monkeypatch.setitem(registry.ENGINES, Engine.INTERVAL, registry.EngineEntry(entry.options, slow, entry.summary))
    r = verify(_problem(), "interval", 0.05)
    assert r.verdict is verdict and r.timed_out and "time limit of 0.05 s reached" in r.reason
    if verdict is Verdict.UNKNOWN:
        assert "some engine reason" in r.reason


def test_json_writes_infinities_as_null_with_a_pointer_map_and_reads_them_back():
    p = _problem()
    r = verify(p, "interval", 10)
    data = json.loads(r.to_json())
    assert data["schema"] == SCHEMA
    assert "Infinity" not in r.to_json() and "NaN" not in r.to_json()
    for pointer, value in data["nonfinite"].items():
        node = data
        for key in pointer.split("/")[1:]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        assert node is None and value in ("inf", "-inf", "nan")
    back = Result.from_json(r.to_json())
    assert back.upper == r.upper == math.inf and back.cases == r.cases
    assert data["upper"] is None and data["nonfinite"]["/upper"] == "inf"


def test_json_pointer_escapes_keys_with_slashes():
    r = Result(Verdict.UNKNOWN, -math.inf, math.inf, (), "r", "e", certificate={"a/b": {"~c": float("nan")}})
    data = r.to_dict()
    assert data["nonfinite"]["/certificate/a~1b/~0c"] == "nan"
    assert math.isnan(Result.from_dict(data).certificate["a/b"]["~c"])


def test_old_results_with_infinity_strings_still_read():
    old = {"verdict": "unknown", "bound": "-inf", "upper": "inf", "cases": [], "reason": "r", "engine": "e"}
    r = Result.from_dict(old)
    assert r.bound == -math.inf and r.upper == math.inf


def test_provenance_records_version_inputs_machine_and_limit():
    from optcert.version import __version__

    net, prop = DATA / "tiny.onnx", DATA / "tiny_ok.vnnlib"
    problem = read_vnnlib(prop).problem(load_network(net))
    r = verify(problem, "interval", 7.0, inputs={"network": net}, command="optcert verify ...")
    prov = json.loads(r.to_json())["provenance"]
    assert prov["optcert"] == __version__ and prov["time_limit"] == 7.0 and prov["command"] == "optcert verify ..."
    assert prov["inputs"]["property"]["path"] == str(prop) and len(prov["inputs"]["network"]["sha256"]) == 64
    assert prov["machine"]["cores"] >= 1 and "numpy" in prov["packages"] and "highspy" in prov["packages"]


def test_cli_json_has_provenance_with_the_command(tmp_path):
    from optcert.cli import main

    out = tmp_path / "r.json"
    assert main(["verify", str(DATA / "tiny.onnx"), str(DATA / "tiny_ok.vnnlib"), "--json", str(out), "-q"]) == 0
    prov = json.loads(out.read_text())["provenance"]
    assert prov["command"].startswith("optcert verify") and set(prov["inputs"]) == {"network", "property"}
    assert prov["machine"]["threads"] == 1
