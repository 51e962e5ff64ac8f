"""Issue 14 benchmark: branch-and-bound speed before/after the bound-kernel rewrite, same run.

Part 1 — a few ACAS Xu instances (input splitting) and mnistfc instances (ReLU splitting,
alpha-beta-CROWN bounding) through `verify(..., "bnb")`, each in a fresh child process, once with
this tree and once with an earlier optcert source tree (`--before DIR`, e.g. made by
`git archive <commit> | tar -x -C DIR`), interleaved per instance: verdict, wall and CPU
seconds, domains bounded, domains per CPU-second.

Part 2 — the input-split bounding kernel alone (search/input_split.bound_boxes) on 2048 sub-boxes
of ACAS Xu prop_1 at three sizes: domains per CPU-second and achieved GFLOP/s (torch's flop
counter) beside this CPU's one-thread float32 matmul peak measured in the same run.

    python bench/bnb_speed.py [--before DIR] [--timeout 60]
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
from common import BENCHMARKS, RESULTS, machine, markdown_table, record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ACAS = ("1_1-prop_1", "3_5-prop_1", "3_7-prop_1", "2_9-prop_1", "4_5-prop_3", "1_1-prop_2")
MNIST = ("256x2-prop_0_0.03", "256x2-prop_3_0.03", "256x4-prop_0_0.03", "256x2-prop_5_0.05", "256x4-prop_3_0.05",
         "256x6-prop_3_0.05")
STORE = RESULTS / "bnb_speed.jsonl"


def paths(name: str) -> tuple[Path, Path]:
    if "x" in name.split("-")[0]:
        net, prop = name.split("-")
        base = BENCHMARKS / "mnistfc"
        return base / "onnx" / f"mnist-net_{net}.onnx", base / "vnnlib" / f"{prop}.vnnlib"
    net, prop = name.split("-")
    base = BENCHMARKS / "acasxu"
    return base / "onnx" / f"ACASXU_run2a_{net}_batch_2000.onnx", base / "vnnlib" / f"{prop}.vnnlib"


def child(args: dict) -> None:
    """Run one instance in this process and print the figures as JSON."""
    from optcert.threads import limit_threads

    limit_threads(1)
    from optcert.ir.from_onnx import load_onnx
    from optcert.spec.vnnlib import read_vnnlib
    from optcert.verify import verify

    problem = read_vnnlib(args["vnnlib"]).problem(load_onnx(args["onnx"]))
    wall, cpu = time.perf_counter(), time.process_time()
    result = verify(problem, "bnb", args["timeout"], args["options"])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    cases = result.certificate.get("cases", []) if isinstance(result.certificate, dict) else []
    seconds = sum(c.get("seconds", {}).get("bound", 0.0) for c in cases)
    print(json.dumps({"verdict": result.verdict.value, "wall": wall, "cpu": cpu, "bound_seconds": seconds,
                      "nodes": sum(int(c.get("nodes", 0)) for c in cases)}))


def run_child(source: Path, name: str, timeout: float) -> dict:
    onnx, vnnlib = paths(name)
    options = {"split": "relu"} if "x" in name.split("-")[0] else {"split": "input"}
    env = {**os.environ, "PYTHONPATH": str(source)}
    arg = json.dumps({"onnx": str(onnx), "vnnlib": str(vnnlib), "timeout": timeout, "options": options})
    run = subprocess.run([sys.executable, __file__, "--child", arg], env=env, capture_output=True, text=True,
                         timeout=timeout * 3 + 120)
    if run.returncode != 0:
        return {"verdict": "error", "error": run.stderr[-500:]}
    return json.loads(run.stdout.strip().splitlines()[-1])


def kernel_rows() -> list[list]:
    """Part 2 (module doc)."""
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from optcert.bounds.torch_net import torch_net
    from optcert.compiled import compile_problem
    from optcert.ir.from_onnx import load_onnx
    from optcert.precision import Precision
    from optcert.search.box_bounding import Mode, bound_boxes
    from optcert.spec.vnnlib import read_vnnlib

    a, b = torch.rand(1024, 1024), torch.rand(1024, 1024)
    peak = max(2 * 1024 ** 3 / _cpu(lambda: a @ b) / 1e9 for _ in range(10))   # CPU time, as below
    onnx, vnnlib = paths("3_5-prop_1")
    cc = compile_problem(read_vnnlib(vnnlib).problem(load_onnx(onnx)))[0]
    tn = torch_net(cc.net, "cpu", Precision.FLOAT32)
    rng = np.random.default_rng(0)
    rows = []
    for frac in (0.3, 0.05, 0.01):
        B = 2048
        w = (cc.hi - cc.lo) * frac
        lo = cc.lo + (cc.hi - cc.lo - w) * rng.random((B, cc.lo.size))
        lo, hi = torch.tensor(lo), torch.tensor(lo + w)
        weights = torch.ones((B, cc.case.spec.rows), dtype=torch.float64)
        for mode in (Mode.HYBRID, Mode.CROWN, Mode.FORWARD):
            def call(mode=mode, lo=lo, hi=hi, weights=weights):
                return bound_boxes(tn, lo, hi, mode, weights)
            call()
            cpu = min(_cpu(call) for _ in range(3))
            with FlopCounterMode(display=False) as counter:
                call()
            gf = counter.get_total_flops() / cpu / 1e9
            rows.append([f"{frac:g} of the box", mode.value, B, f"{1e3 * cpu:.0f}", f"{B / cpu:.0f}",
                         f"{gf:.2f}", f"{100 * gf / peak:.0f}%", f"{os.getloadavg()[0]:.1f}"])
    return [[f"(one-thread float32 matmul peak {peak:.1f} GFLOP/s, CPU time)", "", "", "", "", "", "", ""]] + rows


def _cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--before", type=Path, help="an earlier optcert source tree")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--kernel-only", action="store_true", help="part 2 only (part 1 from the record)")
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from optcert.threads import limit_threads

    limit_threads(1)
    done = {json.loads(line)["key"]: json.loads(line) for line in STORE.open()} if STORE.exists() else {}
    RESULTS.mkdir(exist_ok=True)
    rows = []
    for name in () if args.kernel_only else ACAS + MNIST:
        for label, source in (("after", ROOT), ("before", args.before)):
            key = f"{name}|{label}|{args.timeout:g}"
            if source is None or key in done:
                continue
            rec = {"key": key, "load": os.getloadavg()[0], **run_child(source, name, args.timeout)}
            done[key] = rec
            with STORE.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)
    for name in ACAS + MNIST:
        line = [name]
        for label in ("before", "after"):
            r = done.get(f"{name}|{label}|{args.timeout:g}")
            if r is None or r.get("verdict") == "error":
                line += ["-"] * 4
                continue
            line += [r["verdict"], f"{r['wall']:.1f} / {r['cpu']:.1f}", r["nodes"],
                     f"{r['nodes'] / max(r['cpu'], 1e-9):.0f}"]
        rows.append(line)
    head = ["instance"] + [f"{w} {label}" for label in ("before", "after")
                           for w in ("verdict", "wall / CPU s", "domains", "domains per CPU-s")]
    record("bnb_speed", "\n\n".join([
        f"# Branch and bound before/after the bound kernels of issue 14 (timeout {args.timeout:g} s)",
        f"Machine: {machine()}; load average now {os.getloadavg()[0]:.1f}",
        "ACAS Xu: input splitting; mnistfc: ReLU splitting with alpha-beta-CROWN (default options). "
        "Each run in its own process, before and after interleaved per instance.",
        markdown_table(head, rows),
        "## Input-split bounding kernel (2048 sub-boxes of ACAS Xu 3_5 prop_1, float32, one thread)",
        markdown_table(["sub-box size", "hidden layers", "B", "CPU ms", "domains per CPU-s", "GFLOP/s",
                        "of peak", "load"], kernel_rows())]))


if __name__ == "__main__":
    main()
