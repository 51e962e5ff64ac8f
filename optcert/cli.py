"""The `optcert` command line.

Exit codes: 0 when the command ran (whatever the verdict), 2 for a usage error, and the typed
error's `exit_code` otherwise (3 unreadable file, 4 invalid model, 5 unsupported op, 6 invalid
spec, 7 invalid option, 8 backend unavailable, 9 lowering error), 1 for an internal error,
130 when interrupted. Errors print one line on stderr; `--debug` shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .errors import InvalidOptionError, OptcertError

EXAMPLES = Path(__file__).parent / "examples"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a shape like 1,28,28") from None


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range like 0,1") from None
    return lo, hi


def build_parser() -> argparse.ArgumentParser:
    from .verify import ENGINES, DEFAULT_ENGINE

    p = _Parser(prog="optcert", description="Exact certification and relaxation gaps for ReLU networks.")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    v = sub.add_parser("verify", help="verify a property of a network")
    v.add_argument("network", help="ONNX file (or .pt/.pth torch module with --input-shape)")
    v.add_argument("property", nargs="?", help="VNN-LIB file (or use --image/--eps for robustness)")
    v.add_argument("--engine", default=DEFAULT_ENGINE.value,
                   help=f"one of: {', '.join(e.value for e in ENGINES)} (default {DEFAULT_ENGINE.value})")
    v.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    v.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="engine option, repeatable (see `optcert engines`)")
    v.add_argument("--bounds", help="intermediate bounds for the lp/milp engines: ibp, crown, alpha-crown, "
                   "lp-all, milp (same as -o bounds=...)")
    v.add_argument("--rank", type=int, help="starting rank of the bm engine (same as -o rank=...)")
    v.add_argument("--hidden-boxes", action=argparse.BooleanOptionalAction, default=None,
                   help="quadratic boxes on hidden layers for the sdp/bm engines (default on)")
    v.add_argument("--json", type=Path, help="write the full result as JSON")
    v.add_argument("--vnncomp-result", type=Path, help="write a VNN-COMP result file")
    _problem_arguments(v)
    v.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    v.add_argument("--quiet", "-q", action="store_true", help="print only the verdict")

    i = sub.add_parser("info", help="describe a network")
    i.add_argument("network")
    i.add_argument("--input-shape", type=_shape)

    x = sub.add_parser("export", help="write the lowered MILP/LP problems for any solver")
    x.add_argument("network", help="ONNX file (or .pt/.pth torch module with --input-shape)")
    x.add_argument("property", nargs="?", help="VNN-LIB file (or use --image/--eps for robustness)")
    x.add_argument("--form", default="milp", help="milp (exact big-M, default) or lp (triangle relaxation)")
    x.add_argument("--format", default="mps", help="mps or lp (default mps)")
    x.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    x.add_argument("--bounds", default="crown", help="ibp, fastlin, crown or alpha-crown (default crown)")
    _problem_arguments(x)

    sub.add_parser("solvers", help="list solver backends and whether they run here")
    sub.add_parser("engines", help="list engines and their options")
    d = sub.add_parser("demo", help="run the engines on the bundled ACAS Xu example")
    d.add_argument("--timeout", type=float, default=10.0, help="seconds per engine and property (default 10)")
    for module in COMMAND_MODULES:
        importlib.import_module(module).add_subcommand(sub)
    return p


# Subcommands that live in their own module: each exposes `NAME`, `add_subcommand(sub)` (adds its
# parser under `NAME`) and `run(args) -> int` (exit code; raises OptcertError on bad input).
COMMAND_MODULES: tuple[str, ...] = ("optcert.gap_cli", "optcert.vnncomp", "optcert.sweep_cli", "optcert.bench_cli")


def _problem_arguments(p: argparse.ArgumentParser) -> None:
    """The robustness-problem and torch-model arguments `_problem` reads."""
    p.add_argument("--image", type=Path, help=".npy/.npz image(s) for L-inf robustness")
    p.add_argument("--index", type=int, default=0, help="which image of the file (default 0)")
    p.add_argument("--label", type=int, help="true class (default: the file's label)")
    p.add_argument("--eps", type=float, help="L-inf radius for robustness")
    p.add_argument("--valid-range", type=_range, default=(0.0, 1.0), help="input range, default 0,1")
    p.add_argument("--input-shape", type=_shape, help="input shape for torch models, e.g. 1,28,28")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        commands = {"verify": cmd_verify, "export": cmd_export, "info": cmd_info, "solvers": cmd_solvers,
                    "engines": cmd_engines, "demo": cmd_demo}
        for module in COMMAND_MODULES:
            mod = importlib.import_module(module)
            commands[mod.NAME] = mod.run
        return commands[args.command](args)
    except OptcertError as err:
        if args.debug:
            raise
        sys.stderr.write(f"optcert: error: {err}\n")
        return err.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("optcert: interrupted\n")
        return 130
    except Exception as err:  # a bug: one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"optcert: internal error: {type(err).__name__}: {err} (rerun with --debug)\n")
        return 1


def _problem(args):
    from .io import load_network, pick_image
    from .spec import robustness_problem
    from .vnnlib import read_vnnlib

    net = load_network(args.network, args.input_shape)
    if args.property and args.image:
        raise InvalidOptionError("give either a VNN-LIB property or --image/--eps, not both")
    if args.property:
        return read_vnnlib(args.property).problem(net, name=f"{Path(args.network).stem}:{Path(args.property).stem}")
    if args.image is None or args.eps is None:
        raise InvalidOptionError(f"{args.command} needs a VNN-LIB property, or --image and --eps")
    image, label = pick_image(args.image, args.index, args.label, net.n_inputs)
    return robustness_problem(net, image, label, args.eps, args.valid_range,
                              name=f"{Path(args.network).stem}:{args.image.stem}[{args.index}]@{args.eps:g}")


def _set_threads(n: int) -> None:
    if n < 1:
        raise InvalidOptionError(f"--threads must be at least 1, got {n}")
    from .threads import limit_threads

    limit_threads(n)


def cmd_verify(args) -> int:
    from .options import parse_pairs
    from .progress import progress
    from .verify import verify

    problem = _problem(args)
    _set_threads(args.threads)
    with progress(f"verifying {problem.name} with {args.engine}"):
        options = parse_pairs(args.option)
        for flag in ("bounds", "rank", "hidden_boxes"):
            if getattr(args, flag) is not None:
                options[flag] = getattr(args, flag)
        result = verify(problem, args.engine, args.timeout, options)
    if args.json:
        args.json.write_text(result.to_json())
    if args.vnncomp_result:
        result.write_vnncomp(args.vnncomp_result)
    print(_summary(result) if not args.quiet else result.verdict.value)
    return 0


def cmd_export(args) -> int:
    from .bounds import BoundMethod
    from .export import INDEX, ExportFormat, FormKind, export_problem, parse_choice
    from .progress import progress

    form = parse_choice(FormKind, args.form, "--form")
    fmt = parse_choice(ExportFormat, args.format, "--format")
    bounds = parse_choice(BoundMethod, args.bounds, "--bounds")
    problem = _problem(args)
    _set_threads(1)
    with progress(f"exporting {problem.name} as {form.value} {fmt.value}"):
        paths = export_problem(problem, form, fmt, args.out, bounds)
    for path in [*paths, args.out / INDEX]:
        print(path)
    return 0


def _summary(result) -> str:
    lines = [f"{result.verdict.value.upper()}  {result.problem}  engine={result.engine}  "
             f"bound={result.bound:.6g}  upper={result.upper:.6g}  time={result.seconds:.2f}s",
             f"  reason: {result.reason}"]
    if result.counterexample is not None:
        x = ", ".join(f"{v:.6g}" for v in result.counterexample.x[:8])
        more = " ..." if len(result.counterexample.x) > 8 else ""
        lines.append(f"  counterexample x = [{x}{more}]")
    return "\n".join(lines)


def cmd_info(args) -> int:
    from .io import load_network

    net = load_network(args.network, args.input_shape)
    s = net.summary()
    ops = ", ".join(f"{k} x{v}" for k, v in s.op_counts.items())
    print(f"{net.name}: input {s.input_shape} -> output {s.output_shape}\n"
          f"  ReLU layers: {s.relu_layers}, neurons: {s.neurons}, parameters: {s.parameters}\n"
          f"  ops: {ops}\n  fingerprint: {net.fingerprint()}")
    return 0


def cmd_solvers(args) -> int:
    import solvers

    for name, status in solvers.available().items():
        mark = "yes" if status.available else "no "
        print(f"  {mark}  {name:14s} {status.version:10s} {status.reason}")
    return 0


def cmd_engines(args) -> int:
    import dataclasses

    from .verify import ENGINES

    for engine, entry in ENGINES.items():
        fields = dataclasses.fields(entry.load("options"))
        opts = ", ".join(f"{f.name}={getattr(f.default, 'value', f.default)}" for f in fields) or "-"
        print(f"  {engine.value:12s} {entry.summary}\n  {'':12s} options: {opts}")
    return 0


def cmd_demo(args) -> int:
    from .io import load_network
    from .progress import progress
    from .verify import ENGINES, Engine, verify
    from .vnnlib import read_vnnlib

    engines = [e for e in ENGINES if e not in (Engine.SDP, Engine.BM)]  # minutes each on ACAS Xu: see bench/
    _set_threads(1)
    folder = EXAMPLES / "acasxu"
    net = load_network(folder / "ACASXU_run2a_2_1_batch_2000.onnx")
    expected = {"prop_1": "holds", "prop_2": "violated", "prop_3": "holds", "prop_4": "holds"}
    print(f"optcert demo: ACAS Xu network 2_1 ({net.summary().neurons} ReLUs), VNN-LIB properties 1-4")
    print(f"  {'property':9s} {'expected':9s} " + " ".join(f"{e.value:>14s}" for e in engines))
    for prop, truth in expected.items():
        problem = read_vnnlib(folder / f"{prop}.vnnlib").problem(net, name=prop)
        cells = []
        for engine in engines:
            with progress(f"{prop}: {engine.value}"):
                r = verify(problem, engine, args.timeout)
            cells.append(f"{r.verdict.value:>9s} {r.seconds:4.1f}s")
        print(f"  {prop:9s} {truth:9s} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
