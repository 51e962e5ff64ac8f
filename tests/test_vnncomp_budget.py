"""VNN-COMP budget accounting: the budget counts from where it started (the process start for an
`optcert vnncomp` process), the engine gets only what is left less the reserve, and a budget eaten
by loading still ends with a result file. Asserted on the arithmetic and on outcomes, not on speed."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from optcert.result import Verdict
from optcert.vnncomp import run_instance

EXAMPLES = Path(__file__).resolve().parents[1] / "optcert" / "examples" / "acasxu"
ACAS = EXAMPLES / "ACASXU_run2a_2_1_batch_2000.onnx"
HARD = EXAMPLES / "prop_1.vnnlib"      # unsat here, needs a search: not decided in a millisecond


def test_a_budget_already_spent_ends_with_a_timeout_file(tmp_path):
    out = tmp_path / "result.txt"
    result = run_instance(ACAS, HARD, out, 5.0, started=time.monotonic() - 4.9)
    assert result.verdict is Verdict.UNKNOWN and result.timed_out
    assert out.read_text() == "timeout\n"


def test_the_vnncomp_command_counts_from_process_start(tmp_path, monkeypatch):
    """Run as `optcert vnncomp` (argv says so), this process — started long before — has no budget
    left for a 3 s limit; called as main([...]) from another command it counts from the call."""
    from optcert.cli.main import main
    from optcert.vnncomp import process_age

    assert process_age() > 3.0          # pytest has been running for a while
    out = tmp_path / "result.txt"
    argv = ["vnncomp", str(ACAS), str(HARD), str(out), "3"]
    monkeypatch.setattr(sys, "argv", ["optcert", *argv])
    assert main(argv) == 0
    assert out.read_text() == "timeout\n"
    monkeypatch.setattr(sys, "argv", ["pytest"])
    assert main(["vnncomp", str(ACAS), str(EXAMPLES / "prop_2.vnnlib"), str(out), "30"]) == 0
    assert out.read_text().startswith("sat")
