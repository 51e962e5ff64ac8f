"""Export the lowered problems of a verification problem, so any MILP/LP solver can be run on them.

For case k of the problem and violation clause j of that case (an ALL case has one clause per
row, an ANY case one clause holding all rows), `<name>-case<k>-clause<j>.<format>` holds

    min over the case box of  max_{i in clause} m̃_i(x)

as the exact big-M MILP (`FormKind.MILP`) or the LP triangle relaxation (`FormKind.LP`, a lower
bound), built with pre-activation bounds from `bounds` (a `Tightening` level: IBP, CROWN, alpha-CROWN,
per-neuron LP — all certified — or per-neuron MILP, solver-trusted).
m̃ are the case's margins with the spec folded into the last layer; they differ from the true
margins by at most the per-row `fold_error` recorded in the sidecar. The clause is violated
somewhere in the box iff the true minimum is ≤ 0. Objectives are always minimised.

Files are written by HiGHS's own writer (`solvers.highs.write_model`, free MPS or CPLEX LP).
HiGHS keeps the objective constant c0 in both formats (MPS: as minus the right-hand side of the
objective row, which some readers ignore; LP: a constant term); `index.json` records c0 anyway,
with the sizes, clause rows and bound method of every file, and `digits`, the most significant
digits of any number in the files (measured on the files written; HiGHS 1.16 writes the shortest
decimal that reads back to the same double, up to 17 digits). The files are for benchmarking
solvers: certificates come from optcert's own engines, which use the in-memory forms. Columns and
rows carry the lowering's names ("x_3", "z1_0", "a1_0", "t_max"; rows "affine1_0", "relu_on1_0",
...): an LP-format reader numbers columns by first appearance, so identify them by name.
`index.json` describes the latest export into its directory.

`ConicForm.SDP` writes the full SDP relaxation (Raghunathan et al. 2018; `lowerings/sdp_full.py`)
of each spec row instead — one file per (case, row), `<name>-case<k>-row<i>.cbf|dat-s` — in CBF
or SDPA sparse format (`export_conic.py`, matrix variables kept as such). Its optimum is a lower
bound on the row's folded margin; for a clause of several rows, the clause minimum is at least
the largest of its rows' optima. SDPA files hold SDPA's dual form: their optimum is −(optimum − c0).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import cast

import numpy as np

from optcert.bounds import BoundMethod
from optcert.compiled import CompiledCase, compile_problem
from optcert.errors import InvalidOptionError
from optcert.forms import LinearProgram, Lowered
from optcert.lowerings import Objective, lower_lp, lower_milp
from optcert.options import parse_member
from optcert.outputs import writable_dir, write_text
from optcert.solve.progressive import Tightening, intermediate_bounds
from optcert.spec.problem import VerificationProblem

INDEX = "index.json"


class FormKind(Enum):
    """Which lowering to export: the exact big-M MILP or the LP triangle relaxation."""

    MILP = "milp"
    LP = "lp"


class ExportFormat(Enum):
    """File format (HiGHS writes both); the value is the file suffix."""

    MPS = "mps"
    LP = "lp"


class ConicForm(Enum):
    """Forms written as conic files (kept out of `FormKind`, whose members HiGHS writes)."""

    SDP = "sdp"


class ConicFormat(Enum):
    """Conic file formats (`export_conic.py`); `suffix` is the file extension."""

    CBF = "cbf"
    SDPA = "sdpa"

    @property
    def suffix(self) -> str:
        return "dat-s" if self is ConicFormat.SDPA else self.value


_LOWER = {FormKind.MILP: lower_milp, FormKind.LP: lower_lp}


def parse_form(value: FormKind | ConicForm | str) -> FormKind | ConicForm:
    """A linear (MILP/LP) or conic (SDP) form by member or name; InvalidOptionError otherwise."""
    return cast("FormKind | ConicForm", parse_member((FormKind, ConicForm), value, "form"))


def parse_format(value: ExportFormat | ConicFormat | str) -> ExportFormat | ConicFormat:
    """A file format (MPS/LP or CBF/SDPA) by member or name; InvalidOptionError otherwise."""
    return cast("ExportFormat | ConicFormat", parse_member((ExportFormat, ConicFormat), value, "format"))


@dataclass(frozen=True, eq=False)
class ClauseForm:
    """The lowered problem of clause `clause` (row indices) of case `case`."""

    case: CompiledCase
    index: int
    clause: tuple[int, ...]
    lowered: Lowered[LinearProgram]


def parse_bounds(value: Tightening | BoundMethod | str) -> Tightening | BoundMethod:
    """An intermediate-bound method: a `Tightening` level (the list `--bounds` offers everywhere) or,
    from Python, a `BoundMethod`; InvalidOptionError otherwise."""
    return cast("Tightening | BoundMethod", parse_member((Tightening, BoundMethod), value, "bound method"))


def lower_problem(problem: VerificationProblem, form: FormKind | ConicForm | str,
                  bounds: Tightening | BoundMethod | str = Tightening.CROWN) -> list[ClauseForm]:
    """One lowered problem per (case, clause), in case then clause order (see module docstring)."""
    kind = parse_form(form)
    bounds = parse_bounds(bounds)
    if not isinstance(kind, FormKind):
        raise InvalidOptionError(f"form {kind.value!r} is lowered per spec row, not per clause (see export_problem)")
    out = []
    for cc in compile_problem(problem):
        layer_bounds = intermediate_bounds(cc.net, cc.ibp, bounds)
        for j, clause in enumerate(cc.case.clauses()):
            out.append(ClauseForm(cc, j, clause, _LOWER[kind](cc.net, layer_bounds, Objective(rows=clause))))
    return out


def file_stem(name: str) -> str:
    """A problem name made safe as a file name ("acas:prop_1" → "acas_prop_1")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "problem"


