"""Issue 15, defect 1 and its siblings: a region that is not the one the user meant is rejected
(exit 6, one line) at every entry point that builds one — robustness from the Python API and the
command line, VNN-LIB files, .npy/.npz images, the gap study — and a misclassified clean image
is reported as such, whatever the engine."""
from __future__ import annotations

import numpy as np
import pytest

from optcert import errors as E
from optcert.cli import main
from optcert.ir.load import load_network
from optcert.result import Verdict
from optcert.spec.images import load_images, pick_image
from optcert.spec.problem import check_valid_range, linf_box, robustness_problem
from optcert.spec.vnnlib import parse_vnnlib
from optcert.verify import verify
from tests.builders import DATA, random_mlp

TINY = DATA / "tiny.onnx"
IMAGES = DATA / "tiny_images.npz"


def _net():
    return random_mlp(np.random.default_rng(0), [3, 5, 2])


@pytest.mark.parametrize("valid, words", [((1.0, 0.0), "reversed"), ((0.5, 0.5), "no width"),
                                          ((float("nan"), 1.0), "NaN"), ((2.0, 3.0), "outside the valid range")])
def test_api_rejects_a_region_that_is_not_a_neighbourhood_of_the_image(valid, words):
    with pytest.raises(E.InvalidSpecError, match=words):
        robustness_problem(_net(), np.array([0.2, 0.5, 0.9]), 0, 0.1, valid)


@pytest.mark.parametrize("image, eps", [([0.2, np.nan, 0.3], 0.1), ([0.2, 0.5, 0.9], -0.1),
                                        ([0.2, 0.5, 0.9], float("inf")), ([0.2, 0.5, 0.9], float("nan"))])
def test_api_rejects_bad_images_and_radii(image, eps):
    with pytest.raises(E.InvalidSpecError):
        robustness_problem(_net(), np.array(image), 0, eps)


def test_the_box_always_contains_the_image_and_is_clipped_to_the_range():
    x = np.array([0.0, 0.5, 1.0])
    box = linf_box(x, 0.2, (0.0, 1.0))
    assert box.contains(x) and np.allclose(box.lo, [0.0, 0.3, 0.8]) and np.allclose(box.hi, [0.2, 0.7, 1.0])
    assert linf_box(x, 0.0).contains(x)                       # eps 0: the image alone
    assert check_valid_range((-np.inf, np.inf)) == (-np.inf, np.inf)   # no clipping at all is fine


def test_misclassified_clean_image_is_reported_as_such_by_every_engine():
    net = _net()
    x = np.array([0.3, 0.6, 0.2])
    wrong = int(np.argmin(net.forward(x[None])[0]))            # the label the network does not give
    problem = robustness_problem(net, x, wrong, 0.01)
    for engine in ("attack", "interval", "crown"):
        result = verify(problem, engine, 10)
        assert result.verdict is Verdict.FALSIFIED and result.clean_violation, engine
        assert "misclassified" in result.reason and "not an attack success" in result.reason
        assert np.allclose(result.counterexample.x, x)
    right = robustness_problem(net, x, 1 - wrong, 0.01)
    assert not verify(right, "attack", 10).clean_violation


def test_vnnlib_reversed_bounds_outside_any_or_are_an_error_naming_the_lines():
    text = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 1))\n(assert (<= X_0 0))\n" \
           "(assert (<= Y_0 0))\n"
    with pytest.raises(E.InvalidSpecError, match="X_0 has lower bound 1 above its upper bound 0"):
        parse_vnnlib(text, "p.vnnlib")


def test_vnnlib_or_branches_that_are_empty_are_dropped_not_rejected():
    text = ("(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(assert (>= X_0 0))\n(assert (<= X_0 1))\n"
            "(assert (or (and (>= X_0 2) (<= Y_0 0)) (and (<= X_0 0.5) (<= Y_0 1))))\n")
    prop = parse_vnnlib(text, "p.vnnlib")
    assert len(prop.cases) == 1 and prop.cases[0].box.hi[0] == 0.5


def test_image_files_are_checked(tmp_path):
    np.savez(tmp_path / "mismatch.npz", X=np.zeros((3, 3)), y=np.array([0, 1]))
    np.savez(tmp_path / "text.npz", X=np.array([["a", "b", "c"]]), y=np.array([0]))
    np.savez(tmp_path / "empty.npz", X=np.zeros((0, 3)))
    np.save(tmp_path / "objects.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(E.InvalidSpecError, match="2 labels for 3 images"):
        load_images(tmp_path / "mismatch.npz")
    with pytest.raises(E.InvalidSpecError, match="not numeric"):
        load_images(tmp_path / "text.npz")
    with pytest.raises(E.InvalidSpecError, match="no images"):
        load_images(tmp_path / "empty.npz")
    with pytest.raises(E.UnreadableFileError):
        load_images(tmp_path / "objects.npy")
    with pytest.raises(E.UnreadableFileError, match="is a directory"):
        load_images(tmp_path)
    image, label = pick_image(IMAGES, 1, None, 3)
    assert image.shape == (3,) and isinstance(label, int)


@pytest.mark.parametrize("extra, code, words", [
    (["--valid-range", "1,0"], 6, "reversed"),
    (["--valid-range", "2,3"], 6, "outside the valid range"),
    (["--valid-range", "0.5,0.5"], 6, "no width"),
    (["--eps", "-0.1"], 6, "eps"),
])
def test_cli_region_errors_exit_6_with_one_line(extra, code, words, capsys):
    argv = ["verify", str(TINY), "--image", str(IMAGES), "--index", "0", "--engine", "attack"]
    if "--eps" not in extra:
        argv += ["--eps", "0.02"]
    assert main(argv + extra) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and err.startswith("optcert: error:")


def test_cli_robustness_flags_with_a_vnnlib_property_are_a_usage_error(capsys):
    for flag in (["--eps", "0.1"], ["--label", "1"], ["--index", "2"], ["--valid-range", "0,1"]):
        assert main(["verify", str(TINY), str(DATA / "tiny_ok.vnnlib"), *flag]) == 2, flag
        assert flag[0] in capsys.readouterr().err


def test_gap_rejects_images_outside_the_pixel_range_before_running(tmp_path, capsys):
    np.savez(tmp_path / "big.npz", X=np.full((2, 3), 7.0), y=np.array([0, 1]))
    code = main(["gap", str(TINY), "--images", str(tmp_path / "big.npz"), "--eps", "0.1", "--methods", "ibp",
                 "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 6 and "outside the valid range" in capsys.readouterr().err
    assert not (tmp_path / "s.sqlite").exists()


def test_shared_example_from_the_issue(benchmarks, capsys):
    """`verify NOR_MLP_B.onnx --image mnist_test_30.npz --index 3 --eps 0.02 --valid-range 2,3` used to
    return FALSIFIED at x = [2, 2, ...]; the region does not contain the image."""
    net, images = benchmarks / "salman_mnist" / "NOR_MLP_B.onnx", benchmarks / "mnist_images" / "mnist_test_30.npz"
    base = ["verify", str(net), "--image", str(images), "--index", "3", "--eps", "0.02", "--engine", "attack"]
    assert main(base + ["--valid-range", "2,3"]) == 6
    assert main(base + ["--valid-range", "1,0"]) == 6
    assert "outside the valid range" in capsys.readouterr().err
    assert load_network(net).n_inputs == 784
