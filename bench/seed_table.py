"""Issue 13: the seed's table (Chiu & Zhang 2023 / Salman et al. 2019 Table 1) on real MNIST.

The first N test images of the MNIST IDX files (scaled by 1/255) at the seed's radii —
ADV-MLP-B 0.1 at eps 0.1; NOR-MLP-B at 0.02 / 0.03 / 0.05; LPD-MLP-B 0.1 at 0.1 — each image one
L∞ property against every other class, run by the gap study's sweep (optcert.study.gap +
optcert.sweeps: one results store, each finished run written at once, a rerun resumes). Per image:
PGD, LP, LP-ALL, BM (and SDP where asked: the full SDP does not converge at this size on CPU) and
the exact verdict (bnb); then each method's robust-error upper bound beside Salman et al.'s Table 1
(anchors_table1.csv). The same command on more images or more machines (--dask / --scheduler)
extends the table.

    python bench/seed_table.py --images 100 --only ADV_MLP_B_0.1 [--timeout 300] [--methods pgd,lp,lp-all,bm,bnb]
        [--dask --workers 2]
    python bench/seed_table.py --report-only --extra-runs bench/results/seed_table/adv_open/instances.csv \
        --extra-runs bench/results/seed_table/bnb_bm/adv53.csv ...   (the longer runs of hard_images.md)
"""
from __future__ import annotations

import argparse
import csv
import gzip
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import BENCHMARKS, RESULTS, machine  # noqa: E402

