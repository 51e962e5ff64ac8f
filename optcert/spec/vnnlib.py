"""VNN-LIB 1.0 reader: a `.vnnlib` file → the `Case`s of a property.

A VNN-LIB file states the *violation*: the conjunction of its asserts, each an atom or an
`or`/`and` tree of atoms over inputs X_i and outputs Y_j (linear terms: +, −, *, constants).
The formula is put in disjunctive normal form; each disjunct must bound every input by an
interval and constrain outputs linearly. The property holds iff no disjunct is satisfiable.

Disjuncts sharing an input box are grouped: single-atom disjuncts become the rows of one
`Combine.ALL` case (each row alone is a violation), multi-atom disjuncts one `Combine.ANY` case
each (all rows together are a violation). Input unions (ACAS Xu property 6) give one box each.
The `vnnlib` package on PyPI (1.0.2, VNN-LIB 2.0 grammar) was evaluated and rejects every
shared file at line 3, so this is a small parser with line-numbered errors.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from optcert.errors import InvalidSpecError, UnreadableFileError
from optcert.spec.problem import Box, Case, Combine, LinearSpec, VerificationProblem

_TOKEN = re.compile(r"\s*(?:(;[^\n]*)|(\()|(\))|([^\s()]+))")
_VAR = re.compile(r"^([XY])_(\d+)$")
MAX_DISJUNCTS = 100_000


@dataclass(frozen=True)
class _Sym:
    text: str
    line: int


@dataclass(frozen=True)
class _Atom:
    """coef · (X, Y) + const ≤ 0 (the violation side), from source line `line`."""

    x: dict
    y: dict
    const: float
    line: int


@dataclass(frozen=True)
class VnnlibProperty:
    """The parsed property: cases over `n_inputs` inputs and `n_outputs` outputs."""

    cases: tuple[Case, ...]
    n_inputs: int
    n_outputs: int
    source: str

    def problem(self, network, name: str = "") -> VerificationProblem:
        """Attach a network (sizes are checked by `VerificationProblem`); the property file is
        recorded in `meta["inputs"]` for the result's provenance."""
        meta = {"inputs": {"property": self.source}} if Path(self.source).is_file() else {}
        return VerificationProblem(network, self.cases, name=name or Path(self.source).stem, meta=meta)


