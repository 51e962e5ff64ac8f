"""Relaxation-gap study: bound invariants on tiny random nets (through a real sweep and store),
tables built from a store, minimum-distortion bisection, and the `optcert gap` command."""
from __future__ import annotations

import math

import numpy as np
import pytest

from optcert.cli import main
from optcert.errors import InvalidOptionError
from optcert.study.distortion import Bisection, bisect, distortion_table, load_distortions, run_distortion
from optcert.study.gap import LinfProperty, Method, gap_tasks, linf_properties, parse_methods, split_overrides
from optcert.study.report import (
    Reference,
    aggregate_table,
    error_bounds,
    gaps,
    instance_table,
    load_instances,
    reference,
    table1,
    write_csv,
)
from optcert.sweeps.run import SweepSettings, run_sweep
from optcert.sweeps.store import ResultStore, RunKey, RunStatus, make_record

TOL = 1e-6


def _onnx_mlp(path, rng, sizes):
    """A random Gemm/Relu MLP saved as ONNX (float32 weights, read back exactly in float64)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, last = [], [], "x"
    for k, (n, m) in enumerate(zip(sizes[:-1], sizes[1:])):
        inits += [numpy_helper.from_array((rng.normal(size=(m, n)) / np.sqrt(n)).astype(np.float32), f"W{k}"),
                  numpy_helper.from_array((rng.normal(size=m) * 0.3).astype(np.float32), f"b{k}")]
        nodes.append(helper.make_node("Gemm", [last, f"W{k}", f"b{k}"], [f"h{k}"], transB=1))
        last = f"h{k}"
        if k < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [last], [f"r{k}"]))
            last = f"r{k}"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, sizes[0]])],
                              [helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, sizes[-1]])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return str(path)


def _images(path, net_path, rng, count):
    """Random images in [0, 1] labelled with the network's own prediction (so all start correct)."""
    from optcert.ir.load import load_network

    net = load_network(net_path)
    x = rng.uniform(0.2, 0.8, size=(count, net.n_inputs))
    np.savez(path, X=x, y=net.forward(x).argmax(axis=1))
    return str(path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gap")
    rng = np.random.default_rng(7)
    nets = [_onnx_mlp(folder / f"net{k}.onnx", rng, [4, 6, 5, 3]) for k in range(2)]
    return folder, nets, _images(folder / "images.npz", nets[0], rng, 2)


@pytest.fixture(scope="module")
def swept(tiny):
    """Every method but BnB on 2 nets × 2 images (eps 0.15), run as one serial sweep into a store."""
    folder, nets, images = tiny
    props = linf_properties(nets, images, [0, 1], [0.15])
    methods = [m for m in parse_methods("all") if m is not Method.BNB]
    path = folder / "store.sqlite"
    with ResultStore(path) as store:
        summary = run_sweep(gap_tasks(props, methods, 30.0), store, SweepSettings(progress=False))
        instances = load_instances(store)
    return path, summary, instances


def test_bound_invariants_on_random_nets(swept):
    _, summary, instances = swept
    assert summary.done == summary.total == 4 * 11 and len(instances) == 4
    for inst in instances:
        b = {m: r.bound for m, r in inst.runs.items()}
        pgd, exact = inst.runs[Method.PGD].upper, inst.runs[Method.MILP].upper   # margin at the MILP optimum
        assert reference(inst) == Reference(exact, "milp") and b[Method.MILP] <= exact
        assert b[Method.IBP] <= b[Method.CROWN] + TOL <= b[Method.ALPHA_CROWN] + 2 * TOL <= exact + 3 * TOL
        for m in (Method.LP, Method.LP_ALL, Method.SDP, Method.BM, Method.LIPSCHITZ):
            assert b[m] is not None and b[m] <= exact + TOL, (inst.label, m)
        assert inst.runs[Method.SMOOTHING].verdict != "proved" and b[Method.SMOOTHING] is None
        assert b[Method.LP] <= b[Method.LP_ALL] + TOL
        assert all(v is None or v <= pgd + TOL for v in b.values())
        for m in (Method.LP, Method.LP_ALL, Method.SDP):   # the network value at the relaxation optimum
            tight = inst.runs[m].tightness   # SDP skips rows its intermediate bounds already prove
            assert (tight is None and m is Method.SDP and inst.runs[m].proved) or tight >= b[Method.MILP]
    assert all(g.absolute >= 0 and g.reference.source == "milp" for g in gaps(instances))


def test_tables_from_the_swept_store(swept, tmp_path):
    path, _, instances = swept
    text = instance_table(instances)
    assert text.count("\n") == 1 + len(instances) and "(milp)" in text
    assert "| net0.onnx | 0.15 | lp-all | 2 |" in aggregate_table(instances)
    rows = (write_csv(instances, tmp_path / "i.csv").read_text().strip().splitlines())
    assert len(rows) == 1 + 4 * 11
    (eb0, eb1) = error_bounds(instances)
    assert eb0.images == 2 and eb0.test_error == 0.0
    for eb in (eb0, eb1):   # exact bounds sit between PGD's lower and every relaxation's upper bound
        assert eb.lower[Method.PGD] <= eb.lower[Method.MILP] <= eb.upper[Method.MILP] <= eb.upper[Method.IBP]


def _put(store, network, index, method, status=RunStatus.DONE, verdict="unknown", bound=None, upper=None,
         timed_out=False, eps=0.1, clean=1.0):
    key = RunKey(network, f"linf:h:{index}:{eps:g}:all", method.value, "{}")
    extra = {"study": "gap", "network": f"{network}.onnx", "property": "linf", "index": index, "eps": eps,
             "target": "all", "clean_margin": clean, "timed_out": timed_out, "tightness": None}
    store.put(make_record(key, status, verdict=verdict, bound=bound, upper=upper, seconds=1.0, extra=extra))


def test_reference_error_bounds_and_table1_from_a_store(tmp_path):
    anchors = tmp_path / "anchors.csv"
    anchors.write_text("network,onnx,eps,test_error_pct,lb_pgd_pct,lb_milp_pct,ub_milp_pct,ub_lp_all_pct,"
                       "ub_lp_greedy_pct\nX,A.onnx,0.1,2.0,10.0,11.0,20.0,30.0,40.0\n")
    with ResultStore(tmp_path / "s.sqlite") as store:
        _put(store, "A", 0, Method.PGD, bound=None, upper=2.0)
        _put(store, "A", 0, Method.MILP, verdict="proved", bound=1.4999, upper=1.5)       # exact: reference 1.5
        _put(store, "A", 0, Method.LP, verdict="proved", bound=0.5)
        _put(store, "A", 1, Method.PGD, verdict="falsified", upper=-1.0, clean=-0.5)      # misclassified
        _put(store, "A", 1, Method.MILP, bound=-3.0, upper=-1.0, timed_out=True)          # unfinished: PGD
        _put(store, "A", 1, Method.LP, status=RunStatus.TIMEOUT)
        instances = load_instances(store)
    by_index = {i.label.split("#")[1][0]: i for i in instances}
    assert reference(by_index["0"]).value == 1.5 and reference(by_index["1"]).source == "pgd"
    (g0, g1) = sorted(gaps(instances), key=lambda g: g.instance.label)
    assert g0.absolute == pytest.approx(1.0) and g0.relative == pytest.approx(1 / 1.5) and g1.absolute is None
    (eb,) = error_bounds(instances)
    assert (eb.test_error, eb.lower[Method.PGD], eb.lower[Method.MILP], eb.upper[Method.MILP],
            eb.upper[Method.LP]) == (0.5, 0.5, 0.0, 0.5, 0.5)
    from optcert.study.report import read_anchors

    line = table1(instances, read_anchors(anchors)).splitlines()[2]
    assert line.startswith("| A.onnx | 0.1 | 2 | 50.0 / 2.00 | 50.0 / 10.00 | 0.0 / 11.00 | 50.0 / 20.00 |")
    assert "50.0 / 40.00" in line   # our LP beside their LP-GREEDY


def test_bisection_brackets_a_threshold():
    certified, broken, history = bisect(lambda e: e <= 0.123, 0.5, 10)
    assert certified <= 0.123 < broken and broken - certified == pytest.approx(0.5 / 2**10)
    assert len(history) == 12
    assert bisect(lambda e: True, 0.5, 3)[:2] == (0.5, None)
    assert bisect(lambda e: False, 0.5, 3)[:2] == (None, 0.0)
    with pytest.raises(InvalidOptionError, match="steps"):
        Bisection(steps=0)


def test_minimum_distortion_orders_methods(tiny):
    _, nets, images = tiny
    prop = LinfProperty(nets[0], images, 0, 0.4)
    settings = Bisection(0.4, 6, 20.0)
    out = {m: run_distortion(prop, m.value, opts, settings) for m, opts in
           ((Method.IBP, {}), (Method.CROWN, {}), (Method.MILP, {"exact": False}), (Method.PGD, {}))}
    step = 0.4 / 2**6
    assert out[Method.IBP].bound <= out[Method.CROWN].bound + step <= out[Method.MILP].bound + 2 * step
    milp_broken = out[Method.MILP].upper or math.inf
    assert out[Method.MILP].bound <= min(milp_broken, out[Method.PGD].upper or math.inf)


def test_cli_runs_reports_and_rejects_bad_input(tiny, tmp_path, capsys):
    _, nets, images = tiny
    store, out = tmp_path / "s.sqlite", tmp_path / "rep"
    common = ["--store", str(store), "--out", str(out), "--plots", "png", "--no-progress"]
    assert main(["gap", nets[1], "--images", images, "--eps", "0.05,0.1", "--methods", "pgd,ibp,crown",
                 *common]) == 0
    assert main(["gap", nets[1], "--images", images, "--indices", "1", "--distortion", "--eps-max", "0.3",
                 "--steps", "3", "--methods", "ibp,pgd", *common]) == 0
    printed = capsys.readouterr().out
    assert "sweep: 12 runs" in printed and "Minimum distortion" in printed
    assert {p.name for p in out.iterdir()} >= {"gap.md", "instances.csv", "ladders.png", "gaps.png", "accuracy.png"}
    with ResultStore(store) as s:
        assert len(load_distortions(s)) == 2 and "lower (certified)" in distortion_table(load_distortions(s))
    assert main(["gap", "--report-only", *common]) == 0
    assert "0 done" not in capsys.readouterr().out
    for bad, code in ((["gap", nets[1], "--images", images, "--methods", "ibp,magic", "--eps", "0.1"], 7),
                      (["gap", nets[1], "--images", images], 2),                          # usage: no --eps
                      (["gap", "--report-only", "--store", str(tmp_path / "none.sqlite")], 3),  # no such store
                      (["gap", nets[1], "--images", images, "--eps", "0.1", "--indices", "9"], 6),  # no image 9
                      (["gap", nets[1], "--images", images, "--eps", "0.1", "-o", "lp.colour=red"], 7)):
        assert main(bad) == code, bad
        assert capsys.readouterr().err.startswith("optcert: error:")


def test_method_overrides_are_validated_up_front():
    assert split_overrides({"lp-all.backend": "highs"}) == {Method.LP_ALL: {"backend": "highs"}}
    with pytest.raises(InvalidOptionError, match="METHOD.KEY"):
        split_overrides({"backend": "highs"})
    with pytest.raises(InvalidOptionError, match="unknown method"):
        parse_methods("lp,foo")
