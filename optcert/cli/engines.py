"""`optcert engines`: the engines, what each answers, and each option explained in one line
(from the options dataclasses: field metadata, field comments or docstrings; see
`optcert.options.option_help`)."""
from __future__ import annotations

import argparse
import dataclasses

from optcert.cli.stdout import emit

NAME = "engines"
HELP = "list engines, what they answer, and their options"
CLEAN_NOTE = ("on an L-inf robustness property (--image) every engine first checks the clean image: if the "
              "network already misclassifies it the answer is FALSIFIED and the result says so")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("engine", nargs="?", help="show only this engine")


def lines(only: str | None = None) -> list[str]:
    """The listing: per engine its summary (default marked), then one line per option."""
    from optcert.engines.registry import DEFAULT_ENGINE, ENGINES, engine_from
    from optcert.options import option_help

    chosen = [engine_from(only)] if only else list(ENGINES)
    out = []
    for engine in chosen:
        entry = ENGINES[engine]
        mark = " (default)" if engine is DEFAULT_ENGINE else ""
        out.append(f"{engine.value}{mark}: {entry.summary}")
        helps = option_help(entry.options)
        for f in dataclasses.fields(entry.options):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "-")
            out.append(f"    -o {f.name}={_shown(default)}  {helps[f.name]}")
        if not helps:
            out.append("    (no options)")
    return [*out, "", f"note: {CLEAN_NOTE}"]


def _shown(value) -> str:
    """A default as it is typed after -o: enums by value, booleans lower-case, tuples comma-joined."""
    value = getattr(value, "value", value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def run(args) -> int:
    emit("\n".join(lines(args.engine)))
    return 0