def row_names(lowered: Lowered) -> list[str]:
    """Names group[i] for every row, from the lowering's row groups ([] if they miss a row)."""
    names = [""] * lowered.form.n_rows
    for group, rows in lowered.info.get("rows", {}).items():
        for i, r in enumerate(range(rows.start, rows.stop)):
            names[r] = f"{group}[{i}]"
    return names if all(names) else []


def export_problem(problem: VerificationProblem, form: FormKind | ConicForm | str,
                   fmt: ExportFormat | ConicFormat | str, out_dir: str | Path,
                   bounds: Tightening | BoundMethod | str = Tightening.CROWN) -> list[Path]:
    """Write one model file per (case, clause) of `problem` into `out_dir` (per (case, row) for
    `ConicForm.SDP`), plus `index.json`.

    Returns the model files' paths (the sidecar is `out_dir / "index.json"`). An unknown form,
    format or bound method raises InvalidOptionError; an output directory that cannot be created
    or written, UnreadableFileError naming it. Existing files of the same names are overwritten.
    """
    form = parse_form(form)
    fmt = parse_format(fmt)
    bounds = parse_bounds(bounds)
    if (form is ConicForm.SDP) != isinstance(fmt, ConicFormat):
        fits = "cbf or sdpa" if form is ConicForm.SDP else "mps or lp"
        raise InvalidOptionError(f"--form {form.value!r} cannot be written as --format {fmt.value!r}; use {fits}")
    out_dir = writable_dir(Path(out_dir))
    if isinstance(fmt, ConicFormat):
        return _export_sdp(problem, fmt, out_dir, bounds)
    from solvers.highs import write_model

    stem = file_stem(problem.name)
    paths, entries = [], []
    for cf in lower_problem(problem, form, bounds):
        path = out_dir / f"{stem}-case{cf.case.index}-clause{cf.index}.{fmt.value}"
        write_model(cf.lowered.form, path, row_names(cf.lowered), name=path.stem)
        paths.append(path)
        entries.append(_entry(path, cf))
    _write_index(out_dir, problem, form, fmt, bounds, entries, digits=max_significant_digits(paths),
                 objective="minimise; value = max over the clause rows of the folded margins")
    return paths


def max_significant_digits(paths: list[Path]) -> int:
    """The most significant digits of any number written in the files (measured, so `index.json`
    states what the solver's writer really did)."""
    digits = 0
    for path in paths:
        for mantissa in _NUMBER.findall(path.read_text()):
            digits = max(digits, len(mantissa.replace(".", "").lstrip("0")))
    return digits


_NUMBER = re.compile(r"(?<![\w.])[-+]?(\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])")


def _write_index(out_dir: Path, problem: VerificationProblem, form: Enum, fmt: Enum,
                 bounds: Tightening | BoundMethod, entries: list[dict], **extra) -> None:
    index = {"problem": problem.name, "network": problem.network.name, "form": form.value,
             "lowering": entries[0]["lowering"], "format": fmt.value, "bounds": bounds.value,
             "offset_in_file": True, **extra, "files": entries}
    write_text(out_dir / INDEX, json.dumps(index, indent=1) + "\n")


def _export_sdp(problem: VerificationProblem, fmt: ConicFormat, out_dir: Path,
                bounds: Tightening | BoundMethod) -> list[Path]:
    """One CBF/SDPA file per (case, spec row): the full SDP of that row (module docstring)."""
    from optcert.benchmarking.conic_files import write_cbf, write_sdpa
    from optcert.lowerings.quadratic import relu_qcqp
    from optcert.lowerings.sdp_full import lower_sdp

    write = write_cbf if fmt is ConicFormat.CBF else write_sdpa
    stem, paths, entries = file_stem(problem.name), [], []
    for cc in compile_problem(problem):
        layer_bounds = intermediate_bounds(cc.net, cc.ibp, bounds)
        for row in range(cc.case.spec.rows):
            form = lower_sdp(relu_qcqp(cc.net, layer_bounds, row).form).form
            path = out_dir / f"{stem}-case{cc.index}-row{row}.{fmt.suffix}"
            label = cc.case.spec.labels[row]
            write(form, path, comment=f"optcert: full SDP relaxation of {problem.name} case {cc.index} row "
                                      f"{row} ({label}); minimise")
            paths.append(path)
            entries.append({"file": path.name, "case": cc.index, "row": row, "label": label,
                            "lowering": "sdp_full", "c0": form.c0, "psd": list(form.psd), "n_zero": form.zero,
                            "n_nonneg": form.nonneg, "n_nonzeros": int(form.A.nnz),
                            "fold_error": float(cc.fold_error[row])})
    sense = "-(optimum - c0) (SDPA's dual form)" if fmt is ConicFormat.SDPA else "the optimum"
    _write_index(out_dir, problem, ConicForm.SDP, fmt, bounds, entries, digits=17,
                 objective=f"minimise the SDP relaxation of one folded spec row; file value = {sense}")
    return paths


def _entry(path: Path, cf: ClauseForm) -> dict:
    lp = cf.lowered.form
    return {"file": path.name, "case": cf.case.index, "clause": cf.index, "rows": list(cf.clause),
            "labels": [cf.case.case.spec.labels[i] for i in cf.clause], "combine": cf.case.case.combine.value,
            "lowering": cf.lowered.info["kind"], "c0": lp.c0, "n_columns": lp.n_cols, "n_rows": lp.n_rows,
            "n_integers": int(np.count_nonzero(lp.integer)), "n_nonzeros": int(lp.A.nnz),
            "fold_error": [float(cf.case.fold_error[i]) for i in cf.clause]}
