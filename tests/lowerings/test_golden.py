"""Golden lowerings: tiny networks with given bounds give exactly the expected forms."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from optcert.bounds import Bounds
from optcert.errors import LoweringError
from optcert.ir.layered import Layer, LayeredNet
from optcert.lowerings import Objective, Sense, lower_lp, lower_milp, pre_activation_objectives

INF = np.inf


def net_of(*layers: tuple[list, list]) -> LayeredNet:
    """A chain LayeredNet from (W, b) pairs; the last pair is the output layer."""
    out = []
    for k, (w, b) in enumerate(layers):
        w = np.array(w, dtype=float)
        out.append(Layer(f"l{k + 1}", (k,), (w,), np.array(b, dtype=float)))
    return LayeredNet((out[0].weights[0].shape[1],), tuple(out))


def bounds_of(*pairs) -> Bounds:
    return Bounds(tuple(np.array(lo, float) for lo, _ in pairs), tuple(np.array(hi, float) for _, hi in pairs))


def assert_form(form, c, A, row_lo, row_hi, col_lo, col_hi, integer, c0=0.0):
    np.testing.assert_array_equal(form.c, c)
    np.testing.assert_array_equal(form.A.toarray(), np.array(A, float))
    np.testing.assert_array_equal(form.row_lo, row_lo)
    np.testing.assert_array_equal(form.row_hi, row_hi)
    np.testing.assert_array_equal(form.col_lo, col_lo)
    np.testing.assert_array_equal(form.col_hi, col_hi)
    np.testing.assert_array_equal(form.integer, integer)
    assert form.c0 == c0


# ---- one ReLU: x ∈ [-1, 2], ẑ = x, output z ----------------------------------------------------
ONE = net_of(([[1.0]], [0.0]), ([[1.0]], [0.0]))
ONE_B = bounds_of(([-1], [2]), ([-1], [2]), ([0], [2]))


def test_one_relu_milp():
    low = lower_milp(ONE, ONE_B, Objective((0,)))
    assert dict(low.columns) == {"x": slice(0, 1), "z1": slice(1, 2), "zhat1": slice(2, 3), "a1": slice(3, 4)}
    assert low.form.col_names == ("x[0]", "z1[0]", "zhat1[0]", "a1[0]")
    assert_form(low.form, c=[0, 1, 0, 0],
                A=[[-1, 0, 1, 0],    # ẑ − x = 0
                   [0, 1, -1, 0],    # z − ẑ ≥ 0
                   [0, 1, 0, -2],    # z − u a ≤ 0
                   [0, 1, -1, 1]],   # z − ẑ − l a ≤ −l
                row_lo=[0, 0, -INF, -INF], row_hi=[0, INF, 0, 1],
                col_lo=[-1, 0, -1, 0], col_hi=[2, 2, 2, 1], integer=[False, False, False, True])
    cols = low.info["layers"][1]
    assert cols.unstable.tolist() == [0] and cols.active.tolist() == []
    assert (cols.z.tolist(), cols.zhat.tolist(), cols.a.tolist()) == ([1], [2], [3])


def test_one_relu_lp_rounds_the_chord_up():
    low = lower_lp(ONE, ONE_B, Objective((0,)))
    assert dict(low.columns) == {"x": slice(0, 1), "z1": slice(1, 2), "zhat1": slice(2, 3)}
    s, r = -low.form.A[2, 2], low.form.row_hi[2]
    assert Fraction(s) >= Fraction(2, 3) and s - 2 / 3 <= 4 * np.finfo(float).eps
    assert Fraction(r) >= Fraction(s) * 1 and r - s <= 4 * np.finfo(float).eps
    assert_form(low.form, c=[0, 1, 0], A=[[-1, 0, 1], [0, 1, -1], [0, 1, -s]],
                row_lo=[0, 0, -INF], row_hi=[0, INF, r], col_lo=[-1, 0, -1], col_hi=[2, 2, 2],
                integer=[False] * 3)


# ---- two neurons: x ∈ [-1, 1]², neuron 0 unstable, neuron 1 active (or inactive) --------------
TWO = net_of(([[1, 2], [-1, 0.5]], [0.5, 3]), ([[2, -1], [0, 1]], [0.25, -1]))
BOX = ([-1, -1], [1, 1])
OUT = ([-3, -2], [5, 4])


def test_two_neurons_milp_unstable_and_active():
    low = lower_milp(TWO, bounds_of(BOX, ([-2.5, 1.5], [3.5, 4.5]), OUT), Objective((0,)))
    assert low.form.col_names == ("x[0]", "x[1]", "z1[0]", "z1[1]", "zhat1[0]", "a1[0]")
    assert_form(low.form, c=[0, 0, 2, -1, 0, 0], c0=0.25,
                A=[[-1, -2, 0, 0, 1, 0],      # ẑ0 − x0 − 2 x1 = 0.5
                   [1, -0.5, 0, 1, 0, 0],     # z1 (active) + x0 − 0.5 x1 = 3
                   [0, 0, 1, 0, -1, 0],
                   [0, 0, 1, 0, 0, -3.5],
                   [0, 0, 1, 0, -1, 2.5]],
                row_lo=[0.5, 3, 0, -INF, -INF], row_hi=[0.5, 3, INF, 0, 2.5],
                col_lo=[-1, -1, 0, 1.5, -2.5, 0], col_hi=[1, 1, 3.5, 4.5, 3.5, 1],
                integer=[False] * 5 + [True])
    assert low.info["rows"]["affine1"] == slice(0, 2)


def test_two_neurons_lp_inactive_neuron_has_no_column():
    low = lower_lp(TWO, bounds_of(BOX, ([-2.5, -4], [3.5, -0.5]), OUT), Objective((0,)))
    s, r = -low.form.A[2, 3], low.form.row_hi[2]
    assert Fraction(s) >= Fraction(3.5) / Fraction(6) and Fraction(r) >= Fraction(s) * Fraction(2.5)
    assert_form(low.form, c=[0, 0, 2, 0], c0=0.25,
                A=[[-1, -2, 0, 1], [0, 0, 1, -1], [0, 0, 1, -s]],
                row_lo=[0.5, 0, -INF], row_hi=[0.5, INF, r],
                col_lo=[-1, -1, 0, -2.5], col_hi=[1, 1, 3.5, 3.5], integer=[False] * 4)
    assert low.info["layers"][1].z.tolist() == [2, -1]


def test_stable_neurons_give_no_binaries():
    low = lower_milp(TWO, bounds_of(BOX, ([0.5, -4], [3.5, -0.5]), OUT), Objective((0,)))
    assert not low.form.is_mip and low.columns["zhat1"] == slice(3, 3) and low.columns["a1"] == slice(3, 3)
    assert_form(low.form, c=[0, 0, 2], c0=0.25, A=[[-1, -2, 1]], row_lo=[0.5], row_hi=[0.5],
                col_lo=[-1, -1, 0.5], col_hi=[1, 1, 3.5], integer=[False] * 3)


def test_max_objective_epigraph_and_maximise():
    b = bounds_of(BOX, ([-2.5, 1.5], [3.5, 4.5]), OUT)
    low = lower_lp(TWO, b, Objective((0, 1)))
    assert low.columns["t"] == slice(5, 6)
    f = low.form
    np.testing.assert_array_equal(f.c, [0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(f.A[-2:].toarray(), [[0, 0, -2, 1, 0, 1], [0, 0, 0, -1, 0, 1]])
    np.testing.assert_array_equal(f.row_lo[-2:], [0.25, -1])
    np.testing.assert_array_equal(f.row_hi[-2:], [INF, INF])
    assert (f.col_lo[5], f.col_hi[5]) == (-2, 5)
    up = lower_milp(TWO, b, Objective((0,), sense=Sense.MAXIMIZE))
    np.testing.assert_array_equal(up.form.c, [0, 0, -2, 1, 0, 0])
    assert up.form.c0 == -0.25 and up.info["sign"] == -1
    with pytest.raises(ValueError):
        Objective((0, 1), sense=Sense.MAXIMIZE)


@pytest.mark.parametrize("lower", [lower_milp, lower_lp])
@pytest.mark.parametrize("k, lo, hi, msg", [
    (1, [-2.5, 1.5], [INF, 4.5], "layer 1 (l1), neuron 0"),
    (1, [-2.5, np.nan], [3.5, 4.5], "layer 1 (l1), neuron 1"),
    (1, [-2.5, 5.0], [3.5, 4.5], "layer 1 (l1), neuron 1"),
    (0, [-1, -INF], [1, 1], "input layer 0, neuron 1"),
])
def test_bad_bounds_raise(lower, k, lo, hi, msg):
    pairs = [BOX, ([-2.5, 1.5], [3.5, 4.5]), OUT]
    pairs[k] = (lo, hi)
    with pytest.raises(LoweringError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        lower(TWO, bounds_of(*pairs), Objective((0,)))


def test_unused_infinite_bounds_are_fine_unless_kept():
    b = bounds_of(BOX, ([-2.5, -INF], [3.5, -0.5]), ([-INF, -2], [INF, 4]))
    lower_milp(TWO, b, Objective((0,)))       # inactive lo and unused output bounds are not read
    with pytest.raises(LoweringError, match="neuron 1"):
        lower_milp(TWO, b, Objective((0,)), keep_inactive=True)
    with pytest.raises(LoweringError, match="output layer 2"):
        lower_milp(TWO, b, Objective((0, 1)))


def test_keep_inactive_adds_zhat_row():
    low = lower_milp(TWO, bounds_of(BOX, ([-2.5, -4], [3.5, -0.5]), OUT), Objective((0,)), keep_inactive=True)
    assert low.form.col_names == ("x[0]", "x[1]", "z1[0]", "zhat1[0]", "zhat1[1]", "a1[0]")
    np.testing.assert_array_equal(low.form.A[:2].toarray(), [[-1, -2, 0, 1, 0, 0], [1, -0.5, 0, 0, 1, 0]])
    assert (low.form.col_lo[4], low.form.col_hi[4]) == (-4, -0.5)


# ---- prefixes for per-neuron bound tightening -----------------------------------------------
DEEP = net_of(([[1, 2], [-1, 0.5]], [0.5, 3]), ([[1, -1], [2, 1], [-1, 0]], [0, -1, 0.5]), ([[1, 1, 1]], [0]))
DEEP_B = bounds_of(BOX, ([-2.5, 1.5], [3.5, 4.5]), ([-10, -10, -10], [10, 10, 10]), ([-30], [30]))


@pytest.mark.parametrize("lower", [lower_milp, lower_lp])
def test_upto_prefix_and_pre_activation_objectives(lower):
    low = lower(DEEP, DEEP_B, upto=2)
    assert set(low.columns) <= {"x", "z1", "zhat1", "a1"} and not low.form.c.any()
    G, g0 = pre_activation_objectives(low, DEEP, 2)
    assert G.shape == (3, low.form.n_cols)
    np.testing.assert_array_equal(G.toarray()[:, 2:4], [[1, -1], [2, 1], [-1, 0]])
    np.testing.assert_array_equal(g0, [0, -1, 0.5])
    x = np.array([0.3, -0.7])
    zhat1 = DEEP.forward(x[None])[0][0]
    point = np.zeros(low.form.n_cols)
    point[low.columns["x"]] = x
    point[low.columns["z1"]] = np.maximum(zhat1, 0)
    np.testing.assert_allclose(G @ point + g0, DEEP.forward(x[None])[1][0], rtol=0, atol=1e-15)
    G1, _ = pre_activation_objectives(lower(DEEP, DEEP_B, upto=1), DEEP, 1)
    np.testing.assert_array_equal(G1.toarray(), [[1, 2], [-1, 0.5]])
    with pytest.raises(ValueError):
        pre_activation_objectives(low, DEEP, 3)
    with pytest.raises(ValueError):
        lower(DEEP, DEEP_B, Objective((0,)), upto=2)
    with pytest.raises(ValueError):
        lower(DEEP, DEEP_B)
    lower(DEEP, DEEP_B.prefix(1), upto=2)  # a prefix needs only the bounds it reads
