"""Issue 3 benchmark: IBP, CROWN and alpha-CROWN on the shared networks.

Per instance: time and final certified bound of each method; unstable neurons per layer under
CROWN bounds; instances proved per family; wrong verdicts (PROVED where a counterexample is
known or found by PGD: must be 0); and the achieved GFLOP/s of the CROWN backward pass against
numpy's float64 matmul GFLOP/s measured in the same run.

    python bench/bounds.py [--quick]
"""
from __future__ import annotations

import argparse
import collections
import csv
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import BENCHMARKS, RESULTS, instances, machine, markdown_table, record  # noqa: E402

from optcert.bounds import BoundMethod, BoundSettings, compute_bounds  # noqa: E402
from optcert.bounds.crown import crown  # noqa: E402
from optcert.bounds.torch_net import DomainBatch, torch_net  # noqa: E402
from optcert.compiled import compile_problem  # noqa: E402
from optcert.ir.from_onnx import load_onnx  # noqa: E402
from optcert.precision import Precision  # noqa: E402
from optcert.spec.problem import robustness_problem  # noqa: E402
from optcert.spec.vnnlib import read_vnnlib  # noqa: E402
from optcert.verify import verify  # noqa: E402

METHODS = (BoundMethod.IBP, BoundMethod.CROWN, BoundMethod.ALPHA_CROWN)
SETTINGS = BoundSettings(iterations=20, lr=0.1)
SALMAN = (("NOR_MLP_B.onnx", 0.02), ("ADV_MLP_B_0.1.onnx", 0.1), ("LPD_MLP_B_0.1.onnx", 0.1))


def problems(quick: bool):
    """(family, network file, problem, expected) for every benchmark instance."""
    for fam in ("acasxu", "mnistfc"):
        rows = instances(fam)[::6] if quick else instances(fam)
        nets = {}
        for row in rows:
            path = BENCHMARKS / fam / row["onnx"]
            nets.setdefault(path, load_onnx(path))
            yield fam, path.name, read_vnnlib(BENCHMARKS / fam / row["vnnlib"]).problem(
                nets[path], name=row["instance"]), row["expected"]
    data = np.load(BENCHMARKS / "mnist_images" / "mnist_test_30.npz")
    images, labels = data["X"], data["y"]
    for name, eps in SALMAN:
        net = load_onnx(BENCHMARKS / "salman_mnist" / name)
        for i in range(10 if quick else len(images)):
            if int(np.argmax(net.forward(images[i][None])[0])) != int(labels[i]):
                continue  # misclassified: not a robustness instance
            yield "salman_mnist", name, robustness_problem(net, images[i], int(labels[i]), eps,
                                                            name=f"{name}:img{i}@{eps}"), ""


def bound_instance(problem) -> dict:
    """Time and certified bound per method (summed over cases), plus unstable counts (CROWN)."""
    compiled = compile_problem(problem)
    out = {}
    for method in METHODS:
        t = time.perf_counter()
        worst = np.inf
        for cc in compiled:
            b = compute_bounds(cc.net, [cc.ibp], method, SETTINGS)[0]
            rows = cc.sound(b.lower[-1])
            worst = min(worst, float(rows.max() if cc.case.combine.value == "any" else rows.min()))
            if method is BoundMethod.CROWN and cc.index == 0:
                out["unstable"] = [c["unstable"] for c in b.counts()]
        out[method.value] = (time.perf_counter() - t, worst)
    return out


