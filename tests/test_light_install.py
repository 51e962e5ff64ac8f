"""Issue 15, item 10: `pip install .` without extras is a working verifier — optional solvers, dask,
plotting and the Marabou oracle are named extras, and the code runs without them."""
from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np

from optcert.cli import main
from tests.builders import DATA

SETUP = Path(__file__).resolve().parents[1] / "setup.cfg"


def _requires() -> tuple[set[str], dict[str, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(SETUP)
    names = {line.split(">")[0].split("=")[0].split("[")[0].strip().lower()
             for line in cfg["options"]["install_requires"].splitlines() if line.strip()}
    return names, dict(cfg["options.extras_require"])


def test_optional_parts_are_extras_not_requirements():
    required, extras = _requires()
    assert not required & {"matplotlib", "dask", "gurobipy", "pyscipopt", "mosek", "maraboupy", "cvxpy"}
    assert {"plot", "distributed", "gurobi", "scip", "mosek", "marabou", "all", "dev"} <= set(extras)
    assert "pytest-xdist" in extras["dev"] and "matplotlib" in extras["plot"]
    assert {"highspy", "scs", "clarabel", "onnx", "numpy", "scipy"} <= required   # the embedded solvers


def test_gap_without_matplotlib_writes_tables_and_says_plots_were_skipped(tmp_path, capsys, monkeypatch):
    import optcert.outputs

    monkeypatch.setattr(optcert.outputs, "plotting_available", lambda: False)
    np.savez(tmp_path / "imgs.npz", X=np.full((2, 3), 0.5), y=np.array([0, 1]))
    assert main(["gap", str(DATA / "tiny.onnx"), "--images", str(tmp_path / "imgs.npz"), "--eps", "0.05",
                 "--methods", "ibp", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"),
                 "--no-progress"]) == 0
    assert "plots skipped" in capsys.readouterr().err
    assert (tmp_path / "r" / "gap.md").is_file() and not list((tmp_path / "r").glob("*.png"))
