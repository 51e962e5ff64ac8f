"""Issue 7 item 3 benchmark: the solver matrix on mnistfc 256×2 and the salman_mnist nets.

Two parts, because the full SDP is far dearer than the LP/MILP here (measured: N ≈ 890 on a
salman net at eps 0.005 — the 784 inputs dominate N, so a small eps barely shrinks it — and SCS
needs ~0.25 s per iteration, 500 iterations in 120 s without reaching 1e-7; BM likewise hits
its limit; certifying from the multipliers takes 15–80 s):

1. LP/MILP on every instance (highs, gurobi, scip; `--timeout`, default 20 s per solve):
   mnistfc 256×2 properties 0–2 at eps 0.03 and salman NOR / ADV 0.1 / LPD 0.1 on MNIST test
   images 0, 1 at eps 0.02, each the clause (target) with the lowest CROWN bound;
2. SDP/BM (scs, clarabel, mosek; torch-lowrank; `--sdp-timeout`, default 60 s, certificate
   budget 30 s) on the first mnistfc and the first NOR instance. SCS checks its time limit only
   every so many iterations and certifying takes a while at N ≈ 900, so these cells overrun.

Clarabel is skipped above PSD size 100 (its memory grows like N⁴), MOSEK needs a licence: both
appear as "unavailable" rows. Writes bench/results/solver_matrix.md and, in
bench/results/solver_matrix/, matrix.csv, matrix.md and profile.png. The default run took 434 s
on 2 cores (2026-11-23); `--quick` is a smoke test (one instance per family, 5 s limits, ~2 min).

    python bench/solver_matrix.py [--quick] [--timeout 20] [--sdp-timeout 60] [--store runs.db]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCHMARKS, RESULTS, machine, record  # noqa: E402

SALMAN = ("NOR_MLP_B.onnx", "ADV_MLP_B_0.1.onnx", "LPD_MLP_B_0.1.onnx")
MNISTFC = BENCHMARKS / "mnistfc"
IMAGES = BENCHMARKS / "mnist_images" / "mnist_test_30.npz"


def instances(quick: bool) -> list:
    from optcert.benchmarking.instances import robustness_instances, vnnlib_instances

    props = [MNISTFC / "vnnlib" / f"prop_{i}_0.03.vnnlib" for i in range(1 if quick else 3)]
    out = vnnlib_instances(MNISTFC / "onnx" / "mnist-net_256x2.onnx", props)
    for name in SALMAN[:1] if quick else SALMAN:
        out += robustness_instances(BENCHMARKS / "salman_mnist" / name, IMAGES, [0] if quick else [0, 1], [0.02])
    return out


def run(args) -> list:
    import torch

    from optcert.benchmarking.matrix_report import StoreMemo
    from optcert.benchmarking.solver_matrix import Lowering, MatrixSettings, pairs, run_matrix

    torch.set_num_threads(1)
    insts = instances(args.quick)
    sdp_insts = [insts[0], next(i for i in insts if i.name.startswith("NOR"))]
    linear = MatrixSettings(timeout=args.timeout)
    conic = MatrixSettings(timeout=args.sdp_timeout, certify_timeout=min(30.0, args.sdp_timeout))
    parts = [(insts, pairs([Lowering.MILP, Lowering.LP], ["highs", "gurobi", "scip"]), linear),
             (sdp_insts, pairs([Lowering.SDP, Lowering.BM], ["scs", "clarabel", "mosek", "torch-lowrank"]), conic)]
    store = None
    if args.store:
        from optcert.sweeps.store import ResultStore

        store = ResultStore(args.store)
    cells = []
    for chosen, todo, settings in parts:
        memo = StoreMemo(store, settings) if store is not None else None
        cells += run_matrix(chosen, todo, settings, memo, args.export_dir, report=_echo)
    if store is not None:
        store.close()
    return cells


def _echo(cell) -> None:
    print(f"  {cell.instance:40s} {cell.pair:20s} {cell.label()[:50]:50s} {cell.seconds:7.2f} s "
          f"certified {cell.certified}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: one instance per family, 5 s limits")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per LP/MILP solve (default 20)")
    p.add_argument("--sdp-timeout", type=float, default=60.0, help="seconds per SDP/BM solve (default 60)")
    p.add_argument("--store", type=Path, help="results store: record cells, reuse them on a rerun")
    p.add_argument("--export-dir", type=Path, help="also write the lowered problems (MPS, CBF, SDPA)")
    args = p.parse_args()
    if args.quick:
        args.timeout = args.sdp_timeout = 5.0
    from optcert.benchmarking.matrix_report import markdown_report, write_report

    start = time.perf_counter()
    cells = run(args)
    wall = time.perf_counter() - start
    folder = RESULTS / "solver_matrix"
    write_report(cells, folder, "Solver matrix: mnistfc 256x2 and salman_mnist")
    header = (f"Machine: {machine()}\n\nSettings: LP/MILP {args.timeout:g} s per solve, SDP/BM {args.sdp_timeout:g} s "
              f"per solve (certificate budget {min(30.0, args.sdp_timeout):g} s), CROWN intermediate bounds, one "
              f"thread per solver, each property's lowest-bound clause. Total wall time {wall:.0f} s"
              f"{' (--quick smoke test)' if args.quick else ''}. Files: bench/results/solver_matrix/.")
    body = markdown_report(cells, "Solver matrix (issue 7): mnistfc 256x2 and salman_mnist")
    title, rest = body.split("\n\n", 1)
    record("solver_matrix", f"{title}\n\n{header}\n\n{rest}")


if __name__ == "__main__":
    main()
