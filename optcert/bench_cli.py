"""`optcert bench`: the solver matrix (`solver_matrix.py`) on a fixed instance set, written as a
CSV, a markdown table and Dolan–Moré performance profiles (`profiles.py`).

Instances: VNN-LIB files of one network (`optcert bench NET PROP…`), a VNN-COMP instances.csv
(`--instances FILE [--limit N]`), or L∞ robustness (`NET --image F --indices 0,1 --eps 0.01,0.02
[--targets 3,5]`). `--rows worst` (the default) keeps, per property, the violation clause whose
CROWN-style bound (`--bounds`) is lowest; `--rows all` keeps every clause (every target).
`--out DIR` writes matrix.csv, matrix.md and profile.png; `--export-dir DIR` the lowered problems
(MPS, CBF, SDPA); `--store DB` records every finished cell in a results store (key: network
hash, property id, method "<backend>:<lowering>", options with the clause and the settings), and
a rerun with the same store reuses what is there. Unavailable cells are not stored.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from enum import Enum
from pathlib import Path
from typing import Sequence

import numpy as np

from .bounds import BoundMethod, compute_bounds
from .compiled import compile_case
from .errors import InvalidOptionError, UnreadableFileError
from .export import parse_choice
from .forms import SolveStatus as S
from .solver_matrix import Cell, Instance, Lowering, MatrixSettings, pairs, run_matrix
from .spec import VerificationProblem

NAME = "bench"
FILES = ("matrix.csv", "matrix.md", "profile.png")


class RowChoice(Enum):
    """Which clauses of a property become instances: every one, or the one with the lowest bound."""

    ALL = "all"
    WORST = "worst"


def clauses(problem: VerificationProblem, choice: RowChoice,
            bounds: BoundMethod = BoundMethod.CROWN) -> list[tuple[int, tuple[int, ...]]]:
    """(case, rows) of every violation clause or (WORST) only the one whose bound — the largest of
    its rows' lower bounds from `bounds` — is lowest: the clause most likely to be hard."""
    from .ir.layered import to_layered

    every = [(k, clause) for k, case in enumerate(problem.cases) for clause in case.clauses()]
    if choice is RowChoice.ALL:
        return every
    base, lowest = to_layered(problem.network), {}
    for k, case in enumerate(problem.cases):
        cc = compile_case(base, case, k)
        lower = compute_bounds(cc.net, [cc.ibp], bounds)[0].lower[-1]
        lowest.update({(k, c): float(np.max(lower[list(c)])) for c in case.clauses()})
    return [min(every, key=lambda kc: lowest[kc])]


def vnnlib_instances(network: Path, properties: Sequence[Path], choice: RowChoice = RowChoice.WORST,
                     bounds: BoundMethod = BoundMethod.CROWN, input_shape=None) -> list[Instance]:
    """Instances of VNN-LIB `properties` on the network file `network`."""
    from .io import load_network
    from .store import network_hash, vnnlib_property_id
    from .vnnlib import read_vnnlib

    net, out = load_network(network, input_shape), []
    for path in properties:
        problem = read_vnnlib(path).problem(net, name=f"{Path(network).stem}:{Path(path).stem}")
        for case, rows in clauses(problem, choice, bounds):
            name = f"{problem.name}[c{case}r{'+'.join(map(str, rows))}]"
            out.append(Instance(name, problem, case, rows, network_hash(network), vnnlib_property_id(path)))
    return out


def robustness_instances(network: Path, images: Path, indices: Sequence[int], eps: Sequence[float],
                         label: int | None = None, targets: Sequence[int] | None = None,
                         valid: tuple[float, float] = (0.0, 1.0), choice: RowChoice = RowChoice.WORST,
                         bounds: BoundMethod = BoundMethod.CROWN, input_shape=None) -> list[Instance]:
    """Instances of L∞ robustness of images `indices` of `images` at every radius in `eps`."""
    from .io import load_network, pick_image
    from .spec import robustness_problem
    from .store import linf_property_id, network_hash

    net, out = load_network(network, input_shape), []
    for index in indices:
        image, true = pick_image(images, index, label, net.n_inputs)
        others = [j for j in (range(net.n_outputs) if targets is None else targets) if j != true]
        for radius in eps:
            name = f"{Path(network).stem}:img{index}@{radius:g}"
            problem = robustness_problem(net, image, true, radius, valid, targets, name=name)
            for case, rows in clauses(problem, choice, bounds):
                target = others[rows[0]]
                out.append(Instance(f"{name}:t{target}", problem, case, rows, network_hash(network),
                                    linf_property_id(images, index, radius, target)))
    return out


