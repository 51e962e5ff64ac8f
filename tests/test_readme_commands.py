"""Issue 15, defect 6: every `optcert ...` command in the README runs (exit 0), on small fixtures that
stand in for its placeholder files, with small time limits and index ranges. A README command that
drifts from the code fails here."""
from __future__ import annotations

import csv
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from optcert.cli import main
from tests.builders import DATA
from tests.training.conftest import synthetic, write_idx

README = Path(__file__).resolve().parents[1] / "README.md"
NETWORKS = ("NET.onnx", "NOR.onnx", "ADV.onnx", "NOR_MLP_B.onnx", "mnist-net_256x2.onnx")
PROPERTIES = ("PROP.vnnlib", "p1.vnnlib", "p2.vnnlib", "prop_0_0.03.vnnlib", "prop_1_0.03.vnnlib")
IMAGES = ("images.npz", "imgs.npz", "mnist_test_30.npz")
#: Shrink what a command does, never what it means: fewer images, shorter limits.
SHRINK = [(r"--indices 0-29", "--indices 0-1"), (r"--timeout \d+", "--timeout 10"),
          (r"(optcert vnncomp \S+ \S+ \S+) \d+", r"\1 20"), (r"--steps 8", "--steps 3"),
          (r"--max-timeout 60", "--max-timeout 10"), (r"--limit 5", "--limit 2"),
          (r"--epochs 40", "--epochs 1 --train 0-199 --evaluate 200-299"),
          (r"--data \.\./shared/datasets/mnist", "--data mnist"), (r"--indices 0-19", "--indices 0-1")]


def readme_commands() -> list[str]:
    """Every `optcert` command line of the README's sh blocks (continuations joined, comments cut)."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("optcert "):
                found.append(" ".join(line.split()))
    return found


def _fixtures(folder: Path) -> None:
    write_idx(folder / "mnist", *synthetic(300))        # `optcert train --data`
    (folder / "zoo").mkdir()                            # what the README's train command writes
    shutil.copy(DATA / "tiny.onnx", folder / "zoo" / "crown-ibp_mlp-100x2_eps0.1_s0.onnx")
    for name in NETWORKS:
        shutil.copy(DATA / "tiny.onnx", folder / name)
    for name in PROPERTIES:
        shutil.copy(DATA / "tiny_ok.vnnlib", folder / name)
    rng = np.random.default_rng(0)
    for name in (*IMAGES, "zoo/eval.npz"):
        np.savez(folder / name, X=rng.uniform(0.2, 0.8, (30, 3)), y=np.zeros(30, dtype=int))
    rows = [["NET.onnx", "PROP.vnnlib", "20"], ["NET.onnx", "p1.vnnlib", "20"], ["NET.onnx", "p2.vnnlib", "20"]]
    for csv_path in (folder / "instances.csv", folder / "mnistfc" / "instances.csv"):
        csv_path.parent.mkdir(exist_ok=True)
        if csv_path.parent != folder:
            for name in ("NET.onnx", "PROP.vnnlib", "p1.vnnlib", "p2.vnnlib"):
                shutil.copy(folder / name, csv_path.parent / name)
        with csv_path.open("w", newline="") as f:
            csv.writer(f).writerows(rows)
    with (folder / "anchors_table1.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["network", "onnx", "eps", "test_error_pct", "lb_pgd_pct", "ub_lp_all_pct"])
        writer.writerow(["Nor-MLP-B", "NOR.onnx", "0.02", "1.0", "2.0", "5.0"])


def test_the_readme_has_commands_for_every_subcommand():
    used = {c.split()[1] for c in readme_commands()}
    from optcert.cli.main import COMMANDS

    assert set(COMMANDS) - {"sweep-status", "demo"} <= used, set(COMMANDS) - used


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs(command, tmp_path, monkeypatch, capsys):
    _fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    for pattern, replacement in SHRINK:
        command = re.sub(pattern, replacement, command)
    if "--dask" in command:
        pytest.importorskip("distributed")
    argv = shlex.split(command)[1:]
    if argv[0] == "verify" and "--timeout" not in argv:   # the fixture net has a tie: no engine decides it
        argv += ["--timeout", "5"]
    if argv[:2] == ["gap", "--report-only"]:         # reports what an earlier gap run stored
        assert main(["gap", "NET.onnx", "--images", "imgs.npz", "--eps", "0.02", "--methods", "ibp",
                     "--store", "gap.sqlite", "--out", "gap-report/", "--no-progress", "--plots", "none"]) == 0
    if argv[0] == "check":                            # checks what an earlier verify stored
        assert main(["verify", "NET.onnx", "PROP.vnnlib", "--engine", "crown", "--json", argv[1], "-q"]) == 0
    if "--report-only" in argv and argv[0] == "run":
        assert main(["run", "instances.csv", "--out", "results/", "--engine", "interval", "--no-progress"]) == 0
    code = main(argv)
    assert code == 0, (command, capsys.readouterr().err)