MNIST = BENCHMARKS.parent / "datasets" / "mnist"
OUT = RESULTS / "seed_table"
RUNS = (("ADV_MLP_B_0.1.onnx", 0.1), ("NOR_MLP_B.onnx", 0.02), ("NOR_MLP_B.onnx", 0.03), ("NOR_MLP_B.onnx", 0.05),
        ("LPD_MLP_B_0.1.onnx", 0.1))


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzipped or not): big-endian magic (0, 0, type 0x08 = ubyte, ndim), dims, data."""
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw[4:4 + 4 * ndim], dtype=">u4").astype(int)
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def mnist_npz(folder: Path, count: int, out: Path) -> Path:
    """The first `count` test images (N, 784) in [0, 1] and labels, as the gap study reads them."""
    images = read_idx(next(folder.glob("t10k-images-idx3-ubyte*")))[:count]
    labels = read_idx(next(folder.glob("t10k-labels-idx1-ubyte*")))[:count]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, X=(images.reshape(len(images), -1) / 255.0).astype(np.float64), y=labels.astype(np.int64))
    return out


def main() -> None:
    from optcert.threads import limit_threads

    limit_threads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--mnist", type=Path, default=MNIST)
    parser.add_argument("--only", default="", help="run only nets whose file name contains this (e.g. ADV)")
    parser.add_argument("--eps", default="", help="only these radii, e.g. 0.1")
    parser.add_argument("--methods", default="pgd,lp,lp-all,bm,bnb")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--option", "-o", action="append", default=[], metavar="METHOD.KEY=VALUE")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--extra-runs", type=Path, action="append", default=[], metavar="CSV",
                        help="per-image CSV of further runs on the same images (e.g. `optcert gap --out DIR`'s "
                             "instances.csv of longer exact runs on the open ones), for the known bracket")
    parser.add_argument("--dask", action="store_true", help="run the sweep on a local dask cluster")
    parser.add_argument("--workers", type=int, default=2, help="dask workers (with --dask)")
    args = parser.parse_args()
    store = OUT / "runs.sqlite"
    if not args.report_only:
        _sweep(args, store)
    from optcert.study.gap import parse_methods

    _report(store, set(parse_methods(args.methods)), args.extra_runs)


def _sweep(args, store: Path) -> None:
    from optcert.options import parse_pairs
    from optcert.study.gap import gap_tasks, linf_properties, parse_methods, split_overrides
    from optcert.sweeps.run import SweepSettings, run_sweep
    from optcert.sweeps.store import ResultStore
    from optcert.sweeps.types import Executor

    images = mnist_npz(args.mnist, args.images, OUT / f"mnist_test_first{args.images}.npz")
    wanted = {float(e) for e in args.eps.split(",") if e}
    methods = parse_methods(args.methods)
    # verdicts are what the table counts: bm may stop a row at any certified proof (BmOptions.proof_stop)
    overrides = split_overrides({"bm.proof_stop": "true", **parse_pairs(args.option)})
    with ResultStore(store) as db:
        for net, eps in RUNS:
            if args.only not in net or (wanted and eps not in wanted):
                continue
            props = linf_properties([str(BENCHMARKS / "salman_mnist" / net)], str(images), range(args.images), [eps])
            # image by image, every method: an interrupted run leaves whole rows of the table
            tasks = [t for p in props for t in gap_tasks([p], methods, args.timeout, overrides)]
            executor = Executor.DASK if args.dask else Executor.SERIAL
            summary = run_sweep(tasks, db, SweepSettings(executor=executor, workers=args.workers, progress=False))
            print(f"{net} eps {eps}: {summary.total} runs, {summary.skipped} stored before, {summary.done} done, "
                  f"{summary.failed} failed, {summary.timed_out} timed out, {summary.seconds:.0f} s", flush=True)


def _report(store: Path, methods: set, extra: list[Path]) -> None:
    from optcert.study.report import load_instances, read_anchors, table1, write_csv
    from optcert.sweeps.store import ResultStore

    with ResultStore(store) as db:
        instances = load_instances(db)
    complete = [replace(inst, runs={m: r for m, r in inst.runs.items() if m in methods})
                for inst in instances if methods <= set(inst.runs)]   # images every asked method finished
    print(f"{len(complete)} of {len(instances)} instances have every method ({', '.join(m.value for m in methods)})")
    instances = complete
    ran = {(inst.network, f"{inst.eps:g}") for inst in instances}
    kept_csv, kept_rows = _earlier(ran)
    write_csv(instances, OUT / "instances.csv")
    if kept_csv:
        with open(OUT / "instances.csv", "a", newline="") as f:
            csv.writer(f).writerows(kept_csv)
    anchors = read_anchors(BENCHMARKS / "salman_mnist" / "anchors_table1.csv")
    table = table1(instances, anchors).split("\n")
    text = "\n\n".join(["# The seed's table on real MNIST (issue 13)", f"Machine: {machine()}",
                        "Adversarial error bounds (%) over the images run so far (ours) beside Salman et al.'s "
                        "Table 1 (theirs: the full test set). Per image: bench/results/seed_table/instances.csv.",
                        "\n".join(table[:2] + kept_rows + table[2:]),
                        "Known bracket: an image is non-robust once any method found a counterexample (re-checked "
                        "in float64), robust once any method proved it (bnb, or a relaxation's certificate); "
                        "exact robust error in [falsified, 100 − proved] %. bm − exact: bm's upper bound minus "
                        "the exact one, at its best and worst over the open images."
                        + "".join(f" With {p}." for p in extra),
                        known_bracket([OUT / "instances.csv", *extra])])
    (OUT / "table.md").write_text(text + "\n")
    print(text)


def known_bracket(paths: list[Path]) -> str:
    """Per (network, eps) of the per-image CSVs: images, falsified and proved by any method, open,
    the exact robust error's bracket (%), bm's upper bound (%) and its distance to the bracket."""
    from optcert.outputs import markdown_table

    verdicts: dict[tuple[str, str], dict[str, set]] = {}
    for path in paths:
        for r in csv.DictReader(open(path)):
            if r["target"] != "all" or r["status"] != "done":
                continue
            image = verdicts.setdefault((r["network"], f"{float(r['eps']):g}"), {}).setdefault(r["instance"], set())
            image.add(r["verdict"] if r["method"] != "bm" else f"bm-{r['verdict']}")
    rows = []
    for (network, eps), images in sorted(verdicts.items()):
        n = len(images)
        falsified = sum(bool({"falsified", "bm-falsified"} & v) for v in images.values())
        proved = sum(bool({"proved", "bm-proved"} & v) for v in images.values())
        bm_open = sum("bm-proved" not in v for v in images.values())
        pct = 100.0 / n
        rows.append([network, eps, n, falsified, proved, n - falsified - proved,
                     f"[{pct * falsified:.1f}, {pct * (n - proved):.1f}]", f"{pct * bm_open:.1f}",
                     f"{pct * (bm_open - (n - proved)):.1f} to {pct * (bm_open - falsified):.1f}"])
    return markdown_table(["network", "eps", "images", "falsified", "proved", "open", "exact robust error %",
                           "bm ub %", "bm − exact (points)"], rows)


def _earlier(ran: set) -> tuple[list[list[str]], list[str]]:
    """The per-image CSV records and table rows of an earlier report for (network, eps) groups that
    are not in this machine's store (the store is local; the report files are in the repository), so
    a run on another machine or a fresh checkout adds to the table instead of replacing it."""
    def other(network: str, eps: str = "") -> bool:
        try:
            return (network, f"{float(eps):g}") not in ran
        except ValueError:          # a header or separator cell, or no eps cell
            return False

    records: list[list[str]] = []
    rows: list[str] = []
    if (OUT / "instances.csv").is_file():
        records = [r for r in list(csv.reader(open(OUT / "instances.csv")))[1:] if other(r[0], r[2])]
    if (OUT / "table.md").is_file():
        table = open(OUT / "table.md").read().split("\nKnown bracket:")[0]     # Table 1's rows only
        rows = [ln for ln in table.splitlines()
                if ln.startswith("| ") and other(*[c.strip() for c in ln.strip("|").split("|")][:2])]
    return records, rows


if __name__ == "__main__":
    main()
