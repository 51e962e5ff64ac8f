"""Solver-matrix results: a results-store memo (`StoreMemo`), the markdown report, and
matrix.csv / matrix.md / profile.png written and read back."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from optcert.benchmarking.solver_matrix import Cell, Instance, Lowering, MatrixSettings
from optcert.errors import UnreadableFileError
from optcert.forms import SolveStatus as S

FILES = ("matrix.csv", "matrix.md", "profile.png")


class StoreMemo:
    """`solver_matrix.CellMemo` over a `ResultStore` (module doc)."""

    def __init__(self, store, settings: MatrixSettings):
        self.store, self.settings = store, settings

    def key(self, inst: Instance, lowering: Lowering, backend: str):
        from optcert.sweeps.store import RunKey, canonical_options

        options = canonical_options({**self.settings.key_options(), "case": inst.case, "rows": list(inst.rows)})
        network = inst.network_id or f"fingerprint:{inst.problem.network.fingerprint()}"
        return RunKey(network, inst.prop_id or f"problem:{inst.problem.name}", f"{backend}:{lowering.value}", options)

    def get(self, inst: Instance, lowering: Lowering, backend: str) -> Cell | None:
        key = self.key(inst, lowering, backend)
        if not self.store.has(key):
            return None
        record = next(r for r in self.store.records(key.method, key.network) if r.key == key)
        return cell_from_row({**record.extra_dict(), "instance": inst.name})

    def put(self, inst: Instance, lowering: Lowering, backend: str, cell: Cell) -> None:
        from optcert.sweeps.store import RunStatus, make_record

        if not cell.ran:
            return
        status = (RunStatus.TIMEOUT if cell.status in (S.TIME_LIMIT, S.ITERATION_LIMIT) else
                  RunStatus.FAILED if cell.status in (S.ERROR, S.NUMERICAL) else RunStatus.DONE)
        verdict = "" if status is not RunStatus.DONE else (
            "proved" if cell.certified is not None and cell.certified > 0 else "unknown")
        self.store.put(make_record(self.key(inst, lowering, backend), status, verdict=verdict, bound=cell.certified,
                                   upper=cell.objective, seconds=cell.seconds, reason=cell.message,
                                   extra=cell.as_row()))


def cell_from_row(row: dict) -> Cell:
    """Inverse of `Cell.as_row` (also from the strings of a CSV row)."""
    def num(v):
        return None if v in (None, "", "None") else float(v)
    return Cell(row["instance"], Lowering(row["lowering"]), row["backend"], S(row["status"]),
                float(row["seconds"]), num(row["objective"]), num(row["solver_bound"]), num(row["certified"]),
                row["trust"], float(row["lower_seconds"]), float(row["certify_seconds"]), row["size"], row["message"])


# ---- report --------------------------------------------------------------------------------
_COLUMNS = ("instance", "lowering", "backend", "status", "seconds", "objective", "solver_bound", "certified",
            "trust", "lower_seconds", "certify_seconds", "size")


def _geomean(values: list[float]) -> float | None:
    return float(np.exp(np.mean(np.log(values)))) if values else None


def markdown_report(cells: Sequence[Cell], title: str = "Solver matrix") -> str:
    """The cells, a per-pair summary and the profile values ρ(1), ρ(2), ρ(10), ρ(∞) as markdown."""
    from optcert.benchmarking.profiles import grouped_profiles
    from optcert.outputs import markdown_table

    rows = [[c.instance, c.lowering.value, c.backend, c.label(), c.seconds if c.ran else None, c.objective,
             c.solver_bound, c.certified, c.trust, c.lower_seconds, c.certify_seconds if c.ran else None, c.size]
            for c in cells]
    summary = []
    for pair in dict.fromkeys(c.pair for c in cells):
        mine = [c for c in cells if c.pair == pair]
        ran = [c for c in mine if c.ran]
        summary.append([pair, len(mine), sum(c.solved for c in mine), len(mine) - len(ran),
                        sum(c.seconds for c in ran), _geomean([c.seconds for c in mine if c.solved])])
    profile = []
    for lowering, prof in grouped_profiles(cells, lambda c: c.lowering.value).items():
        values = np.array([prof.rho(t) for t in (1.0, 2.0, 10.0, math.inf)]).T
        profile += [[f"{lowering}:{b}", *map(float, v)] for b, v in zip(prof.solvers, values)]
    return "\n\n".join([
        f"# {title}",
        markdown_table(["instance", "lowering", "backend", "status", "solve s", "objective", "solver bound",
                  "certified margin ≥", "trust", "lower s", "certify s", "size"], rows),
        "## Per pair (solved = optimal/infeasible; geo-mean over solved runs)",
        markdown_table(["pair", "runs", "solved", "unavailable", "total solve s", "geo-mean solved s"], summary),
        "## Performance profiles (Dolan & Moré 2002): share of instances within τ × the fastest",
        markdown_table(["pair", "ρ(1)", "ρ(2)", "ρ(10)", "ρ(∞)"], profile)])


def write_report(cells: Sequence[Cell], out_dir: Path, title: str = "Solver matrix") -> list[Path]:
    """matrix.csv (every field of every cell), matrix.md and profile.png in `out_dir` (the plot only
    when matplotlib, the `plot` extra, is installed)."""
    from optcert.benchmarking.profiles import grouped_profiles, plot_profiles
    from optcert.outputs import plotting_available, writable_dir

    out_dir = writable_dir(Path(out_dir))
    paths = [out_dir / name for name in FILES]
    with open(paths[0], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(Cell.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(c.as_row() for c in cells)
    paths[1].write_text(markdown_report(cells, title) + "\n")
    if not plotting_available():
        return paths[:2]
    plot_profiles(grouped_profiles(cells, lambda c: c.lowering.value), paths[2], title)
    return paths


def read_cells(path: Path) -> list[Cell]:
    """The cells of a matrix.csv written by `write_report`."""
    try:
        return [cell_from_row(row) for row in csv.DictReader(open(path))]
    except (OSError, KeyError, ValueError) as err:
        raise UnreadableFileError(f"{path}: not a solver-matrix CSV ({err})") from None
