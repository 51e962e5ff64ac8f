"""Convolutional nets with pooling, side by side with alpha-beta-CROWN (issue 14, general networks).

No shared family has a convolution or a pool, so this script makes two small MNIST CNNs itself,
trained (seed 0, 3 epochs of Adam) on images 0–7999 of the shared MNIST test split:
* `maxpool`: conv 8@3×3 → ReLU → max-pool 2 → conv 16@3×3 → ReLU → max-pool 2 → 64 → 10
  (16,528 ReLUs once the pools are written with ReLUs, ir/decompose.py);
* `avgleaky`: conv 8@4×4/2 → LeakyReLU 0.1 → conv 16@4×4/2 → ReLU → avg-pool 2 (ceil) → 10;
* `decoder` (with `--kinds decoder`): conv 8@4×4/2 → ReLU → transposed conv 4@2×2/2 → ReLU →
  bilinear resize ×0.5 → conv 8@3×3/2 → ReLU → 10 (ConvTranspose and Resize in the ONNX file).
Their properties: L∞ robustness of images 8000, 8001, … at `--eps` (VNN-LIB written here, as the
VNN-COMP mnistfc properties are: any other class scoring at least the label's is a violation).
Each tool runs every instance in a fresh process through its VNN-COMP entry (bench/peers.py:
optcert `vnncomp`, alpha-beta-CROWN `abcrown.py` with its default configuration), interleaved per
instance, one BLAS/OpenMP thread. No ground truth: a PROVED against a FALSIFIED is reported as a
conflict. The networks and properties are written to bench/results/cnn/ (not committed; the
script rebuilds them identically), the records to bench/results/cnn_instances.csv (resumable) and
the table to bench/results/cnn.md.

    ABCROWN_PYTHON=... ABCROWN_DIR=... python bench/cnn.py [--images 6] [--eps 0.02] [--cap 60]
"""
from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import RESULTS, ROOT, append_row, markdown_table, record  # noqa: E402
from peers import FIELDS, available, load, run_files, solved, summary  # noqa: E402

MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
OUT = RESULTS / "cnn"
KINDS = ("maxpool", "avgleaky", "decoder")


def mnist() -> tuple[np.ndarray, np.ndarray]:
    x = np.frombuffer(gzip.open(MNIST / "t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
    y = np.frombuffer(gzip.open(MNIST / "t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
    return x.reshape(-1, 1, 28, 28) / 255.0, y.astype(np.int64)


def make(kind: str):
    import torch.nn as nn

    if kind == "maxpool":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))
    if kind == "decoder":
        return nn.Sequential(nn.Conv2d(1, 8, 4, stride=2, padding=1), nn.ReLU(), nn.ConvTranspose2d(8, 4, 2, stride=2),
                             nn.ReLU(), nn.Upsample(scale_factor=0.5, mode="bilinear"), nn.Conv2d(4, 8, 3, stride=2),
                             nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    return nn.Sequential(nn.Conv2d(1, 8, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
                         nn.Conv2d(8, 16, 4, stride=2, padding=1), nn.ReLU(), nn.AvgPool2d(2, ceil_mode=True),
                         nn.Flatten(), nn.Linear(16 * 4 * 4, 10))


def build(kind: str, x: np.ndarray, y: np.ndarray) -> Path:
    """Train `kind` (seed 0) on images 0–7999 and export it to ONNX, unless already there."""
    path = OUT / f"mnist_{kind}.onnx"
    if path.is_file():
        return path
    import torch

    torch.manual_seed(0)
    model = make(kind)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    xt, yt = torch.tensor(x[:8000], dtype=torch.float32), torch.tensor(y[:8000])
    for _ in range(3):
        for idx in torch.randperm(8000).split(64):
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.tensor(x[8000:], dtype=torch.float32)).argmax(1).numpy() == y[8000:]).mean()
    print(f"{kind}: accuracy {100 * acc:.1f}% on images 8000–9999", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(path), dynamo=False, opset_version=13)
    return path


def property_file(image: np.ndarray, label: int, eps: float, path: Path) -> Path:
    """L∞ ball of radius eps around `image`, clipped to [0, 1]; violated when another class ≥ label's."""
    lo, hi = np.clip(image.ravel() - eps, 0, 1), np.clip(image.ravel() + eps, 0, 1)
    lines = [f"(declare-const X_{i} Real)" for i in range(lo.size)] + [f"(declare-const Y_{j} Real)" for j in range(10)]
    for i, (a, b) in enumerate(zip(lo, hi)):
        lines += [f"(assert (>= X_{i} {a:.9f}))", f"(assert (<= X_{i} {b:.9f}))"]
    lines.append("(assert (or " + " ".join(f"(and (>= Y_{j} Y_{label}))" for j in range(10) if j != label) + "))")
    path.write_text("\n".join(lines) + "\n")
    return path


def conflicts(rows: list[dict]) -> list[str]:
    by: dict[str, set] = {}
    for r in rows:
        if solved(r):
            by.setdefault(r["instance"], set()).add(r["verdict"])
    return sorted(name for name, verdicts in by.items() if len(verdicts) > 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--eps", type=float, default=0.02)
    ap.add_argument("--cap", type=float, default=60.0)
    ap.add_argument("--tools", nargs="+", default=["optcert", "alpha-beta-CROWN"])
    ap.add_argument("--name", default="cnn")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS[:2]), choices=KINDS)
    args = ap.parse_args()
    why = available()
    tools = [t for t in args.tools if not why.get(t)]
    x, y = mnist()
    nets = {kind: build(kind, x, y) for kind in args.kinds}
    csv_path = RESULTS / f"{args.name}_instances.csv"
    rows = load(csv_path)
    have = {(r["instance"], r["tool"]) for r in rows}
    names = []
    for i in range(args.images):
        index = 8000 + i
        prop = property_file(x[index], int(y[index]), args.eps, OUT / f"img{index}_eps{args.eps:g}.vnnlib")
        for j, (kind, onnx) in enumerate(nets.items()):
            name = f"{kind}-img{index}-eps{args.eps:g}"
            names.append(name)
            order = tools[(i + j) % len(tools):] + tools[:(i + j) % len(tools)]
            for tool in order:
                if (name, tool) in have:
                    continue
                r = run_files(tool, "cnn", onnx, prop, args.cap, name, "unknown")
                append_row(csv_path, FIELDS, r)
                rows.append(r)
                print(r, flush=True)
    mine = [r for r in rows if r["instance"] in names]
    text = summary(mine, tools, {t: why[t] for t in args.tools})
    text = text.replace("# Complete verification side by side (issue 14)",
                        f"# CNNs with pooling side by side (bench/cnn.py, eps {args.eps:g})")
    text = text.replace(" (seeded sample)", f" (images 8000–{8000 + args.images - 1} × {len(nets)} nets)")
    stopped = [r for r in mine if str(r["note"]).startswith("no result file")]
    if stopped:   # the tool's own last error line (run_files keeps it)
        text += "\n\nNo result file (the tool stopped with an error):\n\n" + "\n".join(
            f"- {r['tool']} on {r['instance']}: {str(r['note']).removeprefix('no result file').lstrip(': ') or '?'}"
            for r in stopped)
    clash = conflicts(mine)
    text += "\n\n" + (markdown_table(["conflicting verdicts"], [[c] for c in clash]) if clash
                      else "No conflicting verdicts (no ground truth here: wrong answers are counted as conflicts).")
    record(args.name, text)


if __name__ == "__main__":
    main()
