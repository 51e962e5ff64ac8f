"""Issue 15, item 7: `optcert run instances.csv` — one result file per instance, a summary with
agreement and wrong answers flagged, resumable after a kill, both CSV layouts, bad rows refused
before anything runs."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optcert.batch.instances import read_instances
from optcert.batch.summary import Row, summary_markdown
from optcert.cli import main
from optcert.errors import UnreadableFileError
from optcert.result import Result
from tests.builders import DATA

TINY, PROP = DATA / "tiny.onnx", DATA / "tiny_ok.vnnlib"


def _csv(tmp_path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    (tmp_path / "nets").mkdir(exist_ok=True)
    for src in (TINY, PROP):
        target = tmp_path / "nets" / src.name
        if not target.exists():
            target.write_bytes(src.read_bytes())
    path = tmp_path / "instances.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def test_run_writes_results_and_a_summary_and_flags_wrong_answers(tmp_path, capsys):
    rel = ["nets/tiny.onnx", "nets/tiny_ok.vnnlib"]
    path = _csv(tmp_path, [[*rel, "10", "unsat"], [*rel, "10", "sat"], [*rel, "10"]])
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--engine", "bnb", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "3 instances" in printed and "**1 wrong**" in printed
    results = sorted((out / "results").glob("*.json"))
    assert len(results) == 3 and len(list((out / "results").glob("*.txt"))) == 3
    verdicts = {Result.from_json(p.read_text()).verdict.value for p in results}
    assert verdicts == {"proved"}                                   # tiny_ok holds
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["agreement"] for r in rows] == ["ok", "WRONG", "new"]
    md = (out / "summary.md").read_text()
    assert md.index("**WRONG**") < md.index("| ok |")             # wrong answers listed first, in bold
    # a second run does nothing new and reports the same
    assert main(["run", str(path), "--out", str(out), "--engine", "bnb", "--no-progress"]) == 0
    assert "3 already done" in capsys.readouterr().out


def test_header_layout_and_checks_before_running(tmp_path):
    path = _csv(tmp_path, [["x", "nets/tiny.onnx", "nets/tiny_ok.vnnlib", "30", "unsat"]],
                header=["instance", "onnx", "vnnlib", "timeout_s", "expected"])
    (inst,) = read_instances(path)
    assert inst.expected == "proved" and inst.timeout == 30 and inst.onnx.name == "tiny.onnx"
    for bad, words in (([["nets/none.onnx", "nets/tiny_ok.vnnlib", "5"]], "no such file"),
                       ([["nets/tiny.onnx", "nets/tiny_ok.vnnlib", "zero"]], "not a number"),
                       ([["nets/tiny.onnx", "nets/tiny_ok.vnnlib", "0"]], "positive"),
                       ([["nets/tiny.onnx", "nets/tiny_ok.vnnlib", "5", "maybe"]], "expected verdict"),
                       ([["nets/tiny.onnx"]], "onnx and a vnnlib"),
                       ([["nets", "nets/tiny_ok.vnnlib", "5"]], "is a directory")):
        with pytest.raises(UnreadableFileError, match=words):
            read_instances(_csv(tmp_path, bad))


def test_summary_marks_a_box_centre_violation_and_counts():
    from optcert.batch.instances import BatchInstance

    inst = BatchInstance("a", Path("n.onnx"), Path("p.vnnlib"), 5.0, "falsified", 1)
    md = summary_markdown([Row(inst, "done", "falsified", 0.5, False, True, "r")], "t")
    assert "falsified (at the box centre)" in md and "no perturbation needed" in md and "1 agree" in md


def test_a_killed_run_resumes_where_it_stopped(tmp_path):
    rel = ["nets/tiny.onnx", "nets/tiny_ok.vnnlib"]
    path = _csv(tmp_path, [[*rel, "10", "unsat"]] * 6)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "optcert.cli", "run", str(path), "--out", str(out), "--engine", "interval",
            "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "results").glob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "results").glob("*.json")))
    assert 2 <= done_before
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert len(list((out / "results").glob("*.json"))) == 6
    assert "6 instances: 0 solved" in rerun.stdout or "6 instances" in rerun.stdout
    first = rerun.stdout.splitlines()[0]
    skipped = int(first.split(",")[1].split()[0])
    assert skipped >= done_before - 1      # at most the run in flight at the kill is redone