def csv_instances(path: Path, limit: int | None = None, choice: RowChoice = RowChoice.WORST,
                  bounds: BoundMethod = BoundMethod.CROWN) -> list[Instance]:
    """Instances of the first `limit` rows of a VNN-COMP instances.csv (onnx, vnnlib, timeout;
    paths relative to the CSV's folder)."""
    try:
        rows = [r for r in csv.reader(open(path)) if r][:limit]
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot read ({err.strerror or err})") from None
    if any(len(r) < 2 for r in rows):
        raise UnreadableFileError(f"{path}: every row needs an onnx and a vnnlib column")
    out = []
    for onnx in dict.fromkeys(r[0] for r in rows):
        props = [path.parent / r[1] for r in rows if r[0] == onnx]
        out += vnnlib_instances(path.parent / onnx, props, choice, bounds)
    return out


class StoreMemo:
    """`solver_matrix.CellMemo` over a `ResultStore` (module doc)."""

    def __init__(self, store, settings: MatrixSettings):
        self.store, self.settings = store, settings

    def key(self, inst: Instance, lowering: Lowering, backend: str):
        from .store import RunKey, canonical_options

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
        from .store import RunStatus, make_record

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
    from .gap_report import markdown
    from .profiles import grouped_profiles

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
        markdown(["instance", "lowering", "backend", "status", "solve s", "objective", "solver bound",
                  "certified margin ≥", "trust", "lower s", "certify s", "size"], rows),
        "## Per pair (solved = optimal/infeasible; geo-mean over solved runs)",
        markdown(["pair", "runs", "solved", "unavailable", "total solve s", "geo-mean solved s"], summary),
        "## Performance profiles (Dolan & Moré 2002): share of instances within τ × the fastest",
        markdown(["pair", "ρ(1)", "ρ(2)", "ρ(10)", "ρ(∞)"], profile)])


