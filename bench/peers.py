"""Issue 14 benchmark: optcert side by side with nnenum and alpha-beta-CROWN on a seeded sample of the
shared ACAS Xu + mnistfc instances, interleaved per instance, each tool in a fresh process through
its own VNN-COMP entry (start-up included), one thread for BLAS/OpenMP.

Peers are found, never installed, by this script (bench/install_peers.sh installs them from their
public source into scratch venvs and prints the variables below):
* nnenum — `NNENUM_PYTHON`: a Python that can `import nnenum` (e.g. a venv with nnenum installed
  from its public repository); run as `python -m nnenum.nnenum NET PROP TIMEOUT RESULT` with
  OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1, as its vnncomp_scripts/run_instance.sh does;
* alpha-beta-CROWN — `ABCROWN_PYTHON` (a Python with torch + auto_LiRPA and its requirements) and
  `ABCROWN_DIR` (its `complete_verifier` folder); run as `abcrown.py --config C --device cpu`
  with its own competition configs (ACAS Xu: vnncomp21/acasxu.yaml; mnistfc: vnncomp22/
  mnistfc_small.yaml for 256x2, mnistfc.yaml otherwise — the mapping of its vnncomp_main.py).
A peer whose variable is unset or whose files are missing is skipped with a message.

Each finished (instance, tool) record is appended at once to bench/results/peers_instances.csv (a
rerun resumes); the table (bench/results/peers.md) gives per tool: solved (and solved within the
limit + 5% or 1 s), wrong answers, Σ and median wall over the instances every tool solved, and Σ CPU
seconds of the tool's processes; the load average is recorded beside each record.

    NNENUM_PYTHON=... ABCROWN_PYTHON=... ABCROWN_DIR=... python bench/peers.py [--acas 20 --mnist 12 --seed 0]
                                                    [--name peers]  (results under that name)
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCHMARKS, RESULTS, ROOT, append_row, instances, machine, markdown_table, record  # noqa: E402

FIELDS = ["family", "instance", "expected", "tool", "verdict", "wall", "cpu", "timeout", "load", "note"]
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
VERDICTS = {"unsat": "proved", "holds": "proved", "sat": "falsified", "violated": "falsified"}


def optcert_cmd(onnx: Path, vnnlib: Path, result: Path, timeout: float, family: str) -> list[str]:
    return [sys.executable, "-m", "optcert.cli", "vnncomp", str(onnx), str(vnnlib), str(result), f"{timeout:g}"]


def nnenum_cmd(onnx: Path, vnnlib: Path, result: Path, timeout: float, family: str) -> list[str]:
    return [os.environ["NNENUM_PYTHON"], "-m", "nnenum.nnenum", str(onnx), str(vnnlib), f"{timeout:g}", str(result)]


def abcrown_config(family: str, onnx: Path) -> str | None:
    """Its competition config for the shared families; None (its defaults) for other networks."""
    if family not in ("acasxu", "mnistfc"):
        return None
    if family == "acasxu":
        return "exp_configs/vnncomp21/acasxu.yaml"
    return "exp_configs/vnncomp22/mnistfc_small.yaml" if "256x2" in onnx.name else "exp_configs/vnncomp22/mnistfc.yaml"


def abcrown_cmd(onnx: Path, vnnlib: Path, result: Path, timeout: float, family: str) -> list[str]:
    folder = Path(os.environ["ABCROWN_DIR"])
    config = abcrown_config(family, onnx)
    if config is None:        # its defaults: it still needs a config file to start
        default = result.parent / "abcrown_default.yaml"
        default.write_text("general:\n  device: cpu\n")
    return [os.environ["ABCROWN_PYTHON"], str(folder / "abcrown.py"),
            "--config", str(folder / config) if config else str(default), "--onnx_path", str(onnx),
            "--vnnlib_path", str(vnnlib), "--results_file", str(result),
            "--timeout", f"{timeout:g}", "--device", "cpu"]


#: the instances issue 14 names (peers solved them, optcert bnb did not)
ISSUE_CASES = ("ACASXU_run2a_3_5_batch_2000-prop_1", "ACASXU_run2a_3_7_batch_2000-prop_1",
               "ACASXU_run2a_2_9_batch_2000-prop_1", "mnist-net_256x2-prop_0_0.05", "mnist-net_256x2-prop_6_0.03")
TOOLS = {"optcert": optcert_cmd, "nnenum": nnenum_cmd, "alpha-beta-CROWN": abcrown_cmd}


def available() -> dict[str, str]:
    """tool → '' if it can run here, else why not."""
    why = {"optcert": ""}
    nn = os.environ.get("NNENUM_PYTHON", "")
    why["nnenum"] = "" if nn and Path(nn).is_file() else "set NNENUM_PYTHON to a Python with nnenum installed"
    ab_py, ab_dir = os.environ.get("ABCROWN_PYTHON", ""), os.environ.get("ABCROWN_DIR", "")
    ok = ab_py and Path(ab_py).is_file() and (Path(ab_dir) / "abcrown.py").is_file()
    why["alpha-beta-CROWN"] = "" if ok else "set ABCROWN_PYTHON and ABCROWN_DIR (its complete_verifier folder)"
    return why


def sample(acas: int, mnist: int, seed: int, extra: tuple[str, ...] = ()) -> list[tuple[str, dict]]:
    """`acas` + `mnist` instances drawn with `seed`, then the named `extra` ones not drawn."""
    rng = random.Random(seed)
    rows = [("acasxu", r) for r in rng.sample(instances("acasxu"), acas)]
    rows += [("mnistfc", r) for r in rng.sample(instances("mnistfc"), mnist)]
    drawn = {r["instance"] for _, r in rows}
    for family in ("acasxu", "mnistfc"):
        rows += [(family, r) for r in instances(family) if r["instance"] in extra and r["instance"] not in drawn]
    return rows


def run_tool(tool: str, family: str, row: dict, cap: float) -> dict:
    """One shared instance (a row of its family's verdicts.csv) at min(its timeout, cap)."""
    return run_files(tool, family, BENCHMARKS / family / row["onnx"], BENCHMARKS / family / row["vnnlib"],
                     min(float(row["timeout_s"]), cap), row["instance"], row["expected"])


def run_files(tool: str, family: str, onnx: Path, vnnlib: Path, timeout: float, instance: str,
              expected: str) -> dict:
    """One run in a fresh process, killed at 1.5 × timeout + 15 s; wall and child CPU seconds."""
    env = {**os.environ, **ONE_THREAD}
    if tool == "optcert":   # OPTCERT_SRC: a snapshot of the tree to measure (default: this one)
        env["PYTHONPATH"] = os.environ.get("OPTCERT_SRC", str(ROOT))
    if tool == "alpha-beta-CROWN":
        env["PYTHONPATH"] = str(Path(os.environ["ABCROWN_DIR"]).parent)
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.txt"
        cmd = TOOLS[tool](onnx, vnnlib, result, timeout, family)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        note = ""
        errors = Path(tmp) / "stderr.txt"
        try:
            with errors.open("wb") as err:
                subprocess.run(cmd, env=env, cwd=tmp if tool != "alpha-beta-CROWN" else os.environ["ABCROWN_DIR"],
                               stdout=subprocess.DEVNULL, stderr=err, timeout=1.5 * timeout + 15)
        except subprocess.TimeoutExpired:
            note = "killed"
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        text = result.read_text().strip().splitlines() if result.is_file() else []
        if not text and not note:   # the tool stopped without an answer: keep its last error line
            note = "no result file" + last_error(errors.read_text(errors="replace"))
    verdict = VERDICTS.get(text[0].strip().lower(), "unknown") if text else "unknown"
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"family": family, "instance": instance, "expected": expected, "tool": tool,
            "verdict": verdict, "wall": round(wall, 3), "cpu": round(cpu, 3), "timeout": timeout,
            "load": round(os.getloadavg()[0], 2), "note": note or (text[0] if text else "no result file")}


