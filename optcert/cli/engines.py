"""`optcert engines`: the engines, what each answers, and their typed options."""
from __future__ import annotations

import dataclasses

NAME = "engines"


def add_subcommand(sub) -> None:
    sub.add_parser(NAME, help="list engines and their options")


def run(args) -> int:
    from optcert.engines.registry import ENGINES

    for engine, entry in ENGINES.items():
        fields = dataclasses.fields(entry.options)
        opts = ", ".join(f"{f.name}={getattr(f.default, 'value', f.default)}" for f in fields) or "-"
        print(f"  {engine.value:12s} {entry.summary}\n  {'':12s} options: {opts}")
    return 0