def flops_of_crown(tn, dom) -> float:
    """Floating-point operations torch executes in one CROWN call (its flop counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        crown(tn, dom)
    return float(counter.get_total_flops())


def gflops(quick: bool) -> list[list]:
    rows = []
    a, b = np.random.rand(512, 256), np.random.rand(256, 784)
    t = min(_timed(lambda: a @ b) for _ in range(20))
    numpy_rate = 2 * 512 * 256 * 784 / t / 1e9
    rows.append(["numpy float64 matmul 512×256 @ 256×784 (all BLAS threads)", "-", f"{numpy_rate:.2f}", "1.00"])
    for dt in (torch.float32, torch.float64):
        ta, tb = torch.tensor(a, dtype=dt), torch.tensor(b, dtype=dt)
        t = min(_timed(lambda ta=ta, tb=tb: ta @ tb) for _ in range(20))
        rate = 2 * 512 * 256 * 784 / t / 1e9
        rows.append([f"torch {str(dt)[6:]} matmul, same shapes, 1 thread", "-", f"{rate:.2f}",
                     f"{rate / numpy_rate:.2f}"])
    for fam, name in (("mnistfc", "mnist-net_256x6.onnx"), ("salman_mnist", "ADV_MLP_B_0.1.onnx")):
        net = load_onnx(BENCHMARKS / fam / ("onnx/" + name if fam == "mnistfc" else name))
        from optcert.ir.layered import to_layered
        layered = to_layered(net)
        lo, hi = np.zeros(layered.n_inputs), np.full(layered.n_inputs, 0.05)
        for prec in Precision:
            tn = torch_net(layered, "cpu", prec)
            dom = DomainBatch.from_box(lo, hi)
            crown(tn, dom)
            t = min(_timed(lambda tn=tn, dom=dom: crown(tn, dom)) for _ in range(3 if quick else 7))
            rate = flops_of_crown(tn, dom) / t / 1e9
            rows.append([f"CROWN all layers, {name}, torch {prec.value}, 1 thread", f"{t * 1000:.0f} ms",
                         f"{rate:.2f}", f"{rate / numpy_rate:.2f}"])
    return rows


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="every 6th VNN-COMP instance, 10 images")
    args = parser.parse_args()
    from optcert.threads import limit_threads

    limit_threads(1)
    per_instance, wrong = [], []
    for fam, net, problem, expected in problems(args.quick):
        r = bound_instance(problem)
        if expected == "" and r[BoundMethod.ALPHA_CROWN.value][1] > 0:
            attack = verify(problem, "attack", 30.0)
            expected = "sat" if attack.verdict.value == "falsified" else "pgd-safe"
        for m in METHODS:
            if r[m.value][1] > 0 and expected == "sat":
                wrong.append((problem.name, m.value))
        per_instance.append({"family": fam, "network": net, "instance": problem.name, "expected": expected,
                             **{f"{m.value}_s": round(r[m.value][0], 4) for m in METHODS},
                             **{f"{m.value}_bound": r[m.value][1] for m in METHODS},
                             "unstable": "/".join(map(str, r["unstable"]))})
    write_csv(per_instance)
    record("bounds", report(per_instance, wrong, gflops(args.quick), args.quick))


def write_csv(rows: list[dict]) -> None:
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "bounds_instances.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def report(rows: list[dict], wrong, flop_rows, quick: bool) -> str:
    fam_rows, net_rows = [], []
    by_fam = collections.defaultdict(list)
    by_net = collections.defaultdict(list)
    for r in rows:
        by_fam[r["family"]].append(r)
        by_net[r["network"]].append(r)
    for fam, rs in by_fam.items():
        line = [fam, len(rs), sum(r["expected"] == "unsat" for r in rs)]
        for m in METHODS:
            line += [sum(r[f"{m.value}_bound"] > 0 for r in rs), round(sum(r[f"{m.value}_s"] for r in rs), 2)]
        fam_rows.append(line)
    for net, rs in by_net.items():
        if len(rs) < 2 and rs[0]["family"] == "acasxu":
            continue
        unstable = np.mean([[int(v) for v in r["unstable"].split("/")] for r in rs], axis=0)
        line = [net, len(rs)]
        for m in METHODS:
            line += [f"{statistics.median(r[f'{m.value}_bound'] for r in rs):.3g}",
                     f"{1000 * statistics.mean(r[f'{m.value}_s'] for r in rs):.1f}"]
        net_rows.append(line + ["/".join(f"{u:.0f}" for u in unstable)])
    head = ["family", "instances", "unsat (known)"] + [f"{m.value} {w}" for m in METHODS for w in ("proved", "s")]
    nhead = ["network", "instances"] + [f"{m.value} {w}" for m in METHODS for w in ("median bound", "mean ms")]
    return "\n\n".join([
        f"# Bounds benchmark (issue 3): IBP, CROWN, alpha-CROWN ({SETTINGS.iterations} Adam steps)"
        f"{' — quick' if quick else ''}",
        f"Machine: {machine()}",
        "salman_mnist: the 30 shared MNIST test images, correctly classified ones only; NOR at eps 0.02, "
        "ADV 0.1 and LPD 0.1 at eps 0.1; expected verdicts from PGD where alpha-CROWN proves.",
        "## Proved per family (certified lower bound > 0), with summed seconds\n" + markdown_table(head, fam_rows),
        "## Per network: median final bound, mean time, mean unstable neurons per layer (CROWN)\n"
        + markdown_table(nhead + ["unstable/layer"], net_rows),
        "## CROWN backward pass throughput against numpy matmul on this machine\n"
        + markdown_table(["kernel", "time", "GFLOP/s", "ratio to numpy"], flop_rows),
        f"Wrong verdicts: {len(wrong)} {wrong if wrong else ''}",
        "Per-instance figures: bench/results/bounds_instances.csv",
    ])


if __name__ == "__main__":
    main()
