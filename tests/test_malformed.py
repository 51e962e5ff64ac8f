"""The malformed-input corpus: each input gives its typed error, and at the command line a
one-line message, its distinct exit code and no traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest

from optcert import errors as E
from optcert.ir.load import load_network
from optcert.spec.images import pick_image
from optcert.spec.problem import robustness_problem
from optcert.spec.vnnlib import read_vnnlib
from optcert.verify import verify
from tests.builders import DATA

BAD = DATA / "malformed"
TINY = DATA / "tiny.onnx"
OK_PROP = DATA / "tiny_ok.vnnlib"

# (name, python call, expected error, CLI arguments)
CORPUS = [
    ("truncated onnx", lambda: load_network(BAD / "truncated.onnx"), E.UnreadableFileError,
     ["verify", BAD / "truncated.onnx", OK_PROP]),
    ("not onnx", lambda: load_network(BAD / "not_onnx.onnx"), E.UnreadableFileError,
     ["info", BAD / "not_onnx.onnx"]),
    ("unknown ops", lambda: load_network(BAD / "unknown_op.onnx"), E.UnsupportedOpError,
     ["info", BAD / "unknown_op.onnx"]),
    ("nan weight", lambda: load_network(BAD / "nan_weight.onnx"), E.InvalidModelError,
     ["info", BAD / "nan_weight.onnx"]),
    ("shape mismatch", lambda: load_network(BAD / "shape_mismatch.onnx"), E.InvalidModelError,
     ["info", BAD / "shape_mismatch.onnx"]),
    ("two inputs", lambda: load_network(BAD / "two_inputs.onnx"), E.InvalidModelError,
     ["info", BAD / "two_inputs.onnx"]),
    ("missing file", lambda: load_network(BAD / "missing.onnx"), E.UnreadableFileError,
     ["verify", BAD / "missing.onnx", OK_PROP]),
    ("lo > hi", lambda: read_vnnlib(BAD / "lo_gt_hi.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "lo_gt_hi.vnnlib"]),
    ("empty vnnlib", lambda: read_vnnlib(BAD / "empty.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "empty.vnnlib"]),
    ("contradictory", lambda: read_vnnlib(BAD / "contradictory.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "contradictory.vnnlib"]),
    ("undeclared variable", lambda: read_vnnlib(BAD / "undeclared.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "undeclared.vnnlib"]),
    ("wrong input size", lambda: read_vnnlib(BAD / "wrong_input_size.vnnlib").problem(load_network(TINY)),
     E.InvalidSpecError, ["verify", TINY, BAD / "wrong_input_size.vnnlib"]),
    ("wrong output size", lambda: read_vnnlib(BAD / "wrong_output_size.vnnlib").problem(load_network(TINY)),
     E.InvalidSpecError, ["verify", TINY, BAD / "wrong_output_size.vnnlib"]),
    ("unbalanced parens", lambda: read_vnnlib(BAD / "unbalanced.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "unbalanced.vnnlib"]),
    ("missing bound", lambda: read_vnnlib(BAD / "missing_bound.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "missing_bound.vnnlib"]),
    ("nonlinear term", lambda: read_vnnlib(BAD / "nonlinear.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "nonlinear.vnnlib"]),
    ("mixed input/output", lambda: read_vnnlib(BAD / "mixed_io.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "mixed_io.vnnlib"]),
    ("no output constraint", lambda: read_vnnlib(BAD / "no_output_constraint.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "no_output_constraint.vnnlib"]),
    ("unknown command", lambda: read_vnnlib(BAD / "unknown_command.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "unknown_command.vnnlib"]),
    ("nan bound", lambda: read_vnnlib(BAD / "nan_bound.vnnlib"), E.InvalidSpecError,
     ["verify", TINY, BAD / "nan_bound.vnnlib"]),
    ("bad engine option", lambda: verify(read_vnnlib(OK_PROP).problem(load_network(TINY)), "attack", 5,
                                         {"restartz": 3}), E.InvalidOptionError,
     ["verify", TINY, OK_PROP, "--engine", "attack", "-o", "restartz=3"]),
    ("bad option value", lambda: verify(read_vnnlib(OK_PROP).problem(load_network(TINY)), "attack", 5,
                                        {"steps": "many"}), E.InvalidOptionError,
     ["verify", TINY, OK_PROP, "--engine", "attack", "-o", "steps=many"]),
    ("unknown engine", lambda: verify(read_vnnlib(OK_PROP).problem(load_network(TINY)), "magic", 5),
     E.InvalidOptionError, ["verify", TINY, OK_PROP, "--engine", "magic"]),
    ("negative eps", lambda: robustness_problem(load_network(TINY), [0, 0, 0], 0, -0.1), E.InvalidSpecError,
     ["verify", TINY, "--image", DATA / "tiny_images.npz", "--eps", "-0.1"]),
    ("bad image file", lambda: pick_image(BAD / "not_images.npz", 0, 0, 3), E.UnreadableFileError,
     ["verify", TINY, "--image", BAD / "not_images.npz", "--eps", "0.1", "--label", "0"]),
    ("image index", lambda: pick_image(DATA / "tiny_images.npz", 9, None, 3), E.InvalidSpecError,
     ["verify", TINY, "--image", DATA / "tiny_images.npz", "--index", "9", "--eps", "0.1"]),
]


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 15


@pytest.mark.parametrize("name,call,error,argv", CORPUS, ids=[c[0] for c in CORPUS])
def test_typed_error(name, call, error, argv):
    with pytest.raises(error) as info:
        call()
    assert str(info.value)  # names the culprit


@pytest.mark.parametrize("name,call,error,argv", CORPUS, ids=[c[0] for c in CORPUS])
def test_cli_exit_code_without_traceback(name, call, error, argv):
    proc = subprocess.run([sys.executable, "-m", "optcert.cli", *map(str, argv)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == error.exit_code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("optcert: error:")


def test_unsupported_ops_are_listed_together():
    with pytest.raises(E.UnsupportedOpError) as info:
        load_network(BAD / "unknown_op.onnx")
    assert {op for _, op in info.value.ops} == {"Sigmoid", "Tanh"}
    assert "squash" in str(info.value) and "bend" in str(info.value)


def test_usage_error_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "optcert.cli", "verify"], capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
