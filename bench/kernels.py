"""Issue 14 benchmark: optcert's CROWN and alpha-CROWN kernels side by side with auto_LiRPA.

Per shared network family (ACAS Xu, mnistfc 256x2/4/6, salman ADV_MLP_B) and batch of B = 1, 64,
1024 sub-boxes of one property's region: wall and CPU seconds per call (median of repeats after a
warm-up), throughput ratio (auto_LiRPA's time / optcert's, > 1: optcert faster), bounds
difference, and the achieved GFLOP/s (torch's flop counter) beside this CPU's one-thread matmul
peak measured in the same run. Both tools bound the same spec-folded network (optcert's layered
form, exported as plain weight matrices) over the same boxes, one thread each; the tools are
interleaved per network and batch size. auto_LiRPA runs in its own environment and process
(bench/autolirpa_runner.py) found through $OPTCERT_AUTOLIRPA_PYTHON; without it only optcert's
figures are recorded. alpha-CROWN: 20 Adam steps, lr 0.1, intermediate bounds fixed (auto_LiRPA's
CROWN-Optimized with fix_interm_bounds, its default), lower bounds only, no early stop.

    OPTCERT_AUTOLIRPA_PYTHON=/path/to/venv/bin/python python bench/kernels.py [--quick] [--fresh]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import BENCHMARKS, RESULTS, machine, markdown_table, record  # noqa: E402

NETS = (("acasxu", "onnx/ACASXU_run2a_1_1_batch_2000.onnx", "vnnlib/prop_1.vnnlib"),
        ("mnistfc", "onnx/mnist-net_256x2.onnx", "vnnlib/prop_0_0.03.vnnlib"),
        ("mnistfc", "onnx/mnist-net_256x4.onnx", "vnnlib/prop_0_0.03.vnnlib"),
        ("mnistfc", "onnx/mnist-net_256x6.onnx", "vnnlib/prop_0_0.03.vnnlib"),
        ("salman_mnist", "ADV_MLP_B_0.1.onnx", 0.1))
BATCHES = (1, 64, 1024)
ITERATIONS, LR = 20, 0.1
STORE = RESULTS / "kernels.jsonl"


def compiled_case(family: str, onnx: str, prop):
    from optcert.compiled import compile_problem
    from optcert.ir.from_onnx import load_onnx
    from optcert.spec.problem import robustness_problem
    from optcert.spec.vnnlib import read_vnnlib

    net = load_onnx(BENCHMARKS / family / onnx)
    if isinstance(prop, float):
        data = np.load(BENCHMARKS / "mnist_images" / "mnist_test_30.npz")
        problem = robustness_problem(net, data["X"][0], int(data["y"][0]), prop)
    else:
        problem = read_vnnlib(BENCHMARKS / family / prop).problem(net)
    return compile_problem(problem)[0]


def sub_boxes(lo: np.ndarray, hi: np.ndarray, count: int, seed: int = 0):
    """`count` sub-boxes of [lo, hi] (the box itself when count is 1): per dimension a random
    30–100% of the width at a random offset."""
    if count == 1:
        return lo[None], hi[None]
    rng = np.random.default_rng(seed)
    w = (hi - lo) * rng.uniform(0.3, 1.0, (count, lo.size))
    low = lo + (hi - lo - w) * rng.random((count, lo.size))
    return low, low + w


def timed(fn, min_seconds: float = 1.0, max_repeats: int = 5, warm: bool = True):
    if warm:
        fn()
    walls, cpus, out = [], [], None
    start = time.perf_counter()
    while len(walls) < max_repeats and (len(walls) < min(2, max_repeats) or time.perf_counter() - start < min_seconds):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def matmul_peak() -> dict:
    """GFLOP/s of a 1024×1024 matmul, one thread, float32 and float64 (best of 10)."""
    import torch

    out = {}
    for dt in (torch.float32, torch.float64):
        a, b = torch.rand(1024, 1024, dtype=dt), torch.rand(1024, 1024, dtype=dt)
        best = min(_seconds(lambda a=a, b=b: a @ b) for _ in range(10))
        out[str(dt)[6:]] = 2 * 1024 ** 3 / best / 1e9
    return out


def _seconds(fn) -> float:
    """CPU seconds of fn (the machine is shared: wall time measures the neighbours too)."""
    t = time.process_time()
    fn()
    return time.process_time() - t


def repeats(B: int) -> dict:
    """Timing effort: a large batch is timed once, without warm-up (the machine is shared, and a
    call of seconds hides the first call's set-up)."""
    return {"min_seconds": 0.0, "max_repeats": 1, "warm": False} if B >= 1024 else {}


def optcert_side(cc, lo, hi, precision) -> dict:
    import torch

    from optcert.bounds.alpha_crown import AlphaSettings, optimise
    from optcert.bounds.crown import crown
    from optcert.bounds.torch_net import DomainBatch, torch_net

    tn = torch_net(cc.net, "cpu", precision)
    L, m = tn.depth, cc.net.output.size
    eye = torch.eye(m, dtype=precision.torch())

    def run_crown():
        with torch.no_grad():
            return crown(tn, DomainBatch.from_box(lo, hi))

    def run_alpha():
        inner = crown(tn, DomainBatch.from_box(lo, hi), upto=L - 1)
        return optimise(tn, inner, L, eye, AlphaSettings(ITERATIONS, LR))

    effort = repeats(lo.shape[0])
    wall, cpu, out = timed(run_crown, **effort)
    result = {"crown": {"wall": wall, "cpu": cpu, "flops": flops(run_crown),
                        "lower": out.lower[-1].tolist(), "upper": out.upper[-1].tolist()}}
    wall, cpu, best = timed(run_alpha, **effort)
    result["alpha"] = {"wall": wall, "cpu": cpu, "flops": flops(run_alpha) if not effort else float("nan"),
                       "lower": best.tolist()}
    return result


def autolirpa_side(cc, lo, hi, precision, python: str) -> dict | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "net.npz"
        arrays = {"lo": lo, "hi": hi}
        for k, layer in enumerate(cc.net.layers):
            arrays[f"W{k}"], arrays[f"b{k}"] = layer.weights[0], layer.bias
        np.savez(path, **arrays)
        run = subprocess.run([python, str(Path(__file__).parent / "autolirpa_runner.py"), str(path),
                              "--dtype", precision.value, "--iterations", str(ITERATIONS), "--lr", str(LR),
                              *(["--max-repeats", "1", "--min-seconds", "0", "--large"] if len(lo) >= 1024 else [])],
                             capture_output=True, text=True, timeout=3600)
    if run.returncode != 0:
        print(f"auto_LiRPA failed: {run.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])


def measure(key: dict, cc, B: int, precision, python: str | None) -> dict:
    lo, hi = sub_boxes(cc.lo, cc.hi, B)
    ours = optcert_side(cc, lo, hi, precision)
    theirs = autolirpa_side(cc, lo, hi, precision, python) if python else None
    return {**key, "load": os.getloadavg()[0], "optcert": ours, "auto_lirpa": theirs}


def summary_rows(records: list[dict], peak: dict) -> list[list]:
    rows = []
    for r in records:
        for method in ("crown", "alpha"):
            o, a = r["optcert"][method], (r["auto_lirpa"] or {}).get(method)
            gf = o["flops"] / o["cpu"] / 1e9
            line = [r["net"], r["B"], method, f"{1e3 * o['wall']:.1f} / {1e3 * o['cpu']:.1f}",
                    f"{r['B'] / o['cpu']:.0f}", f"{gf:.2f} ({100 * gf / peak[r['dtype']]:.0f}%)"]
            if a:
                ga = a["flops"] / a["cpu"] / 1e9
                ol, al = np.array(o["lower"]), np.array(a["lower"])
                diff = ol - al.reshape(ol.shape)
                line += [f"{1e3 * a['wall']:.1f} / {1e3 * a['cpu']:.1f}",
                         f"{a['cpu'] / o['cpu']:.2f} / {a['wall'] / o['wall']:.2f}",
                         f"{ga:.2f} ({100 * ga / peak[r['dtype']]:.0f}%)",
                         f"{diff.min():.2e} … {diff.max():.2e}"]
            else:
                line += ["-", "-", "-", "-"]
            rows.append(line + [f"{r['load']:.1f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="B = 1 and 64 only")
    parser.add_argument("--fresh", action="store_true", help="discard recorded results")
    parser.add_argument("--precision", default="float32", choices=("float32", "float64"))
    parser.add_argument("--report", action="store_true", help="only write the table from the record")
    args = parser.parse_args()
    from optcert.precision import Precision
    from optcert.threads import limit_threads

    limit_threads(1)
    precision = Precision(args.precision)
    python = os.environ.get("OPTCERT_AUTOLIRPA_PYTHON")
    if not python or not Path(python).exists():
        print("auto_LiRPA not found ($OPTCERT_AUTOLIRPA_PYTHON unset or missing): optcert figures only")
        python = None
    RESULTS.mkdir(exist_ok=True)
    if args.fresh and STORE.exists():
        STORE.unlink()
    done = [json.loads(line) for line in STORE.open()] if STORE.exists() else []
    peak = matmul_peak()
    cases = {} if args.report else {net: compiled_case(*net) for net in NETS}
    for B in BATCHES[:2] if args.quick else BATCHES:      # every net at a batch size before the next size
        for (_family, onnx, _prop), cc in cases.items():
            key = {"net": Path(onnx).stem, "B": B, "dtype": precision.value}
            if any(all(d.get(k) == v for k, v in key.items()) for d in done):
                continue
            rec = measure(key, cc, B, precision, python)
            with STORE.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            done.append(rec)
            print(json.dumps({k: rec[k] for k in ("net", "B", "load")}), flush=True)
    head = ["net", "B", "method", "optcert ms wall / cpu", "optcert domains per CPU-s", "optcert GFLOP/s (% peak)",
            "auto_LiRPA ms wall / cpu", "throughput ratio CPU / wall (auto time / optcert time)",
            "auto_LiRPA GFLOP/s (% peak)", "lower bound optcert − auto_LiRPA", "load"]
    rows = summary_rows([d for d in done if d["dtype"] == precision.value], peak)
    record(f"kernels_{precision.value}", "\n\n".join([
        f"# Bound kernels side by side with auto_LiRPA ({precision.value}, one thread)",
        f"Machine: {machine()}; load average at the end {os.getloadavg()[0]:.1f}",
        f"One-thread matmul peak (1024×1024, CPU time): float32 {peak['float32']:.1f} GFLOP/s, "
        f"float64 {peak['float64']:.1f} GFLOP/s; GFLOP/s below are per CPU-second",
        "CROWN: lower and upper output bounds (intermediate layers by CROWN); alpha: lower bounds, "
        f"{ITERATIONS} Adam steps lr {LR}, intermediate bounds fixed. Times are medians of repeats after a "
        "warm-up; throughput ratio > 1 means optcert is faster.",
        markdown_table(head, rows)]))


if __name__ == "__main__":
    main()
