"""Typed engine options: frozen dataclasses built from user-given key=value pairs.

`build_options(cls, values)` coerces strings (from the command line) to each field's type
(int, float, bool, str, Enum, tuples of those, Optional) and rejects unknown keys with an
`InvalidOptionError` that lists the valid ones.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from typing import Any, Mapping, Sequence, TypeVar

from optcert.errors import InvalidOptionError

E = TypeVar("E", bound=Enum)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, value: Any, typ) -> Any:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            if type(None) in args:
                return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(name, value, arg)
            except InvalidOptionError:
                continue
        raise InvalidOptionError(f"option {name!r}: cannot use {value!r}")
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(_coerce(name, v, args[0]) for v in items if v != "")
    if isinstance(typ, type) and issubclass(typ, Enum):
        if isinstance(value, typ):
            return value
        choices = {m.value: m for m in typ} | {m.name.lower(): m for m in typ}
        if str(value).lower() not in choices:
            raise InvalidOptionError(f"option {name!r}: {value!r} is not one of {', '.join(m.value for m in typ)}")
        return choices[str(value).lower()]
    if typ is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in _TRUE | _FALSE:
            return str(value).lower() in _TRUE
        raise InvalidOptionError(f"option {name!r}: {value!r} is not a boolean")
    if typ in (int, float):
        try:
            number = typ(value)
        except (TypeError, ValueError):
            kind = "an int" if typ is int else "a float"
            raise InvalidOptionError(f"option {name!r}: {value!r} is not {kind}") from None
        return number
    if typ is str:
        return str(value)
    return value


def build_options(cls, values: Mapping[str, Any] | None = None, base=None):
    """An instance of dataclass `cls` from `values` (field name → value), over `base` if given."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InvalidOptionError(f"unknown option(s) {', '.join(map(repr, unknown))} for "
                                 f"{cls.__name__}; valid: {', '.join(fields) or 'none'}")
    hints = typing.get_type_hints(cls)
    coerced = {k: _coerce(k, v, hints[k]) for k, v in values.items()}
    return dataclasses.replace(base if base is not None else cls(), **coerced)


def options_dict(options) -> dict:
    """A JSON-friendly dict of a dataclass instance (enums as their values)."""
    if options is None:
        return {}
    out = {}
    for f in dataclasses.fields(options):
        v = getattr(options, f.name)
        out[f.name] = v.value if isinstance(v, Enum) else (list(v) if isinstance(v, tuple) else v)
    return out


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    """["a=1", "b=x"] → {"a": "1", "b": "x"}; a pair without '=' is an InvalidOptionError."""
    out = {}
    for p in pairs:
        if "=" not in p:
            raise InvalidOptionError(f"option {p!r} is not KEY=VALUE")
        k, v = p.split("=", 1)
        out[k.strip().replace("-", "_")] = v.strip()
    return out


def parse_member(kinds: Sequence[type[Enum]], value: Enum | str, what: str) -> Enum:
    """`value` as a member of one of the enums `kinds` (a member, or a member's string value, any
    case); InvalidOptionError naming `what` and the choices otherwise."""
    if isinstance(value, Enum) and isinstance(value, tuple(kinds)):
        return value
    members = [m for k in kinds for m in k]
    for member in members:
        if str(value).lower() == member.value:
            return member
    raise InvalidOptionError(f"{what} {value!r} is unknown; expected one of: "
                             f"{', '.join(m.value for m in members)}")


def parse_choice(kind: type[E], value: E | str, what: str) -> E:
    """`value` as a member of the enum `kind` (see `parse_member`)."""
    member = parse_member((kind,), value, what)
    assert isinstance(member, kind)
    return member


# ---- one-line help per option (for `optcert engines`) ---------------------------------------
COMMON_HELP = {
    "device": "torch device: cpu, cuda, cuda:1, ...",
    "precision": "floating-point precision of the torch kernels (bounds stay rigorous in either)",
    "seed": "random seed (same seed, same run)",
    "backend": "solver backend by name (see `optcert solvers`)",
    "raw": "native solver parameters as NAME=VALUE,NAME=VALUE (passed through unchecked by optcert)",
    "bounds": "intermediate bounds computed first, each level including the ones before it",
    "hidden_boxes": "quadratic boxes on every hidden layer (needed for a finite trace bound)",
    "tolerance": "numerical tolerance of the solve",
}


def option_help(cls) -> dict[str, str]:
    """One line per field of the options dataclass `cls`: the field's `metadata["help"]`, else the
    comment on its line in the class source, else the docstring's "`name`: text" clause, else
    `COMMON_HELP`; an Enum field lists its choices. Empty where none of these says anything."""
    comments = _field_comments(cls)
    clauses = _docstring_clauses(cls.__doc__ or "")
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        text = (f.metadata.get("help") or comments.get(f.name) or clauses.get(f.name)
                or COMMON_HELP.get(f.name, ""))
        typ = hints.get(f.name)
        if isinstance(typ, type) and issubclass(typ, Enum) and not all(str(m.value) in text for m in typ):
            text = f"{text} ({' | '.join(str(m.value) for m in typ)})".strip()
        text = " ".join(text.split())
        out[f.name] = text[3:] if text.startswith("is ") else text
    return out


def _field_comments(cls) -> dict[str, str]:
    """Trailing `# comment` of each `name: type = default` line of the class body."""
    import inspect
    import re

    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    found = {}
    for line in source.splitlines():
        m = re.match(r"\s+(\w+)\s*:[^#]*#\s*(.+)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def _docstring_clauses(doc: str) -> dict[str, str]:
    """"`a`: text; `b`/`c`: more. `d` does x." → {a: text, b: more, c: more, d: does x}."""
    import re

    found: dict[str, str] = {}
    for clause in _clauses(" ".join(doc.split())):
        m = re.match(r"\s*((?:`\w+`(?:\s*/\s*|,\s*|\s+and\s+|\s+or\s+)?)+)\s*[:=]?\s*(.*)", clause)
        if m and m.group(2):
            for name in re.findall(r"`(\w+)`", m.group(1)):
                found.setdefault(name, m.group(2).rstrip(". "))
    return found


def _clauses(text: str) -> list[str]:
    """Split at "; " and at sentence ends (". " before a capital or a backtick; not "e.g. ", "i.e. "),
    never inside parentheses."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        nxt = text[i + 2:i + 3]
        end = ch == ";" or (ch == "." and text[i + 1:i + 2] == " " and (nxt.isupper() or nxt == "`")
                            and not text[max(0, i - 3):i + 1].endswith(("e.g.", "i.e.")))
        if depth == 0 and end:
            out.append(text[start:i])
            start = i + 1
    return out + [text[start:]]
