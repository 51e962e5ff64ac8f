"""Issue 13 (5): branch and bound with BM bounding against CROWN and LP bounding on the hardest
instances — the seed network's gap images (ADV_MLP_B_0.1, eps 0.1: the LP leaves rows open, BnB
decides them). Per (image, bounding): verdict, domains bounded, CPU and wall seconds, in a fresh
forked process with one thread, interleaved per image; each record is appended to
bench/results/bnb_bm.csv at once (a rerun skips what is there).

    python bench/bnb_bm.py [--images 0,5,12] [--timeout 900] [--boundings crown,lp,bm]
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, markdown_table, record  # noqa: E402
from sdp_seed import problem  # noqa: E402

CSV = RESULTS / "bnb_bm.csv"
FIELDS = ["image", "bounding", "verdict", "bound", "domains", "cpu_s", "wall_s", "load", "stats"]


def _child(image: int, bounding: str, timeout: float, queue) -> None:
    from optcert.threads import limit_threads
    from optcert.verify import verify

    limit_threads(1)
    t, c = time.perf_counter(), time.process_time()
    result = verify(problem(image), "bnb", timeout, {"bounding": bounding, "batch": 8 if bounding == "bm" else 64})
    stats = result.certificate.get("cases", [{}])
    queue.put({"verdict": result.verdict.value, "bound": result.bound, "stats": stats,
               "cpu": time.process_time() - c, "wall": time.perf_counter() - t})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", default="0,5,12")
    parser.add_argument("--boundings", default="crown,lp,bm")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    done = {(r["image"], r["bounding"]) for r in csv.DictReader(open(CSV))} if CSV.is_file() else set()
    for image in [int(i) for i in args.images.split(",")]:
        for bounding in args.boundings.split(","):
            if (str(image), bounding) in done:
                continue
            ctx = mp.get_context("fork")
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(image, bounding, args.timeout, queue))
            proc.start()
            out = queue.get()
            proc.join()
            domains = sum(int(s.get("nodes", 0) or 0) for s in out["stats"])
            new = not CSV.is_file()
            with open(CSV, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=FIELDS)
                if new:
                    w.writeheader()
                w.writerow({"image": image, "bounding": bounding, "verdict": out["verdict"], "bound": out["bound"],
                            "domains": domains, "cpu_s": round(out["cpu"], 1), "wall_s": round(out["wall"], 1),
                            "load": os.getloadavg()[0], "stats": json.dumps(out["stats"], default=str)})
            print(image, bounding, out["verdict"], domains, f"cpu {out['cpu']:.0f}s", flush=True)
    rows = list(csv.DictReader(open(CSV)))
    record("bnb_bm", "\n\n".join([
        "# Branch and bound: BM bounding vs CROWN and LP (issue 13)", f"Machine: {machine()}",
        "ADV_MLP_B_0.1, eps 0.1, gap images of mnist_test_30.npz; one thread; fresh process per run.",
        markdown_table(["image", "bounding", "verdict", "bound", "domains", "CPU s", "wall s", "load"],
                       [[r["image"], r["bounding"], r["verdict"], r["bound"], r["domains"], r["cpu_s"], r["wall_s"],
                         f"{float(r['load']):.1f}"] for r in rows])]))


if __name__ == "__main__":
    main()
