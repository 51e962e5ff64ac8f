"""CBF and SDPA files of a `ConicProgram` in *matrix-variable layout*, and a reader for both.

Matrix-variable layout (what `lowerings/sdp_full.lower_sdp` produces): the columns are the svecs
of the PSD blocks X_1, …, X_K one after the other, the last Σ N_k(N_k+1)/2 rows of A are −I with
b = 0 there (s = x, i.e. X_k ⪰ 0), and the first `zero` + `nonneg` rows are linear constraints on
the blocks. The files keep the blocks as matrix variables, so external SDP solvers see the problem
in its natural primal form (not 400k free scalars):

* **CBF** (Conic Benchmark Format, version 3; MOSEK / CBLIB): one `PSDVAR` per block; `CON` rows
  g_i = b_i − a_i·x in cones `L=` (zero) and `L+` (nonneg); `OBJFCOORD`/`FCOORD` list each
  symmetric coefficient matrix by its lower triangle, so an off-diagonal svec coefficient a
  (x_k = √2 X_rc) becomes a/√2; `OBJBCOORD` holds c0. The file's optimum is the program's.
* **SDPA sparse** (`.dat-s`; SDPA, CSDP, SDPT3 read it): SDPA's dual form
  max tr(F_0 Y) s.t. tr(F_i Y) = c_i, Y ⪰ 0, with Y = diag(X_1, …, X_K, slack block of the `nonneg`
  rows), F_0 = −C, F_i = row i (upper triangle; +1 on the row's slack), c_i = b_i. So the file's
  optimal value is −(optimum − c0); c0 is written in a comment line. Zero rows have no slack.

Numbers are written with 17 significant digits; the ±√2 scalings make a re-read equal to the
original up to one rounding per coefficient. `read_conic` reads the files these writers produce.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from optcert.errors import LoweringError, UnreadableFileError
from optcert.forms import ConicProgram

_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, eq=False)
class MatrixLayout:
    """A program in matrix-variable layout: where each column sits in its block and the
    linear constraint rows (module doc). `block`, `row`, `col` give column j's block and its
    (row ≥ col) entry; `half` is 1/√2 off the diagonal and 1 on it."""

    psd: tuple[int, ...]
    block: np.ndarray
    row: np.ndarray
    col: np.ndarray
    half: np.ndarray
    constraints: sp.csr_matrix  # the first zero + nonneg rows of A
    rhs: np.ndarray


def _coordinates(psd: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(block, row, col) of every svec position (lower triangle column by column, per block)."""
    blocks, rows, cols = [], [], []
    for k, n in enumerate(psd):
        c, r = np.triu_indices(n)
        blocks.append(np.full(r.size, k))
        rows.append(r)
        cols.append(c)
    return np.concatenate(blocks), np.concatenate(rows), np.concatenate(cols)


