"""`optcert check`: exit 0 VALID, 10 INVALID (naming the failing step), 11 UNCHECKABLE; bad input
files are exit 3; it works for VNN-LIB and --image properties, and refuses a result made for other
files."""
from __future__ import annotations

import json

import numpy as np

from optcert.checking.tamper import tampered, targets
from optcert.cli import main
from tests.builders import DATA

TINY = DATA / "tiny.onnx"
PROP = DATA / "tiny_ok.vnnlib"
IMAGES = DATA / "tiny_images.npz"


def _verify(tmp_path, *extra) -> tuple:
    out = tmp_path / "r.json"
    assert main(["verify", str(TINY), *map(str, extra), "--json", str(out), "-q"]) == 0
    return out, json.loads(out.read_text())


def test_valid_invalid_and_the_failing_step(tmp_path, capsys):
    path, d = _verify(tmp_path, PROP, "--engine", "crown")
    capsys.readouterr()
    assert main(["check", str(path), str(TINY), str(PROP)]) == 0
    assert capsys.readouterr().out.startswith("VALID")
    t = targets(d)["bound"][0]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tampered(d, t, np.random.default_rng(0), reseal=True)))
    assert main(["check", str(bad), str(TINY), str(PROP), "-v"]) == 10
    out = capsys.readouterr().out
    assert out.startswith("INVALID") and "fail" in out


def test_an_image_robustness_result_is_checked_with_the_same_arguments(tmp_path, capsys):
    path, _ = _verify(tmp_path, "--image", IMAGES, "--eps", "0.01", "--engine", "alpha-crown")
    capsys.readouterr()
    code = main(["check", str(path), str(TINY), "--image", str(IMAGES), "--eps", "0.01"])
    assert code == 0, capsys.readouterr().out
    assert main(["check", str(path), str(TINY), "--image", str(IMAGES), "--eps", "0.02"]) == 10


def test_a_result_made_from_another_network_is_invalid(tmp_path, capsys):
    path, _ = _verify(tmp_path, PROP, "--engine", "interval")
    import onnx

    model = onnx.load(str(TINY))
    model.doc_string = "the same graph in another file"
    other = tmp_path / "other.onnx"
    onnx.save(model, str(other))
    capsys.readouterr()
    assert main(["check", str(path), str(other), str(PROP)]) == 10
    assert "input network" in capsys.readouterr().out


def test_a_milp_proof_is_uncheckable(tmp_path, capsys):
    path, d = _verify(tmp_path, PROP, "--engine", "milp", "-o", "attack=false")
    capsys.readouterr()
    code = main(["check", str(path), str(TINY), str(PROP)])
    kinds = {item["kind"] for case in d["certificate"]["evidence"]["cases"] for item in case["rows"] if item}
    assert code == (11 if "trusted" in kinds and d["verdict"] == "proved" else 0), capsys.readouterr().out


def test_bad_result_files_exit_3(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    for path in (broken, tmp_path / "missing.json", tmp_path):
        assert main(["check", str(path), str(TINY), str(PROP)]) == 3
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err


def test_the_report_file(tmp_path, capsys):
    path, _ = _verify(tmp_path, PROP, "--engine", "crown")
    report = tmp_path / "report.json"
    assert main(["check", str(path), str(TINY), str(PROP), "--report", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["status"] == "valid" and data["steps"]
    assert main(["check", str(path), str(TINY), str(PROP), "--report", str(tmp_path / "no" / "r.json")]) == 3
