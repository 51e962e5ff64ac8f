"""Start-up time of the command line: `optcert --help`, `optcert info NET` and a trivial `interval`
verdict (`optcert verify NET PROP --engine interval -q`), the default engine's verdict (which imports torch and
onnx: the start-up every verification run pays), each run N times as a fresh process,
interleaved, reporting the median wall and CPU seconds (children's user + system time) and the load
average. Targets (issue 15): --help and info under 0.3 s, the trivial verdict under 1 s wall.
For reference, measured on this machine by an interleaved run (shared/MEASURED.md): nnenum starts in
3.5 s and alpha-beta-CROWN in 12.6 s; optcert before issue 15 took 4.5–5.3 s for the trivial verdict.

    python bench/startup.py [--repeat 7] [--baseline DIR] [--out bench/results/startup.md]

`--baseline DIR`: a checkout of an earlier optcert (e.g. `git archive e92bd3f | tar -x -C DIR`), run
interleaved with this one on the same commands, so the ratio is measured under the same load.
`--baseline-python PY`: the baseline runs under another interpreter (an environment with other
dependency versions, e.g. ml_dtypes 0.7.0 against the pinned < 0.7), this checkout's code.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "optcert" / "examples" / "acasxu"
NET = EXAMPLE / "ACASXU_run2a_2_1_batch_2000.onnx"
COMMANDS = {
    "optcert --help": ["--help"],
    "optcert info NET": ["info", str(NET)],
    "optcert verify NET PROP --engine interval -q": ["verify", str(NET), str(EXAMPLE / "prop_3.vnnlib"),
                                                      "--engine", "interval", "-q"],
    "optcert verify NET PROP -q (auto)": ["verify", str(NET), str(EXAMPLE / "prop_3.vnnlib"), "-q"],
    "python -c pass (interpreter alone)": None,
}
TARGETS = {"optcert --help": 0.3, "optcert info NET": 0.3, "optcert verify NET PROP --engine interval -q": 1.0}
REFERENCE = {"nnenum (MEASURED.md)": 3.5, "alpha-beta-CROWN (MEASURED.md)": 12.6,
             "optcert before issue 15, trivial verdict (MEASURED.md)": 4.5}


def run_once(argv: list[str] | None, root: Path = ROOT, python: str = sys.executable) -> tuple[float, float]:
    """(wall, cpu) seconds of one fresh process of `python` running the optcert found at `root`."""
    cmd = [python, "-c", "pass"] if argv is None else [python, "-m", "optcert.cli", *argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "startup.md")
    p.add_argument("--baseline", type=Path, help="an earlier optcert checkout, run interleaved as the baseline")
    p.add_argument("--baseline-python", help="the baseline's interpreter (default: this one)")
    args = p.parse_args()
    roots = {"": (ROOT, sys.executable)}
    if args.baseline or args.baseline_python:
        roots[" (baseline)"] = ((args.baseline or ROOT).resolve(), args.baseline_python or sys.executable)
    samples: dict[str, list[tuple[float, float]]] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(args.repeat):                 # interleaved: every command (and baseline) once per round
        for name, argv in COMMANDS.items():
            for tag, (root, python) in roots.items():
                if argv is None and tag:
                    continue
                samples.setdefault(name + tag, []).append(run_once(argv, root, python))
        loads.append(os.getloadavg()[0])
    lines = [f"# Start-up of the command line ({args.repeat} fresh processes each, interleaved)", "",
             f"Load average (1 min) during the run: {min(loads):.2f}–{max(loads):.2f} on {os.cpu_count()} cores. "
             "Median and minimum over the runs; CPU = user + system seconds of the process.", "",
             "| command | median wall s | min wall s | median CPU s | target (wall) | met |",
             "|---|---|---|---|---|---|"]
    for name, runs in samples.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        target = TARGETS.get(name)
        base = samples.get(name + " (baseline)")
        ratio = f" ({statistics.median(walls) / statistics.median([w for w, _ in base]):.2f}× baseline wall)" \
            if base else ""
        met = "" if target is None else ("yes" if statistics.median(walls) < target else
                                         f"no (min {min(walls):.2f})")
        lines.append(f"| `{name}` | {statistics.median(walls):.3f} | {min(walls):.3f} | {statistics.median(cpus):.3f} "
                     f"| {'' if target is None else f'< {target:g}'} | {met}{ratio} |")
    lines += ["", "Reference start-up times (not measured here): " +
              "; ".join(f"{k}: {v:g} s" for k, v in REFERENCE.items()), ""]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