def read_vnnlib(path: str | Path) -> VnnlibProperty:
    """Read and parse a VNN-LIB file (UnreadableFileError / InvalidSpecError on failure)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise UnreadableFileError(f"{path}: cannot read ({err})") from None
    return parse_vnnlib(text, str(path))


def parse_vnnlib(text: str, source: str = "<string>") -> VnnlibProperty:
    """Parse VNN-LIB text; errors name `source` and the line."""
    return _Parser(source).parse(text)


class _Parser:
    def __init__(self, source: str):
        self.source = source
        self.declared: dict[str, int] = {}

    def error(self, line: int, msg: str) -> InvalidSpecError:
        return InvalidSpecError(f"{self.source}:{line}: {msg}")

    # ---- s-expressions ----------------------------------------------------------------------
    def read(self, text: str) -> list:
        stack: list[list] = [[]]
        opened: list[int] = []
        line, pos = 1, 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                break
            line += text.count("\n", pos, m.start(m.lastindex or 0))
            pos = m.end()
            if m.group(2):
                stack.append([])
                opened.append(line)
            elif m.group(3):
                if len(stack) == 1:
                    raise self.error(line, "unbalanced ')'")
                done = stack.pop()
                opened.pop()
                stack[-1].append(done)
            elif m.group(4):
                stack[-1].append(_Sym(m.group(4), line))
        if len(stack) != 1:
            raise self.error(opened[-1], "unclosed '(' (file truncated?)")
        return stack[0]

    # ---- top level --------------------------------------------------------------------------
    def parse(self, text: str) -> VnnlibProperty:
        forms = self.read(text)
        base: list[_Atom] = []
        disjunctive: list[list[list[_Atom]]] = []
        for form in forms:
            if not isinstance(form, list) or not form or not isinstance(form[0], _Sym):
                raise self.error(_line(form), "expected (declare-const ...) or (assert ...)")
            head = form[0].text
            if head == "declare-const":
                self.declare(form)
            elif head == "assert":
                if len(form) != 2:
                    raise self.error(form[0].line, "assert takes one formula")
                dnf = self.dnf(form[1])
                if len(dnf) == 1:
                    base.extend(dnf[0])
                else:
                    disjunctive.append(dnf)
            else:
                raise self.error(form[0].line, f"unknown command {head!r}")
        n_in = self._count("X")
        n_out = self._count("Y")
        self.check_base_box(base, n_in)
        clauses = [base]
        for dnf in disjunctive:
            clauses = [c + d for c in clauses for d in dnf]
            if len(clauses) > MAX_DISJUNCTS:
                raise self.error(1, f"more than {MAX_DISJUNCTS} disjuncts after expansion")
        cases = self.group([self.clause(c, n_in, n_out) for c in clauses], n_in, n_out)
        return VnnlibProperty(tuple(cases), n_in, n_out, self.source)

    def declare(self, form) -> None:
        if len(form) != 3 or not all(isinstance(f, _Sym) for f in form[1:]):
            raise self.error(form[0].line, "malformed declare-const")
        name, typ = form[1], form[2]
        if not _VAR.match(name.text):
            raise self.error(name.line, f"variable {name.text!r} is not X_<i> or Y_<j>")
        if typ.text not in ("Real", "Int"):
            raise self.error(typ.line, f"unsupported type {typ.text!r}")
        if name.text in self.declared:
            raise self.error(name.line, f"{name.text} declared twice")
        self.declared[name.text] = name.line

    def _count(self, kind: str) -> int:
        matches = (_VAR.match(v) for v in self.declared if v.startswith(kind))
        idx = sorted(int(m.group(2)) for m in matches if m)
        if not idx:
            raise self.error(1, f"no {kind}_i variables declared")
        if idx != list(range(len(idx))):
            missing = sorted(set(range(idx[-1] + 1)) - set(idx))[0]
            raise self.error(1, f"{kind}_{missing} is not declared but {kind}_{idx[-1]} is")
        return len(idx)

    # ---- formulas ---------------------------------------------------------------------------
    def dnf(self, f) -> list[list[_Atom]]:
        """The formula as a list of conjunctions of atoms."""
        if not isinstance(f, list) or not f or not isinstance(f[0], _Sym):
            raise self.error(_line(f), "expected a formula (and/or/<=/>=/...)")
        op = f[0].text
        if op == "or":
            return [c for g in f[1:] for c in self.dnf(g)]
        if op == "and":
            out: list[list[_Atom]] = [[]]
            for g in f[1:]:
                out = [a + b for a in out for b in self.dnf(g)]
                if len(out) > MAX_DISJUNCTS:
                    raise self.error(f[0].line, f"more than {MAX_DISJUNCTS} disjuncts after expansion")
            return out
        if op in ("<=", ">=", "<", ">", "="):
            if len(f) != 3:
                raise self.error(f[0].line, f"{op} takes two terms")
            lhs, rhs = self.term(f[1]), self.term(f[2])
            diff = _sub(lhs, rhs) if op in ("<=", "<") else _sub(rhs, lhs)
            atoms = [self.atom(diff, f[0].line)]
            if op == "=":
                atoms.append(self.atom(_sub(rhs, lhs), f[0].line))
            return [atoms]
        raise self.error(f[0].line, f"unsupported operator {op!r}")

    def term(self, t) -> dict:
        """A linear term as {variable: coefficient, "": constant}."""
        if isinstance(t, _Sym):
            if t.text in self.declared:
                return {t.text: 1.0}
            if _VAR.match(t.text):
                raise self.error(t.line, f"undeclared variable {t.text}")
            try:
                return {"": float(t.text)}
            except ValueError:
                raise self.error(t.line, f"unknown symbol {t.text!r}") from None
        if not t or not isinstance(t[0], _Sym):
            raise self.error(_line(t), "expected a term")
        op, args = t[0].text, [self.term(a) for a in t[1:]]
        if op == "+" and args:
            return _sum(args)
        if op == "-" and len(args) == 1:
            return _scale(args[0], -1.0)
        if op == "-" and len(args) >= 2:
            return _sum([args[0]] + [_scale(a, -1.0) for a in args[1:]])
        if op == "*" and len(args) == 2:
            const = [a for a in args if set(a) <= {""}]
            if not const:
                raise self.error(t[0].line, "product of two variables is not linear")
            other = args[1] if args[0] is const[0] else args[0]
            return _scale(other, const[0].get("", 0.0))
        raise self.error(t[0].line, f"unsupported term operator {op!r}")

    def atom(self, diff: dict, line: int) -> _Atom:
        x = {int(v[2:]): c for v, c in diff.items() if v.startswith("X") and c != 0}
        y = {int(v[2:]): c for v, c in diff.items() if v.startswith("Y") and c != 0}
        if x and y:
            raise self.error(line, "constraints mixing inputs and outputs are not supported")
        return _Atom(x, y, diff.get("", 0.0), line)

    # ---- disjuncts → cases ------------------------------------------------------------------
    def check_base_box(self, base: list[_Atom], n_in: int) -> None:
        """The input bounds asserted outside any `or` must leave a non-empty box: a reversed pair
        there is a mistake, not a vacuous property (disjuncts that an `or` expansion makes empty
        are dropped by `clause`, as VNN-LIB's semantics allow)."""
        lo, hi = np.full(n_in, -np.inf), np.full(n_in, np.inf)
        lo_line: dict[int, int] = {}
        hi_line: dict[int, int] = {}
        for a in base:
            if a.y or len(a.x) != 1:
                continue
            (i, c), = a.x.items()
            bound = -a.const / c + 0.0
            if c > 0 and bound < hi[i]:
                hi[i], hi_line[i] = bound, a.line
            elif c < 0 and bound > lo[i]:
                lo[i], lo_line[i] = bound, a.line
        bad = np.flatnonzero(lo > hi)
        if bad.size:
            i = int(bad[0])
            raise self.error(max(lo_line[i], hi_line[i]), f"input X_{i} has lower bound {lo[i]:g} above its upper "
                             f"bound {hi[i]:g} (lines {lo_line[i]} and {hi_line[i]}): the input region is empty")

    def clause(self, atoms: list[_Atom], n_in: int, n_out: int):
        lo, hi = np.full(n_in, -np.inf), np.full(n_in, np.inf)
        rows = []
        for a in atoms:
            if a.y or not a.x:
                if not a.y:  # constant atom: c ≤ 0
                    if a.const > 0:
                        return None
                    continue
                row = np.zeros(n_out)
                row[list(a.y)] = list(a.y.values())
                rows.append((row, a.const, a.line))
                continue
            if len(a.x) != 1:
                raise self.error(a.line, "linear constraints over several inputs are not supported")
            (i, c), = a.x.items()
            bound = -a.const / c + 0.0  # + 0.0 turns -0.0 into 0.0
            if abs(c) != 1:  # the division rounds: widen outward (a larger box is the safe side)
                bound = float(np.nextafter(bound, np.inf if c > 0 else -np.inf))
            if c > 0:
                hi[i] = min(hi[i], bound)
            else:
                lo[i] = max(lo[i], bound)
        line = atoms[0].line if atoms else 1
        missing = np.flatnonzero(~np.isfinite(lo) | ~np.isfinite(hi))
        if missing.size:
            side = "lower" if not np.isfinite(lo[missing[0]]) else "upper"
            raise self.error(line, f"input X_{missing[0]} has no {side} bound")
        if not rows:
            raise self.error(line, "a disjunct has no output constraint")
        if np.any(lo > hi):
            return None  # empty input set: this disjunct cannot be satisfied
        return lo, hi, rows

    def group(self, clauses: list, n_in: int, n_out: int) -> list[Case]:
        live = [c for c in clauses if c is not None]
        if not live:
            raise InvalidSpecError(f"{self.source}: contradictory property: every disjunct has an empty input set")
        boxes: dict[bytes, tuple] = {}
        for lo, hi, rows in live:
            key = lo.tobytes() + hi.tobytes()
            boxes.setdefault(key, (lo, hi, [], []))[2 if len(rows) == 1 else 3].append(rows)
        cases = []
        for lo, hi, singles, multis in boxes.values():
            box = Box(lo, hi)
            if singles:
                cases.append(Case(box, _spec([r[0] for r in singles]), Combine.ALL))
            cases.extend(Case(box, _spec(rows), Combine.ANY) for rows in multis)
        return cases


def _spec(rows) -> LinearSpec:
    """Violation rows a·y + c ≤ 0 → margins a·y + c (positive = safe)."""
    C = np.array([r[0] for r in rows])
    d = np.array([r[1] for r in rows])
    labels = tuple(_label(r[0], r[1]) for r in rows)
    return LinearSpec(C, d, labels)


def _label(row: np.ndarray, const: float) -> str:
    terms = [f"{'+' if c > 0 else '-'}{'' if abs(c) == 1 else f'{abs(c):g}*'}Y_{j}"
             for j, c in enumerate(row) if c != 0]
    text = "".join(terms).lstrip("+")
    return text + (f"{const:+g}" if const else "")


def _sum(terms: list[dict]) -> dict:
    out: dict = {}
    for t in terms:
        for k, v in t.items():
            out[k] = out.get(k, 0.0) + v
    return out


def _scale(t: dict, s: float) -> dict:
    return {k: v * s for k, v in t.items()}


def _sub(a: dict, b: dict) -> dict:
    return _sum([a, _scale(b, -1.0)])


def _line(form) -> int:
    while isinstance(form, list) and form:
        form = form[0]
    return form.line if isinstance(form, _Sym) else 1
