"""The zoo in the gap study: a net trained by `optcert.training` goes through `optcert gap` with
the Lipschitz and smoothing methods; smoothing stays out of the network verdict columns and has
its own; the per-regime zoo table and the L2 curves are made from the store and the cards."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from optcert.cli.main import main
from optcert.study.gap import METHODS, Kind, Method, gap_tasks, linf_properties, run_method
from optcert.study.report import error_bounds, load_instances, table1
from optcert.study.zoo import l2_curve, margin_gap_table, summarize, zoo_table
from optcert.sweeps.run import to_record
from optcert.sweeps.store import ResultStore, RunStatus
from optcert.sweeps.types import Outcome
from optcert.training import Architecture, Partition, Regime, Schedule, default_config, export, train
from optcert.training.data import load_mnist, write_images


@pytest.fixture(scope="module")
def zoo(mnist_dir, tmp_path_factory):
    """Two tiny trained nets (normal, IBP), their ONNX files and cards, and evaluation images."""
    folder = tmp_path_factory.mktemp("zoo")
    nets = []
    for regime in (Regime.NORMAL, Regime.IBP):
        cfg = default_config(regime, Architecture((8,)), eps=0.02, epochs=4, train=Partition(0, 300),
                             evaluate=Partition(300, 400))
        cfg = replace(cfg, lr=1e-2, schedule=Schedule(1, 2, cfg.schedule.kappa))
        onnx, card = export(train(cfg, mnist_dir), folder)
        nets.append((onnx, json.loads(card.read_text())))
    x, y = load_mnist(mnist_dir, Partition(300, 306), dtype=np.float64)
    return nets, write_images(folder / "eval.npz", x, y, Partition(300, 306)), folder


def test_gap_cli_takes_zoo_nets_with_lipschitz_and_smoothing(zoo, tmp_path, capsys):
    nets, images, _ = zoo
    options = ["-o", "pgd.restarts=8", "-o", "pgd.steps=30", "-o", "smoothing.n=300", "-o", "smoothing.n0=20"]
    code = main(["gap", str(nets[0][0]), "--images", str(images), "--indices", "0-1", "--eps", "0.01",
                 "--methods", "pgd,lipschitz,smoothing,bnb", *options, "--store", str(tmp_path / "s.sqlite"),
                 "--out", str(tmp_path / "rep"), "--plots", "png", "--timeout", "60", "--no-progress"])
    assert code == 0
    text = (tmp_path / "rep" / "gap.md").read_text()
    assert "lipschitz ub" in text and "smoothing: smoothed g certified %" in text
    assert (tmp_path / "rep" / "ladders.png").is_file()
    with ResultStore(tmp_path / "s.sqlite") as store:
        instances = load_instances(store)
    for inst in instances:
        smooth, lip, exact, pgd = (inst.runs[m] for m in (Method.SMOOTHING, Method.LIPSCHITZ, Method.BNB, Method.PGD))
        # never PROVED; FALSIFIED only by the clean check (the net misclassifies the image itself)
        assert smooth.verdict in ("unknown", "falsified") and smooth.smoothed and "covers_box" in smooth.smoothed[0]
        assert not (lip.proved and (exact.falsified or pgd.falsified))
        if lip.bound is not None and pgd.upper is not None:
            assert lip.bound <= pgd.upper
    assert all(Method.SMOOTHING not in eb.upper and Method.SMOOTHING not in eb.lower for eb in error_bounds(instances))


def test_zoo_summary_from_store_and_cards(zoo, tmp_path):
    nets, images, _ = zoo
    props = linf_properties([str(n) for n, _ in nets], str(images), range(3), [0.01])
    methods = [Method.PGD, Method.CROWN, Method.LIPSCHITZ, Method.SMOOTHING, Method.BNB]
    tasks = gap_tasks(props, methods, 60, {Method.SMOOTHING: {"n": 300, "n0": 20},
                                           Method.PGD: {"restarts": 8, "steps": 30}})
    with ResultStore(tmp_path / "z.sqlite") as store:
        for task in tasks:      # in this process (the sweep's child processes are tested elsewhere)
            store.put(to_record(task, Outcome(RunStatus.DONE, run_method(*task.args), "", 0.0)))
        instances = load_instances(store)
    cards = {n.name: c for n, c in nets}
    summaries = summarize(instances, cards)
    assert {s.regime for s in summaries} == {"normal", "ibp"}
    for s in summaries:
        assert s.images == 3 and s.decided is not None and s.exact is not None
        assert all(s.certified[m] <= s.exact + 1e-12 for m in s.certified)       # nothing certifies more than exact
        assert s.pgd is not None and s.exact <= s.pgd and s.pgd <= s.clean
        assert s.smoothed is not None
    table = zoo_table(summaries)
    assert "exact − LP" in table and "| ibp |" in table and "smoothed g %" in table
    assert "regime" in margin_gap_table(summaries)
    assert "smoothing: smoothed g certified %" in table1(instances)
    assert METHODS[Method.SMOOTHING].kind is Kind.SMOOTHED


def test_l2_curve():
    assert l2_curve([0.5, None, 1.0, 0.0], [True, True, False, True], [0.0, 0.5, 0.75]) == [0.25, 0.25, 0.0]


def test_exact_verdict_combines_milp_and_bnb(tmp_path):
    from optcert.study.zoo import exact_verdict
    from optcert.sweeps.store import RunKey, make_record

    def put(store, index, method, verdict, bound=None, upper=None):
        key = RunKey("N", f"linf:h:{index}:0.1:all", method.value, "{}")
        extra = {"study": "gap", "network": "N.onnx", "property": "linf", "index": index, "eps": 0.1,
                 "target": "all", "clean_margin": 1.0}
        store.put(make_record(key, RunStatus.DONE, verdict=verdict, bound=bound, upper=upper, seconds=1.0,
                              extra=extra))

    with ResultStore(tmp_path / "e.sqlite") as store:
        put(store, 0, Method.MILP, "unknown", -1.0, 2.0)     # MILP timed out, BnB proved
        put(store, 0, Method.BNB, "proved", 0.1)
        put(store, 1, Method.BNB, "falsified", None, -0.5)
        put(store, 2, Method.MILP, "unknown", -1.0, 2.0)     # nothing decided
        put(store, 2, Method.LP, "proved", 0.3)              # (cannot happen with a sound LP; counted anyway)
        put(store, 3, Method.LP, "unknown", -0.3)            # no exact method ran
        instances = load_instances(store)
    verdicts = sorted((i.label, exact_verdict(i)) for i in instances)
    assert [v for _, v in verdicts] == ["proved", "falsified", "open", None]
    (s,) = summarize(instances, {"N.onnx": {"regime": "normal", "architecture": [784, 8, 10]}})
    assert (s.exact, s.decided, s.arch, s.regime) == (0.25, 0.5, "784-8-10", "normal")