def matrix_layout(form: ConicProgram) -> MatrixLayout:
    """`form` viewed as linear rows over PSD matrix variables; LoweringError if it is not in
    matrix-variable layout (module doc)."""
    nx = sum(n * (n + 1) // 2 for n in form.psd)
    linear = form.zero + form.nonneg
    if not form.psd or form.c.size != nx:
        raise LoweringError(f"conic export needs matrix-variable layout: {form.c.size} columns but the PSD "
                            f"blocks {form.psd} hold {nx} entries (LPs go to MPS)")
    A = sp.csr_matrix(form.A)
    tail = A[linear:] + sp.identity(nx, format="csr")
    if tail.count_nonzero() or np.any(form.b[linear:] != 0):
        raise LoweringError("conic export needs matrix-variable layout: the PSD rows must be s = x (A = −I, b = 0)")
    block, row, col = _coordinates(form.psd)
    half = np.where(row == col, 1.0, 1.0 / _SQRT2)
    return MatrixLayout(form.psd, block, row, col, half, A[:linear], form.b[:linear].copy())


def _lines(array_rows: np.ndarray, int_columns: int) -> str:
    """One line per row: the first `int_columns` entries as integers, the last as %.17g."""
    if not len(array_rows):
        return ""
    fmt = " ".join(["%d"] * int_columns + ["%.17g"])
    return "\n".join(fmt % tuple(r) for r in array_rows.tolist()) + "\n"


def _objective_entries(form: ConicProgram, lay: MatrixLayout, sign: float) -> np.ndarray:
    """(block, row, col, value) of the objective's nonzero coefficient matrix, times `sign`."""
    j = np.flatnonzero(form.c)
    return np.column_stack([lay.block[j], lay.row[j], lay.col[j], sign * form.c[j] * lay.half[j]])


def _constraint_entries(lay: MatrixLayout, sign: float) -> np.ndarray:
    """(constraint, block, row, col, value) of every nonzero of the linear rows, times `sign`."""
    coo = lay.constraints.tocoo()
    j = coo.col
    return np.column_stack([coo.row, lay.block[j], lay.row[j], lay.col[j], sign * coo.data * lay.half[j]])


def write_cbf(form: ConicProgram, path: str | Path, comment: str = "") -> Path:
    """Write `form` (matrix-variable layout) as a CBF file; returns the path."""
    lay = matrix_layout(form)
    cones = [f"L= {form.zero}"] * bool(form.zero) + [f"L+ {form.nonneg}"] * bool(form.nonneg)
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    head += "VER\n3\n\nOBJSENSE\nMIN\n\nPSDVAR\n" + f"{len(form.psd)}\n" + "".join(f"{n}\n" for n in form.psd)
    if cones:
        head += f"\nCON\n{lay.rhs.size} {len(cones)}\n" + "\n".join(cones) + "\n"
    obj = _objective_entries(form, lay, 1.0)
    parts = [head, f"\nOBJFCOORD\n{len(obj)}\n", _lines(obj, 3)]
    if form.c0:
        parts.append(f"\nOBJBCOORD\n{form.c0!r}\n")
    entries = _constraint_entries(lay, -1.0)  # g_i = b_i − a_i·x
    if len(entries):
        parts += [f"\nFCOORD\n{len(entries)}\n", _lines(entries, 4)]
    nz = np.flatnonzero(lay.rhs)
    if nz.size:
        parts += [f"\nBCOORD\n{nz.size}\n", _lines(np.column_stack([nz, lay.rhs[nz]]), 1)]
    return _write(path, "".join(parts))


def write_sdpa(form: ConicProgram, path: str | Path, comment: str = "") -> Path:
    """Write `form` (matrix-variable layout) as an SDPA sparse file (SDPA's dual form, module doc)."""
    lay = matrix_layout(form)
    blocks = [str(n) for n in form.psd] + [f"-{form.nonneg}"] * bool(form.nonneg)
    head = "".join(f"* {line}\n" for line in comment.splitlines())
    head += f"* optcert c0 = {form.c0!r}; this file's optimal value is -(optimum - c0)\n"
    head += f"{lay.rhs.size}\n{len(blocks)}\n{' '.join(blocks)}\n"
    head += " ".join(f"{v!r}" for v in lay.rhs.tolist()) + "\n"
    obj = _objective_entries(form, lay, -1.0)              # F_0 = −C
    cons = _constraint_entries(lay, 1.0)
    slack_rows = np.arange(form.zero, lay.rhs.size)
    slack_blk = np.full(slack_rows.size, len(form.psd))
    slack_pos = np.arange(slack_rows.size)
    slacks = np.column_stack([slack_rows + 1, slack_blk + 1, slack_pos + 1, slack_pos + 1, np.ones(slack_rows.size)])
    # SDPA: 1-based matrix, block and (i ≤ j) indices; the svec's (row ≥ col) is written as (col, row)
    body = np.vstack([np.column_stack([np.zeros(len(obj)), obj[:, 0] + 1, obj[:, 2] + 1, obj[:, 1] + 1, obj[:, 3]]),
                      np.column_stack([cons[:, 0] + 1, cons[:, 1] + 1, cons[:, 3] + 1, cons[:, 2] + 1, cons[:, 4]]),
                      slacks])
    return _write(path, head + _lines(body, 4))


def write_lowered(form, stem: str | Path, comment: str = "") -> list[Path]:
    """`stem`.mps for a LinearProgram (HiGHS's writer), `stem`.cbf and `stem`.dat-s for a
    ConicProgram; the directory is created if needed. Returns the paths written."""
    from optcert.outputs import writable_dir

    stem = writable_dir(Path(stem).parent) / Path(stem).name
    if not isinstance(form, ConicProgram):
        from solvers.highs import write_model

        path = stem.with_name(stem.name + ".mps")
        write_model(form, path, name=stem.name)
        return [path]
    return [write_cbf(form, stem.with_name(stem.name + ".cbf"), comment),
            write_sdpa(form, stem.with_name(stem.name + ".dat-s"), comment)]


def _write(path: str | Path, text: str) -> Path:
    path = Path(path)
    try:
        path.write_text(text)
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot write ({err.strerror or err})") from None
    return path


def read_conic(path: str | Path) -> ConicProgram:
    """Read a `.cbf` or `.dat-s` file written by `write_cbf` / `write_sdpa` back into a ConicProgram.
    UnreadableFileError names the file if it is missing or not in that shape."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        return _parse_cbf(text) if path.suffix.lower() == ".cbf" else _parse_sdpa(text)
    except (ValueError, IndexError) as err:
        raise UnreadableFileError(f"{path}: not a CBF/SDPA file in matrix-variable layout ({err})") from None


def _assemble(psd: tuple[int, ...], zero: int, nonneg: int, objective: np.ndarray, entries: np.ndarray,
              rhs: np.ndarray, c0: float) -> ConicProgram:
    """The ConicProgram of coefficient matrices given as (block, row, col, value) objective rows and
    (constraint, block, row, col, value) constraint rows (row ≥ col, CBF scaling: a/√2 off the diagonal)."""
    from optcert.lowerings.sdp_full import svec_index

    sizes = np.array([n * (n + 1) // 2 for n in psd])
    offsets, dims = np.r_[0, np.cumsum(sizes)[:-1]], np.array(psd)

    def column(block, row, col):
        block, row, col = (np.asarray(v, dtype=np.int64) for v in (block, row, col))
        if np.any(block >= len(psd)) or np.any(row >= dims[block]) or np.any(row < col):
            raise ValueError("a coefficient lies outside its PSD block or above the diagonal")
        return offsets[block] + svec_index(row, col, dims[block]), np.where(row == col, 1.0, _SQRT2)

    nx, m = int(sizes.sum()), zero + nonneg
    j, scale = column(objective[:, 0], objective[:, 1], objective[:, 2])
    c = np.zeros(nx)
    np.add.at(c, j, objective[:, 3] * scale)
    j, scale = column(entries[:, 1], entries[:, 2], entries[:, 3])
    linear = sp.csr_matrix((entries[:, 4] * scale, (entries[:, 0].astype(np.int64), j)), shape=(m, nx))
    A = sp.vstack([linear, -sp.identity(nx, format="csr")]).tocsc()
    return ConicProgram(c, A, np.r_[rhs, np.zeros(nx)], zero, nonneg, psd, c0)


def _table(lines: list[str], width: int) -> np.ndarray:
    return np.array([line.split() for line in lines], dtype=np.float64).reshape(-1, width)


def _parse_cbf(text: str) -> ConicProgram:
    """Parse the CBF subset `write_cbf` writes (PSDVAR, CON of L=/L+, OBJ/F/B coordinates)."""
    lines = [s.strip() for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")]
    psd: tuple[int, ...] = ()
    cones: list[list[str]] = []
    c0, i = 0.0, 0
    tables = {"OBJFCOORD": np.zeros((0, 4)), "FCOORD": np.zeros((0, 5)), "BCOORD": np.zeros((0, 2))}
    while i < len(lines):
        key, i = lines[i], i + 1
        if key in ("VER", "OBJSENSE"):
            if key == "OBJSENSE" and lines[i] != "MIN":
                raise ValueError(f"OBJSENSE {lines[i]} (only MIN is written)")
            i += 1
        elif key == "PSDVAR":
            k = int(lines[i])
            psd, i = tuple(int(v) for v in lines[i + 1:i + 1 + k]), i + 1 + k
        elif key == "CON":
            k = int(lines[i].split()[1])
            cones, i = [line.split() for line in lines[i + 1:i + 1 + k]], i + 1 + k
        elif key == "OBJBCOORD":
            c0, i = float(lines[i]), i + 1
        elif key in tables:
            n = int(lines[i])
            tables[key], i = _table(lines[i + 1:i + 1 + n], tables[key].shape[1]), i + 1 + n
        else:
            raise ValueError(f"keyword {key!r} is not written by optcert")
    count = {kind: int(n) for kind, n in cones}
    if [kind for kind, _ in cones] not in ([], ["L="], ["L+"], ["L=", "L+"]):
        raise ValueError(f"constraint cones {cones} (expected L= then L+)")
    zero, nonneg = count.get("L=", 0), count.get("L+", 0)
    rhs = np.zeros(zero + nonneg)
    rhs[tables["BCOORD"][:, 0].astype(np.int64)] = tables["BCOORD"][:, 1]
    entries = tables["FCOORD"] * np.array([1, 1, 1, 1, -1.0])   # g_i = b_i − a_i·x
    return _assemble(psd, zero, nonneg, tables["OBJFCOORD"], entries, rhs, c0)


def _parse_sdpa(text: str) -> ConicProgram:
    """Parse the SDPA sparse file `write_sdpa` writes (PSD blocks, then one slack LP block)."""
    lines = text.splitlines()
    found = [re.search(r"optcert c0 = (\S+);", s) for s in lines if s.startswith("*")]
    c0 = next((float(f.group(1)) for f in found if f), 0.0)
    body = "\n".join(s for s in lines if not s.startswith(("*", '"')))
    tokens = re.sub(r"[,{}()]", " ", body).split()
    m, nb = int(tokens[0]), int(tokens[1])
    struct = [int(float(v)) for v in tokens[2:2 + nb]]
    rhs = np.array(tokens[2 + nb:2 + nb + m], dtype=np.float64)
    data = np.array(tokens[2 + nb + m:], dtype=np.float64).reshape(-1, 5)
    psd = tuple(n for n in struct if n > 0)
    if struct[:len(psd)] != list(psd) or len(struct) - len(psd) > 1:
        raise ValueError(f"block structure {struct} (expected PSD blocks, then at most one LP block)")
    mat, blk = data[:, 0].astype(np.int64), data[:, 1].astype(np.int64) - 1
    slack = blk == len(psd)
    nonneg_rows = np.unique(mat[slack] - 1)
    zero = m - nonneg_rows.size
    if np.any(nonneg_rows != np.arange(zero, m)) or np.any(data[slack, 4] != 1.0):
        raise ValueError("the rows with a slack must be the last ones, each with coefficient 1")
    entry = data[~slack]
    hi, lo = np.maximum(entry[:, 2], entry[:, 3]) - 1, np.minimum(entry[:, 2], entry[:, 3]) - 1
    rows = np.column_stack([entry[:, 0] - 1, blk[~slack], hi, lo, entry[:, 4]])
    objective = rows[rows[:, 0] < 0][:, 1:] * np.array([1, 1, 1, -1.0])   # F_0 = −C
    return _assemble(psd, zero, m - zero, objective, rows[rows[:, 0] >= 0], rhs, c0)
