"""Issue 15, defect 6 and item 8: help texts come from the registries the code parses, so they cannot
drift; `optcert engines` explains every option in one line; `index.json` states the digits the files
really have; the README states the defaults the code has."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from optcert.cli import main
from optcert.engines.registry import DEFAULT_ENGINE, ENGINES
from optcert.options import option_help
from optcert.solve.progressive import Tightening
from tests.builders import DATA

README = Path(__file__).resolve().parents[1] / "README.md"
TINY, PROP = DATA / "tiny.onnx", DATA / "tiny_ok.vnnlib"


def _help(capsys, *argv: str) -> str:
    assert main([*argv, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_export_help_lists_every_form_and_format_it_accepts(capsys):
    from optcert.benchmarking.export import ConicForm, ConicFormat, ExportFormat, FormKind

    text = _help(capsys, "export")
    for member in [*FormKind, *ConicForm, *ExportFormat, *ConicFormat, *Tightening]:
        assert member.value in text, member


def test_verify_help_lists_every_engine_and_the_default(capsys):
    text = _help(capsys, "verify")
    assert all(e.value in text for e in ENGINES) and f"default {DEFAULT_ENGINE.value}" in text
    assert all(t.value in text for t in Tightening)


def test_bounds_flags_accept_the_same_list_everywhere(tmp_path, capsys):
    for level in Tightening:
        assert main(["verify", str(TINY), str(PROP), "--engine", "lp", "--bounds", level.value, "-q",
                     "--timeout", "20"]) == 0, level
        out = str(tmp_path / level.value)
        assert main(["export", str(TINY), str(PROP), "--bounds", level.value, "--out", out]) == 0
    assert main(["bench", str(TINY), str(PROP), "--forms", "lp", "--backends", "highs", "--bounds", "lp-all",
                 "--timeout", "10"]) == 0
    for argv in (["verify", str(TINY), str(PROP), "--engine", "lp"], ["export", str(TINY), str(PROP), "--out",
                                                                          str(tmp_path / "x")],
                 ["bench", str(TINY), str(PROP), "--forms", "lp"]):
        assert main([*argv, "--bounds", "magic"]) == 7


def test_engines_explains_every_option_and_marks_the_default(capsys):
    for engine, entry in ENGINES.items():
        helps = option_help(entry.options)
        for f in dataclasses.fields(entry.options):
            assert len(helps[f.name]) >= 8, (engine.value, f.name, helps[f.name])
    assert main(["engines"]) == 0
    out = capsys.readouterr().out
    assert f"{DEFAULT_ENGINE.value} (default):" in out
    assert "-o restarts=" in out and "-o bounding=alpha-crown" in out


def test_engine_summaries_admit_every_verdict_an_engine_can_return():
    """An engine whose output can carry candidate inputs can return FALSIFIED: its summary says so."""
    for engine in ("lp", "milp", "sdp", "bm", "bnb", "attack"):
        assert "FALSIFIED" in ENGINES[engine_member(engine)].summary, engine


def engine_member(name):
    from optcert.engines.registry import engine_from
    return engine_from(name)


def test_index_json_states_the_digits_the_files_have(tmp_path):
    assert main(["export", str(TINY), str(PROP), "--out", str(tmp_path)]) == 0
    index = json.loads((tmp_path / "index.json").read_text())
    text = "".join(p.read_text() for p in tmp_path.glob("*.mps"))
    longest = max(len(m.replace(".", "").lstrip("0")) for m in re.findall(r"(?<![\w.])-?(\d+\.\d+)", text))
    assert index["digits"] == longest


def test_readme_states_the_defaults_the_code_has():
    from optcert.vnncomp import ENGINE

    text = README.read_text()
    assert f"The default engine of `verify` is `{DEFAULT_ENGINE.value}`; `vnncomp` and `run` use `{ENGINE}`." in text
    table = text[text.index("### Engines"):text.index("### How bounds stay sound")]
    listed = re.findall(r"^\| `([\w-]+)` \|", table, re.M)
    assert listed == [e.value for e in ENGINES]


@pytest.mark.parametrize("command", ["verify", "run", "vnncomp", "info", "engines", "solvers", "export", "gap", "bench",
                                     "sweep-status", "demo"])
def test_every_subcommand_has_help(command, capsys):
    assert len(_help(capsys, command)) > 40