def write_report(cells: Sequence[Cell], out_dir: Path, title: str = "Solver matrix") -> list[Path]:
    """matrix.csv (every field of every cell), matrix.md and profile.png in `out_dir`."""
    from .export import _writable_dir
    from .profiles import grouped_profiles, plot_profiles

    out_dir = _writable_dir(Path(out_dir))
    paths = [out_dir / name for name in FILES]
    with open(paths[0], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(Cell.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(c.as_row() for c in cells)
    paths[1].write_text(markdown_report(cells, title) + "\n")
    plot_profiles(grouped_profiles(cells, lambda c: c.lowering.value), paths[2], title)
    return paths


def read_cells(path: Path) -> list[Cell]:
    """The cells of a matrix.csv written by `write_report`."""
    try:
        return [cell_from_row(row) for row in csv.DictReader(open(path))]
    except (OSError, KeyError, ValueError) as err:
        raise UnreadableFileError(f"{path}: not a solver-matrix CSV ({err})") from None


# ---- command line --------------------------------------------------------------------------
def _numbers(kind):
    def parse(text: str):
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    return parse


def add_subcommand(sub) -> None:
    """Add the `bench` parser to the subparsers `sub`."""
    p = sub.add_parser(NAME, help="solver matrix: every (lowering, backend) pair on fixed instances, timed")
    p.add_argument("network", nargs="?", type=Path, help="ONNX file (omit with --instances)")
    p.add_argument("properties", nargs="*", type=Path, help="VNN-LIB files (or use --image/--eps)")
    p.add_argument("--instances", type=Path, help="VNN-COMP instances.csv (onnx, vnnlib, timeout)")
    p.add_argument("--limit", type=int, help="only the first N rows of --instances")
    p.add_argument("--image", type=Path, help=".npy/.npz images for L-inf robustness")
    p.add_argument("--indices", type=_numbers(int), default=[0], help="image indices, e.g. 0,1,2 (default 0)")
    p.add_argument("--eps", type=_numbers(float), help="L-inf radii, e.g. 0.01,0.02")
    p.add_argument("--label", type=int, help="true class (default: the file's labels)")
    p.add_argument("--targets", type=_numbers(int), help="target classes (default: all others)")
    p.add_argument("--valid-range", type=_numbers(float), default=[0.0, 1.0], help="input range (default 0,1)")
    p.add_argument("--input-shape", type=_numbers(int), help="input shape for torch models, e.g. 1,28,28")
    p.add_argument("--rows", default="worst", help="worst (default: each property's lowest-bound clause) or all")
    p.add_argument("--forms", default="milp,lp,sdp,bm", help="lowerings (default milp,lp,sdp,bm)")
    p.add_argument("--backends", help="solvers (default: every registered one)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per solve (default 60)")
    p.add_argument("--bounds", default="crown", help="intermediate bounds: ibp, fastlin, crown, alpha-crown")
    p.add_argument("--threads", type=int, default=1, help="threads per solver and for torch (default 1)")
    p.add_argument("--max-ipm-psd", type=int, default=100, help="largest PSD block for clarabel/mosek (100)")
    p.add_argument("--out", type=Path, help="write matrix.csv, matrix.md and profile.png here")
    p.add_argument("--export-dir", type=Path, help="write the lowered problems (MPS, CBF, SDPA) here")
    p.add_argument("--store", type=Path, help="SQLite results store: record each cell, reuse stored ones")


def select_instances(args, bounds: BoundMethod) -> list[Instance]:
    """The instances the arguments describe (module doc); InvalidOptionError when they conflict."""
    choice = parse_choice(RowChoice, args.rows, "--rows")
    if args.instances is not None:
        if args.network or args.properties or args.image:
            raise InvalidOptionError("--instances replaces NETWORK, PROPERTY and --image")
        return csv_instances(args.instances, args.limit, choice, bounds)
    if args.network is None or bool(args.properties) == (args.image is not None):
        raise InvalidOptionError("bench needs NETWORK with VNN-LIB properties or with --image/--eps, or --instances")
    if args.properties:
        return vnnlib_instances(args.network, args.properties, choice, bounds, args.input_shape)
    if not args.eps or len(args.valid_range) != 2:
        raise InvalidOptionError("--image needs --eps (and --valid-range LO,HI)")
    return robustness_instances(args.network, args.image, args.indices, args.eps, args.label, args.targets,
                                tuple(args.valid_range), choice, bounds, args.input_shape)


def run(args) -> int:
    """Run the matrix the arguments describe; print the report, write the files asked for."""
    import solvers
    import torch

    from .progress import progress

    bounds = parse_choice(BoundMethod, args.bounds, "--bounds")
    settings = MatrixSettings(args.timeout, bounds, args.threads, args.max_ipm_psd)
    lowerings = [parse_choice(Lowering, f.strip(), "--forms") for f in args.forms.split(",") if f.strip()]
    todo = pairs(lowerings, [b.strip() for b in args.backends.split(",")] if args.backends else solvers.names())
    torch.set_num_threads(settings.threads)
    instances = select_instances(args, bounds)
    store = None
    if args.store is not None:
        from .store import ResultStore

        store = ResultStore(args.store)
    try:
        with progress(f"solver matrix: {len(instances)} instance(s) x {len(todo)} pair(s)") as update:
            def report(cell: Cell) -> None:
                update(f"{cell.instance} {cell.pair}: {cell.label()[:60]}")
                print(f"  {cell.instance}  {cell.pair:20s} {cell.label()[:48]:48s} {cell.seconds:7.2f} s",
                      file=sys.stderr)
            memo = StoreMemo(store, settings) if store is not None else None
            cells = run_matrix(instances, todo, settings, memo, args.export_dir, report)
    finally:
        if store is not None:
            store.close()
    print(markdown_report(cells))
    if args.out is not None:
        for path in write_report(cells, args.out):
            print(path)
    return 0
