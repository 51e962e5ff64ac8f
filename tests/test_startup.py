"""Issue 15, item 9: start-up stays cheap because heavy packages are imported only when used. Not
timed (bench/startup.py measures the seconds): these check *what* each path imports, in a fresh
interpreter."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.builders import DATA

HEAVY = ("numpy", "scipy", "networkx", "onnx", "torch", "matplotlib", "highspy", "dask")


def _loaded(code: str) -> set[str]:
    probe = (f"import sys\n{code}\n"
             f"print('@@' + __import__('json').dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout.rsplit("@@", 1)[1]))


def test_import_optcert_imports_nothing_heavy():
    assert _loaded("import optcert") == set()


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["verify", "--help"], ["run", "--help"]])
def test_help_imports_no_solver_and_no_torch(argv):
    loaded = _loaded(f"from optcert.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass")
    assert not loaded & {"torch", "highspy", "matplotlib", "dask", "onnx"}, loaded
    if argv in (["--help"], ["--version"]):
        assert loaded == set(), loaded


def test_an_interval_verdict_never_imports_torch():
    loaded = _loaded(f"from optcert.cli import main\nmain(['verify', {str(DATA / 'tiny.onnx')!r}, "
                     f"{str(DATA / 'tiny_ok.vnnlib')!r}, '--engine', 'interval', '-q'])")
    assert "torch" not in loaded and "matplotlib" not in loaded, loaded


def test_the_thread_limit_reaches_torch_loaded_later():
    code = ("from optcert.threads import limit_threads\nlimit_threads(1)\nimport sys\n"
            "assert 'torch' not in sys.modules\nimport torch\nassert torch.get_num_threads() == 1, "
            "torch.get_num_threads()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_api_names_are_there_and_verify_is_the_function():
    code = ("import optcert.verify\nfrom optcert import verify, Result, Verdict, load_network, __version__\n"
            "import optcert\nassert callable(verify) and optcert.verify is verify\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_a_portfolio_verdict_decided_by_bounding_imports_no_scipy_and_no_lowering():
    """The engines not asked for, the lowerings and scipy.sparse load only when used (0.3 s of
    every start-up): a VNN-COMP instance decided by bounding needs none of them."""
    code = (f"import optcert.vnncomp as v, tempfile, os\n"
            f"r = v.run_instance({str(DATA / 'tiny.onnx')!r}, {str(DATA / 'tiny_ok.vnnlib')!r}, "
            f"os.path.join(tempfile.mkdtemp(), 'r.txt'), 30)\n"
            f"assert r.verdict.value == 'proved', r.reason\n"
            f"assert not any(m.startswith(('optcert.lowerings', 'optcert.engines.linear', 'optcert.engines.sdp')) "
            f"for m in sys.modules), sorted(m for m in sys.modules if m.startswith('optcert.'))")
    assert "scipy" not in _loaded(code)


def test_an_instance_proved_at_the_root_never_imports_torch():
    """engines/quick.py: the checker's numpy CROWN proves the easy case before torch is imported (a
    second of start-up), and `optcert check` re-derives exactly that proof."""
    code = (f"import optcert.vnncomp as v, tempfile, os\n"
            f"from optcert.checking.check import check_result\n"
            f"from optcert.ir.load import load_network\nfrom optcert.spec.vnnlib import read_vnnlib\n"
            f"r = v.run_instance({str(DATA / 'tiny.onnx')!r}, {str(DATA / 'tiny_ok.vnnlib')!r}, "
            f"os.path.join(tempfile.mkdtemp(), 'r.txt'), 30)\n"
            f"assert r.verdict.value == 'proved' and r.certificate['decided_by'] == ['crown'], r.certificate\n"
            f"p = read_vnnlib({str(DATA / 'tiny_ok.vnnlib')!r}).problem(load_network({str(DATA / 'tiny.onnx')!r}))\n"
            f"report = check_result(r, p)\nassert report.status.value == 'valid', report.summary()\n")
    assert "torch" not in _loaded(code)


def test_an_instance_falsified_by_sampling_never_imports_torch(tmp_path):
    """engines/quick.py: a sampled input that passes the counterexample re-check ends the run
    FALSIFIED before torch is imported; `optcert check` accepts the counterexample."""
    text = (DATA / "tiny_ok.vnnlib").read_text().replace("(assert (<= Y_0 -1.0))", "(assert (<= Y_0 1000.0))")
    prop = tmp_path / "tiny_sat.vnnlib"
    prop.write_text(text)
    code = (f"import optcert.vnncomp as v, tempfile, os\n"
            f"from optcert.checking.check import check_result\n"
            f"from optcert.ir.load import load_network\nfrom optcert.spec.vnnlib import read_vnnlib\n"
            f"r = v.run_instance({str(DATA / 'tiny.onnx')!r}, {str(prop)!r}, "
            f"os.path.join(tempfile.mkdtemp(), 'r.txt'), 30)\n"
            f"assert r.verdict.value == 'falsified' and r.certificate['decided_by'] == ['sampling'], r.certificate\n"
            f"p = read_vnnlib({str(prop)!r}).problem(load_network({str(DATA / 'tiny.onnx')!r}))\n"
            f"report = check_result(r, p)\nassert report.status.value == 'valid', report.summary()\n")
    assert "torch" not in _loaded(code)
