"""The command line: demo, info, solvers, engines, verify with JSON and VNN-COMP output."""
from __future__ import annotations

import json

from optcert.cli import main
from optcert.cli.demo import EXAMPLES

ACAS = EXAMPLES / "acasxu" / "ACASXU_run2a_2_1_batch_2000.onnx"


def test_demo_runs(capsys):
    assert main(["demo", "--timeout", "3"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("  prop_")]
    assert len(rows) == 4 and "falsified ok" in rows[1] and not any("WRONG" in r for r in rows), out
    assert "legend" in out and "at most 3 s per property" in out and "next: optcert verify" in out


def test_info(capsys):
    assert main(["info", str(ACAS)]) == 0
    assert "neurons: 300" in capsys.readouterr().out


def test_solvers_and_engines_list(capsys):
    assert main(["solvers"]) == 0 and main(["engines"]) == 0
    out = capsys.readouterr().out
    assert "highs" in out and "attack" in out


def test_verify_writes_json_and_vnncomp(tmp_path, capsys):
    js, res = tmp_path / "r.json", tmp_path / "r.txt"
    code = main(["verify", str(ACAS), str(EXAMPLES / "acasxu" / "prop_2.vnnlib"), "--engine", "attack",
                 "--timeout", "20", "--json", str(js), "--vnncomp-result", str(res)])
    assert code == 0
    data = json.loads(js.read_text())
    assert data["verdict"] == "falsified"
    text = res.read_text()
    assert text.startswith("sat\n((X_0 ") and "(Y_4 " in text


def test_verify_robustness_from_image(tmp_path, capsys):
    from tests.builders import DATA

    code = main(["verify", str(DATA / "tiny.onnx"), "--image", str(DATA / "tiny_images.npz"), "--index", "1",
                 "--eps", "0.01", "--engine", "interval", "-q"])
    assert code == 0
    assert capsys.readouterr().out.strip() in ("proved", "unknown", "falsified")


def test_verify_bounds_flag_reaches_the_lp_engine_and_is_refused_elsewhere(capsys):
    from tests.builders import DATA

    base = ["verify", str(DATA / "tiny.onnx"), str(DATA / "tiny_ok.vnnlib"), "-q"]
    assert main(base + ["--engine", "lp", "--bounds", "lp-all"]) == 0
    assert main(base + ["--engine", "milp", "--bounds", "crown"]) == 0
    assert main(base + ["--engine", "crown", "--bounds", "lp-all"]) == 7
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bounds" in err[0] and "Traceback" not in err[0]


def test_vnncomp_subcommand(tmp_path, capsys):
    out = tmp_path / "result.txt"
    prop = EXAMPLES / "acasxu" / "prop_2.vnnlib"          # sat on this network: PGD finds it at once
    assert main(["vnncomp", str(ACAS), str(prop), str(out), "30"]) == 0
    assert out.read_text().startswith("sat")
    assert main(["vnncomp", str(tmp_path / "missing.onnx"), str(prop), str(out), "5"]) == 3
    assert "missing.onnx" in capsys.readouterr().err
    assert main(["vnncomp", str(ACAS), str(prop), str(out), "-1"]) == 2      # usage: a non-positive budget
    assert out.read_text() == "error\n"
