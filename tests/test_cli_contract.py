"""Issue 15, defects 2, 3 and 5 and their siblings: one exit-code table true for every code; output
paths checked before any work (exit 3) and a finished verdict never lost; standard output carries
only what optcert prints (no solver banner), checked with real subprocesses."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from optcert import errors as E
from optcert.cli import main
from optcert.cli.demo import EXAMPLES
from tests.builders import DATA

TINY = DATA / "tiny.onnx"
PROP = DATA / "tiny_ok.vnnlib"
IMAGES = DATA / "tiny_images.npz"
README = Path(__file__).resolve().parents[1] / "README.md"


def _cli(*argv: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optcert.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("optcert") and "Traceback" not in err, err
    return err


# ---- exit codes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["verify", TINY], "needs a property"),                                   # no property
    (["verify", TINY, "--image", IMAGES], "--image needs --eps"),
    (["verify", TINY, PROP, "--timeout", "0"], "must be positive"),
    (["verify", TINY, PROP, "--timeout", "-3"], "must be positive"),
    (["verify", TINY, PROP, "--threads", "0"], "at least 1"),
    (["verify", TINY, PROP, "--image", IMAGES, "--eps", "0.1"], "not both"),
    (["verify", DATA / "model.pt", PROP], "--input-shape"),                  # a .pt without its shape
    (["info", DATA / "model.pth"], "--input-shape"),
    (["demo", "--timeout", "0"], "must be positive"),
    (["gap", TINY, "--images", IMAGES, "--out", "/nonexistent-h15/never-created"], "--eps is required"),
    (["run", DATA / "x.csv", "--timeout", "nan"], "must be positive"),
])
def test_usage_errors_exit_2_with_one_line(argv, words, capsys):
    assert main([str(a) for a in argv]) == 2
    assert words in _one_line(capsys)


def test_every_exit_code_of_the_table(tmp_path, capsys, monkeypatch):
    """0, 1, 2, 3, 4, 5, 6, 7, 8 and 130 from real commands (9 is raised by lowerings only; its class
    carries the code)."""
    bad = DATA / "malformed"
    assert main(["verify", str(TINY), str(PROP), "-q"]) == 0
    cases = {2: ["verify", str(TINY)], 3: ["verify", str(tmp_path / "none.onnx"), str(PROP)],
             4: ["info", str(bad / "nan_weight.onnx")], 5: ["info", str(bad / "unknown_op.onnx")],
             6: ["verify", str(TINY), str(bad / "lo_gt_hi.vnnlib")],
             7: ["verify", str(TINY), str(PROP), "--engine", "magic"],
             8: ["verify", str(TINY), str(PROP), "--engine", "lp", "-o", "backend=mosek"]}
    for code, argv in cases.items():
        if code == 8:
            import solvers
            if solvers.available().get("mosek") and solvers.available()["mosek"].available:
                continue
        assert main(argv) == code, (code, argv)
        _one_line(capsys)
    assert E.LoweringError.exit_code == 9
    import optcert.cli.info as info

    def boom(args):
        raise RuntimeError("a bug")
    monkeypatch.setattr(info, "run", boom)
    assert main(["info", str(TINY)]) == 1 and "internal error" in _one_line(capsys)

    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(info, "run", interrupted)
    assert main(["info", str(TINY)]) == 130


def test_error_classes_and_the_readme_table_match_the_code_table():
    for cls in (E.UsageError, E.UnreadableFileError, E.InvalidModelError, E.UnsupportedOpError, E.InvalidSpecError,
                E.InvalidOptionError, E.BackendUnavailableError, E.LoweringError):
        assert cls.exit_code in E.EXIT_CODES
    readme = README.read_text()
    section = readme[readme.index("### Exit codes"):]
    section = section[:section.index("\n#")]
    listed = {int(code) for code in re.findall(r"^\|\s*(\d+)\s*\|", section, re.M)}
    assert listed == set(E.EXIT_CODES), listed


def test_directory_as_network_says_so(tmp_path, capsys):
    assert main(["verify", str(tmp_path), str(PROP)]) == 3
    assert "is a directory" in _one_line(capsys)
    assert main(["info", str(tmp_path)]) == 3
    assert "is a directory" in _one_line(capsys)


def test_version():
    proc = _cli("--version")
    from optcert.version import __version__
    assert proc.returncode == 0 and proc.stdout.strip() == f"optcert {__version__}"


def test_vnncomp_writes_a_result_file_on_every_failure(tmp_path, capsys):
    out = tmp_path / "r.txt"
    acas = EXAMPLES / "acasxu" / "ACASXU_run2a_2_1_batch_2000.onnx"
    prop = EXAMPLES / "acasxu" / "prop_2.vnnlib"
    for timeout in ("0", "nan", "-5"):
        out.unlink(missing_ok=True)
        assert main(["vnncomp", str(acas), str(prop), str(out), timeout]) == 2
        assert out.read_text() == "error\n"
        _one_line(capsys)
    out.unlink()
    assert main(["vnncomp", str(tmp_path / "no.onnx"), str(prop), str(out), "5"]) == 3
    assert out.read_text() == "error\n"
    assert main(["vnncomp", str(acas), str(prop), str(tmp_path / "no" / "r.txt"), "5"]) == 3   # unwritable
    assert "does not exist" in capsys.readouterr().err


# ---- output paths -----------------------------------------------------------------------------------
def _bad_outputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "afile").write_text("")
    return {"missing dir": tmp_path / "nonexistent" / "r.json", "a directory": tmp_path,
            "under a file": tmp_path / "afile" / "r.json"}


@pytest.mark.parametrize("flag", ["--json", "--vnncomp-result"])
def test_verify_checks_output_files_before_any_work(flag, tmp_path, capsys):
    missing_net = tmp_path / "not-there.onnx"          # if the output were checked late, this error would win
    for what, path in _bad_outputs(tmp_path).items():
        assert main(["verify", str(missing_net), str(PROP), flag, str(path)]) == 3, what
        err = _one_line(capsys)
        assert str(path) in err and "not-there" not in err, (what, err)


def test_other_commands_check_outputs_before_any_work(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    blocked = tmp_path / "afile" / "sub"
    missing = str(tmp_path / "missing.onnx")
    for argv in (["export", missing, str(PROP), "--out", str(blocked)],
                 ["gap", missing, "--images", str(IMAGES), "--eps", "0.1", "--store", str(tmp_path / "s"),
                  "--out", str(blocked)],
                 ["gap", missing, "--images", str(IMAGES), "--eps", "0.1", "--store", str(blocked / "s.sqlite")],
                 ["bench", missing, str(PROP), "--out", str(blocked)],
                 ["bench", missing, str(PROP), "--export-dir", str(blocked)],
                 ["bench", missing, str(PROP), "--store", str(blocked / "s.sqlite")],
                 ["run", str(tmp_path / "missing.csv"), "--out", str(blocked)]):
        assert main(argv) == 3, argv
        assert "afile" in _one_line(capsys), argv


def test_a_verdict_is_printed_even_when_writing_the_file_fails(tmp_path, capsys, monkeypatch):
    import optcert.outputs

    def full_disk(path, text):
        raise E.UnreadableFileError(f"{path}: cannot write (No space left on device)")
    monkeypatch.setattr(optcert.outputs, "write_text", full_disk)
    code = main(["verify", str(TINY), str(PROP), "--engine", "interval", "--json", str(tmp_path / "r.json"), "-q"])
    captured = capsys.readouterr()
    assert code == 3 and captured.out.strip() in ("proved", "unknown") and "No space left" in captured.err


# ---- standard output ---------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["lp", "milp"])
def test_quiet_stdout_is_the_verdict_alone_with_highs_running(engine):
    proc = _cli("verify", TINY, PROP, "--engine", engine, "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout in ("proved\n", "unknown\n", "falsified\n"), repr(proc.stdout)
    assert "HiGHS" not in proc.stdout


def test_highs_banner_never_reaches_stdout_from_python():
    code = ("import numpy as np, scipy.sparse as sp\n"
            "from optcert.forms import LinearProgram, Limits\n"
            "from solvers.highs import HighsBackend\n"
            "lp = LinearProgram(c=np.array([1.0]), A=sp.csr_matrix(np.ones((1, 1))), row_lo=np.array([1.0]),\n"
            "                   row_hi=np.array([2.0]), col_lo=np.array([0.0]), col_hi=np.array([5.0]))\n"
            "print('value', HighsBackend().solve(lp, Limits()).objective)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "value 1.0\n", repr(proc.stdout)


def test_library_writes_to_fd1_go_to_stderr_during_a_command(tmp_path):
    """Any C library writing to fd 1 while a command runs (Gurobi licence lines, solver logs) lands on stderr."""
    plugin = tmp_path / "noisy.py"
    plugin.write_text("import os\nimport optcert.cli.info as info\nreal = info.run\n"
                      "def run(args):\n    os.write(1, b'LIBRARY NOISE\\n')\n    return real(args)\n"
                      "info.run = run\n")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import noisy\n"
            f"from optcert.cli import main; sys.exit(main(['info', {str(TINY)!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "LIBRARY NOISE" not in proc.stdout and "LIBRARY NOISE" in proc.stderr
    assert "neurons" in proc.stdout


def test_solvers_listing_stdout_has_only_optcert_lines():
    """Probing every backend (licence checks included) leaves stdout to optcert's table."""
    proc = _cli("solvers")
    assert proc.returncode == 0, proc.stderr
    assert all(re.match(r"^  (yes|no ) {2}\S", line) for line in proc.stdout.splitlines()), proc.stdout
