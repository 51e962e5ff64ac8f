"""Runs auto_LiRPA on one network and a batch of boxes and prints timings and bounds as JSON.

Executed by the Python of a separate environment that has auto_LiRPA (bench/kernels.py finds it
through $OPTCERT_AUTOLIRPA_PYTHON), never by optcert's own: it imports neither optcert nor
anything but torch, numpy and auto_LiRPA.

    python autolirpa_runner.py NET_AND_BOXES.npz --dtype float32 --iterations 20 --lr 0.1

The .npz holds W0, b0, W1, b1, … (a plain MLP: Linear, ReLU, …, Linear) and `lo`, `hi` (B, n_0).
Printed: {"crown": {...}, "alpha": {...}} with wall and CPU seconds per call (median of the
repeats), the bounds of the last call, and the floating-point operations torch counted.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch


def build(data, dtype):
    layers = []
    k = 0
    while f"W{k}" in data:
        w, b = data[f"W{k}"], data[f"b{k}"]
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        lin.weight.data = torch.tensor(w, dtype=dtype)
        lin.bias.data = torch.tensor(b, dtype=dtype)
        layers += [lin, torch.nn.ReLU()]
        k += 1
    return torch.nn.Sequential(*layers[:-1]).to(dtype)


def timed(fn, min_seconds: float, max_repeats: int, warm: bool = True):
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


def flops(fn, make_input) -> float:
    """Floating-point operations of one call (the input made outside the counter, which cannot
    create the BoundedTensor subclass)."""
    from torch.utils.flop_counter import FlopCounterMode

    xt = make_input()
    try:
        with FlopCounterMode(display=False) as counter:
            fn(xt)
    except RuntimeError:
        return float("nan")
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("npz")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--max-repeats", type=int, default=5)
    parser.add_argument("--methods", default="crown,alpha")
    parser.add_argument("--large", action="store_true", help="no warm-up; no flop count for alpha")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm

    dtype = torch.float32 if args.dtype == "float32" else torch.float64
    data = np.load(args.npz)
    model = build(data, dtype)
    lo, hi = (torch.tensor(data[k], dtype=dtype) for k in ("lo", "hi"))
    x = (lo + hi) / 2
    opts = {"optimize_bound_args": {"iteration": args.iterations, "lr_alpha": args.lr,
                                    "early_stop_patience": 10 ** 6, "fix_interm_bounds": True}}
    bounded = BoundedModule(model, x, bound_opts=opts, device="cpu", verbose=0)

    def make_input():
        return BoundedTensor(x.clone(), PerturbationLpNorm(x_L=lo, x_U=hi))

    def crown(xt=None):
        with torch.no_grad():
            return bounded.compute_bounds(x=(xt if xt is not None else make_input(),), method="CROWN")

    def alpha(xt=None):
        xt = xt if xt is not None else make_input()
        return bounded.compute_bounds(x=(xt,), method="CROWN-Optimized", bound_upper=False)

    result = {}
    for name in args.methods.split(","):
        fn = crown if name == "crown" else alpha
        wall, cpu, out = timed(fn, args.min_seconds, args.max_repeats, warm=not args.large)
        count = not (args.large and name == "alpha")
        entry = {"wall": wall, "cpu": cpu, "flops": flops(fn, make_input) if count else float("nan"),
                 "lower": out[0].detach().double().tolist()}
        if name == "crown":
            entry["upper"] = out[1].detach().double().tolist()
        result[name] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