def last_error(stderr: str) -> str:
    """': <exception line> (<file>:<line>: <code>)' from a Python traceback's end, '' if none."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return ""
    where = ""
    frames = [i for i, line in enumerate(lines) if line.startswith('File "')]
    if frames:
        i = frames[-1]
        m = re.match(r'File "(?P<path>[^"]+)", line (?P<line>\d+)', lines[i])
        code = lines[i + 1] if i + 1 < len(lines) - 1 else ""
        if m:
            where = f" ({'/'.join(Path(m['path']).parts[-2:])}:{m['line']}: {code})"
    return f": {lines[-1][:200]}{where}"


def wrong(r: dict) -> bool:
    return (r["expected"], r["verdict"]) in (("sat", "proved"), ("unsat", "falsified"))


def solved(r: dict) -> bool:
    return r["verdict"] in ("proved", "falsified") and not wrong(r)


def within(r: dict) -> bool:
    """Answered within the limit + max(5%, 1 s)."""
    t = float(r["timeout"])
    return solved(r) and float(r["wall"]) <= t + max(0.05 * t, 1.0)


def summary(rows: list[dict], tools: list[str], skipped: dict[str, str]) -> str:
    by = {(r["instance"], r["tool"]): r for r in rows}
    names = sorted({r["instance"] for r in rows})
    complete = [n for n in names if all((n, t) in by for t in tools)]
    common = [n for n in complete if all(solved(by[(n, t)]) for t in tools)]
    table = []
    for t in tools:
        rs = [by[(n, t)] for n in complete]
        walls = [float(by[(n, t)]["wall"]) for n in common]
        cpus = [float(by[(n, t)]["cpu"]) for n in common]
        table.append([t, f"{sum(map(solved, rs))} / {len(rs)}", sum(map(within, rs)), sum(map(wrong, rs)),
                      round(sum(walls), 1), round(statistics.median(walls), 2) if walls else "",
                      round(sum(cpus), 1), round(sum(float(r["cpu"]) for r in rs), 1)])
    per = [[n] + [f"{by[(n, t)]['verdict']} {float(by[(n, t)]['wall']):.1f} ({float(by[(n, t)]['cpu']):.1f})"
                  for t in tools] for n in complete]
    loads = [float(r["load"]) for r in rows]
    text = ["# Complete verification side by side (issue 14)", f"Machine: {machine()}",
            f"{len(complete)} instances (seeded sample), each tool in a fresh process with its VNN-COMP entry, "
            f"interleaved per instance; timeout min(competition, cap); load average "
            f"{min(loads, default=0):.1f}–{max(loads, default=0):.1f} during the runs.",
            markdown_table(["tool", "solved", "within limit", "wrong", f"Σ wall on the {len(common)} all solved",
                            "median wall there", "Σ CPU there", "Σ CPU s (all)"], table),
            "## Per instance (verdict, wall s (CPU s))\n" + markdown_table(["instance"] + tools, per)]
    text += [f"Skipped {t}: {why}" for t, why in skipped.items() if why]
    return "\n\n".join(text)


def load(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path))) if path.is_file() else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acas", type=int, default=20)
    ap.add_argument("--mnist", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cap", type=float, default=60.0)
    ap.add_argument("--tools", nargs="+", default=list(TOOLS))
    ap.add_argument("--extra", nargs="*", default=list(ISSUE_CASES), help="named instances added to the sample")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--name", default="peers", help="results as bench/results/NAME.md and NAME_instances.csv")
    args = ap.parse_args()
    why = available()
    tools = [t for t in args.tools if not why.get(t)]
    for t in args.tools:
        if why.get(t):
            print(f"skipping {t}: {why[t]}", flush=True)
    csv_path = RESULTS / f"{args.name}_instances.csv"
    rows = load(csv_path)
    have = {(r["instance"], r["tool"]) for r in rows}
    if not args.report_only:
        for i, (family, row) in enumerate(sample(args.acas, args.mnist, args.seed, tuple(args.extra))):
            order = tools[i % len(tools):] + tools[:i % len(tools)]   # rotate who goes first
            for tool in order:
                if (row["instance"], tool) in have:
                    continue
                r = run_tool(tool, family, row, args.cap)
                append_row(csv_path, FIELDS, r)
                rows.append(r)
                print(r, flush=True)
    names = {row["instance"] for _, row in sample(args.acas, args.mnist, args.seed, tuple(args.extra))}
    record(args.name, summary([r for r in rows if r["instance"] in names], tools, {t: why[t] for t in args.tools}))


if __name__ == "__main__":
    main()
