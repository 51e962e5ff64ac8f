"""Per-neuron LP tightening (LP-ALL, Salman et al. 2019) of the mnistfc roots: what each layer
budget buys, and what an earlier checkout computed.

For each instance: the LP-ALL stage run to the end or to `--cap` seconds, with every unstable
neuron solved (`inf`) or `layer_time_limit` seconds per layer (loosest neurons first); reported
are the seconds, LP solves, neurons skipped, unstable neurons per layer after the stage, and the
root's CROWN and alpha-CROWN lower bound on the worst output row with those intermediate bounds
(higher is better). `--baseline DIR` runs the same measurement with the optcert checkout in DIR
(one process per measurement, interleaved with this checkout's), e.g. the code before the HiGHS
session fix, whose per-neuron solves all stopped at once after 2 s of solving per layer.

    python bench/tightening.py [--limits 2.4,inf] [--cap 120] [--baseline DIR] [--name tightening]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCHMARKS, ROOT, machine, markdown_table, record  # noqa: E402

INSTANCES = [("256x2", "prop_10_0.05"), ("256x4", "prop_8_0.03"), ("256x4", "prop_0_0.05"),
             ("256x6", "prop_1_0.03")]


def measure(net: str, prop: str, limit: float, cap: float) -> dict:
    """One tightening in this process (the code on sys.path), as a JSON-able dict."""
    import inspect

    import torch

    torch.set_num_threads(1)
    from optcert.bounds.methods import BoundMethod, compute_bounds
    from optcert.compiled import compile_problem
    from optcert.ir.load import load_network
    from optcert.solve.progressive import ResumableTightening, Tightening
    from optcert.spec.vnnlib import read_vnnlib

    folder = BENCHMARKS / "mnistfc"
    network = load_network(folder / "onnx" / f"mnist-net_{net}.onnx")
    cc = compile_problem(read_vnnlib(folder / "vnnlib" / f"{prop}.vnnlib").problem(network, name=prop))[0]
    kwargs = {}
    if "layer_time_limit" in inspect.signature(ResumableTightening).parameters:
        kwargs["layer_time_limit"] = None if limit == float("inf") else limit
    elif limit != float("inf"):
        return {"error": "no layer_time_limit in this checkout"}
    t = time.perf_counter()
    run = ResumableTightening(cc.net, cc.ibp, Tightening.LP, **kwargs)
    run.advance(time.monotonic() + cap)
    seconds = time.perf_counter() - t
    crown = compute_bounds(cc.net, [run.bounds], BoundMethod.CROWN)[0].lower[-1].min()
    alpha = compute_bounds(cc.net, [run.bounds], BoundMethod.ALPHA_CROWN)[0].lower[-1].min()
    report = run.report
    return {"seconds": round(seconds, 2), "solves": report.solves, "skipped": getattr(report, "skipped", ""),
            "complete": run.done, "unstable": report.unstable.get("lp-all", report.unstable.get("crown")),
            "crown": float(crown), "alpha": float(alpha)}


def run_one(src: Path, net: str, prop: str, limit: float, cap: float) -> dict:
    cmd = [sys.executable, __file__, "--one", net, prop, str(limit), str(cap)]
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3 * cap + 120)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limits", default="2.4,inf", help="layer time limits (s), comma-separated; inf: none")
    ap.add_argument("--cap", type=float, default=120.0, help="seconds per tightening")
    ap.add_argument("--baseline", type=Path, help="an earlier optcert checkout, measured alongside")
    ap.add_argument("--name", default="tightening")
    ap.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        net, prop, limit, cap = args.one
        print(json.dumps(measure(net, prop, float(limit), float(cap))), flush=True)
        return
    if not (BENCHMARKS / "mnistfc").is_dir():
        print(f"skipped: no mnistfc benchmark under {BENCHMARKS}")
        return
    limits = [float(v) for v in args.limits.split(",")]
    sources = [("this checkout", ROOT)] + ([("baseline", args.baseline)] if args.baseline else [])
    rows = []
    for net, prop in INSTANCES:
        for label, src in sources:
            for limit in limits if label == "this checkout" else [float("inf")]:
                r = run_one(src, net, prop, limit, args.cap)
                rows.append([f"{net} {prop}", label, "none" if limit == float("inf") else f"{limit:g}",
                             r.get("seconds", ""), r.get("solves", ""), r.get("skipped", ""), r.get("complete", ""),
                             r.get("unstable", r.get("error", "")), r.get("crown", ""), r.get("alpha", "")])
                print(rows[-1], flush=True)
    table = markdown_table(["instance", "code", "layer limit s", "seconds", "LP solves", "skipped", "complete",
                            "unstable per layer after", "CROWN root bound", "alpha-CROWN root bound"], rows)
    text = (f"# Per-neuron LP tightening of the mnistfc roots\n\n{machine()}\n\n"
            f"One thread, cap {args.cap:g} s per tightening; bounds on the worst output row.\n\n{table}\n")
    print(f"written to {record(args.name, text)}")


if __name__ == "__main__":
    main()
