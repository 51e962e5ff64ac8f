"""Export the lowered problems of a verification problem, so any MILP/LP solver can be run on them.

For case k of the problem and violation clause j of that case (an ALL case has one clause per
row, an ANY case one clause holding all rows), `<name>-case<k>-clause<j>.<format>` holds

    min over the case box of  max_{i in clause} m̃_i(x)

as the exact big-M MILP (`FormKind.MILP`) or the LP triangle relaxation (`FormKind.LP`, a lower
bound), built with pre-activation bounds from `bounds` (IBP, CROWN or alpha-CROWN: all certified).
m̃ are the case's margins with the spec folded into the last layer; they differ from the true
margins by at most the per-row `fold_error` recorded in the sidecar. The clause is violated
somewhere in the box iff the true minimum is ≤ 0. Objectives are always minimised.

Files are written by HiGHS's own writer (`solvers.highs.write_model`, free MPS or CPLEX LP).
HiGHS keeps the objective constant c0 in both formats (MPS: as minus the right-hand side of the
objective row, which some readers ignore; LP: a constant term); `index.json` records c0 anyway,
with the sizes, clause rows and bound method of every file. HiGHS writes numbers to 15
significant digits, so the files are for benchmarking solvers: certificates come from optcert's
own engines, which use the in-memory forms. Columns and rows carry the lowering's names ("x_3",
"z1_0", "a1_0", "t_max"; rows "affine1_0", "relu_on1_0", ...): an LP-format reader numbers columns
by first appearance, so identify them by name. `index.json` describes the latest export into
its directory.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TypeVar

import numpy as np

from .bounds import BoundMethod, compute_bounds
from .compiled import CompiledCase, compile_problem
from .errors import InvalidOptionError, UnreadableFileError
from .forms import LinearProgram, Lowered
from .lowerings import Objective, lower_lp, lower_milp
from .spec import VerificationProblem

INDEX = "index.json"


class FormKind(Enum):
    """Which lowering to export: the exact big-M MILP or the LP triangle relaxation."""

    MILP = "milp"
    LP = "lp"


class ExportFormat(Enum):
    """File format (HiGHS writes both); the value is the file suffix."""

    MPS = "mps"
    LP = "lp"


_LOWER = {FormKind.MILP: lower_milp, FormKind.LP: lower_lp}
E = TypeVar("E", bound=Enum)


def parse_choice(kind: type[E], value: E | str, what: str) -> E:
    """`value` as a member of `kind` (a member or its string value); InvalidOptionError otherwise."""
    if isinstance(value, kind):
        return value
    for member in kind:
        if str(value).lower() == member.value:
            return member
    raise InvalidOptionError(f"{what} {value!r} is unknown; expected one of: "
                             f"{', '.join(m.value for m in kind)}")


@dataclass(frozen=True, eq=False)
class ClauseForm:
    """The lowered problem of clause `clause` (row indices) of case `case`."""

    case: CompiledCase
    index: int
    clause: tuple[int, ...]
    lowered: Lowered[LinearProgram]


def lower_problem(problem: VerificationProblem, form: FormKind | str,
                  bounds: BoundMethod | str = BoundMethod.CROWN) -> list[ClauseForm]:
    """One lowered problem per (case, clause), in case then clause order (see module docstring)."""
    form = parse_choice(FormKind, form, "form")
    bounds = parse_choice(BoundMethod, bounds, "bound method")
    out = []
    for cc in compile_problem(problem):
        layer_bounds = compute_bounds(cc.net, [cc.ibp], bounds)[0]
        for j, clause in enumerate(cc.case.clauses()):
            out.append(ClauseForm(cc, j, clause, _LOWER[form](cc.net, layer_bounds, Objective(rows=clause))))
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


def export_problem(problem: VerificationProblem, form: FormKind | str, fmt: ExportFormat | str,
                   out_dir: str | Path, bounds: BoundMethod | str = BoundMethod.CROWN) -> list[Path]:
    """Write one model file per (case, clause) of `problem` into `out_dir`, plus `index.json`.

    Returns the model files' paths (the sidecar is `out_dir / "index.json"`). An unknown form,
    format or bound method raises InvalidOptionError; an output directory that cannot be created
    or written, UnreadableFileError naming it. Existing files of the same names are overwritten.
    """
    form = parse_choice(FormKind, form, "form")
    fmt = parse_choice(ExportFormat, fmt, "format")
    bounds = parse_choice(BoundMethod, bounds, "bound method")
    out_dir = _writable_dir(Path(out_dir))
    from solvers.highs import write_model

    stem = file_stem(problem.name)
    paths, entries = [], []
    for cf in lower_problem(problem, form, bounds):
        path = out_dir / f"{stem}-case{cf.case.index}-clause{cf.index}.{fmt.value}"
        write_model(cf.lowered.form, path, row_names(cf.lowered), name=path.stem)
        paths.append(path)
        entries.append(_entry(path, cf))
    index = {"problem": problem.name, "network": problem.network.name, "form": form.value,
             "lowering": entries[0]["lowering"], "format": fmt.value, "bounds": bounds.value,
             "objective": "minimise; value = max over the clause rows of the folded margins",
             "offset_in_file": True, "digits": 15, "files": entries}
    _write_text(out_dir / INDEX, json.dumps(index, indent=1) + "\n")
    return paths


def _entry(path: Path, cf: ClauseForm) -> dict:
    lp = cf.lowered.form
    return {"file": path.name, "case": cf.case.index, "clause": cf.index, "rows": list(cf.clause),
            "labels": [cf.case.case.spec.labels[i] for i in cf.clause], "combine": cf.case.case.combine.value,
            "lowering": cf.lowered.info["kind"], "c0": lp.c0, "n_columns": lp.n_cols, "n_rows": lp.n_rows,
            "n_integers": int(np.count_nonzero(lp.integer)), "n_nonzeros": int(lp.A.nnz),
            "fold_error": [float(cf.case.fold_error[i]) for i in cf.clause]}


def _writable_dir(path: Path) -> Path:
    """`path`, created if needed; UnreadableFileError naming it when it cannot be written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = err.strerror or err
        raise UnreadableFileError(f"{path}: cannot create the output directory ({reason})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UnreadableFileError(f"{path}: the output directory is not writable")
    return path


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot write ({err.strerror or err})") from None
