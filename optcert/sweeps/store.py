"""The results store: one SQLite row per finished run, safe to kill at any moment.

A run is identified by a `RunKey` (network hash, property id, method, canonical options); the
table's primary key is that tuple, so a key is stored at most once. Every `put()` is its own
autocommitted transaction in WAL mode: when it returns the row is in the database file's
write-ahead log, and an interrupted process (SIGKILL included) loses no row whose `put()`
returned and never leaves half a row (SQLite transactions are atomic). `synchronous=NORMAL`
is durable against process crashes; only an OS crash or power loss could roll back the last
commits. Several processes may read and write the same store (busy timeout 60 s).

The store records what the runs returned; it never turns a bound into a verdict itself.
"""
from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import sys
import time
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Mapping

from optcert.errors import InvalidOptionError, UnreadableFileError

SCHEMA_VERSION = 1
VERSIONED_PACKAGES = ("optcert", "numpy", "scipy", "torch", "highspy", "scs", "clarabel", "cvxpy",
                      "gurobipy", "mosek", "pyscipopt", "dask", "distributed")


class RunStatus(Enum):
    DONE = "done"          # the task returned an output (whatever its verdict)
    FAILED = "failed"      # the task raised, its process died, or it exceeded its memory limit
    TIMEOUT = "timeout"    # the task was killed for overrunning its hard time limit


@dataclass(frozen=True)
class RunKey:
    """Identity of one run; unique in the store."""

    network: str   # network_hash(path): sha256 hex of the file bytes
    prop: str      # e.g. "vnnlib:<sha256>" or "linf:<images sha256>:<index>:<eps:g>:<target>"
    method: str    # e.g. "pgd", "ibp", "crown", "lp-all", "milp", "highs:milp"
    options: str   # canonical_options(...) of the method options


@dataclass(frozen=True)
class RunRecord:
    """One finished run as stored. `bound`/`upper` are None when the run gave none."""

    key: RunKey
    status: RunStatus
    verdict: str          # Verdict.value, or "" for failed / timed-out runs
    bound: float | None   # certified lower bound on the margin (exact value for exact methods)
    upper: float | None   # achieved upper value where known
    seconds: float
    reason: str
    extra: str            # JSON object: labels, per-row bounds, tightness, ...
    versions: str         # JSON object: package versions of the process that ran it
    created: float        # unix time

    def extra_dict(self) -> dict:
        """`extra` decoded (an empty dict when it is empty)."""
        return json.loads(self.extra) if self.extra else {}


def network_hash(path: str | Path) -> str:
    """sha256 hex digest of the bytes of the file at `path` (UnreadableFileError if it cannot be read)."""
    return file_hash(path)


def file_hash(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as err:
        raise UnreadableFileError(f"{path}: cannot read: {err.strerror or err}") from None
    return digest.hexdigest()


def vnnlib_property_id(path: str | Path) -> str:
    """Property id of a VNN-LIB file: "vnnlib:<sha256 of the file>"."""
    return f"vnnlib:{file_hash(path)}"


def linf_property_id(images: str | Path, index: int, eps: float, target: int | str) -> str:
    """Property id of an L-inf robustness property: "linf:<images sha256>:<index>:<eps:g>:<target>"."""
    return f"linf:{file_hash(images)}:{int(index)}:{float(eps):g}:{target}"


def _plain(value, name: str):
    """`value` as plain JSON data (Enums by value, numpy scalars/arrays as numbers/lists)."""
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise InvalidOptionError(f"{name}: value {value!r} of type {type(value).__name__} is not JSON data")


def canonical_options(options: Mapping) -> str:
    """Canonical JSON of an options mapping: keys sorted, no spaces (equal options → equal strings)."""
    try:
        return json.dumps({str(k): options[k] for k in options}, sort_keys=True, separators=(",", ":"),
                          default=lambda v: _plain(v, "options"))
    except (TypeError, ValueError) as err:
        raise InvalidOptionError(f"options: {err}") from None


def to_json(data: Mapping, name: str = "extra") -> str:
    """A mapping as compact JSON (numpy values and Enums converted; ±inf kept as JSON Infinity)."""
    return json.dumps(dict(data), sort_keys=True, separators=(",", ":"), default=lambda v: _plain(v, name))


def software_versions() -> str:
    """JSON object of the Python version and the installed versions of the relevant packages.

    Reads package metadata only (imports none of them, so it is cheap)."""
    versions = {"python": sys.version.split()[0]}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return json.dumps(versions, sort_keys=True, separators=(",", ":"))


_COLUMNS = ("network", "prop", "method", "options", "status", "verdict", "bound", "upper",
            "seconds", "reason", "extra", "versions", "created")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    network TEXT NOT NULL, prop TEXT NOT NULL, method TEXT NOT NULL, options TEXT NOT NULL,
    status TEXT NOT NULL, verdict TEXT NOT NULL, bound REAL, upper REAL, seconds REAL NOT NULL,
    reason TEXT NOT NULL, extra TEXT NOT NULL, versions TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (network, prop, method, options))
"""


def _float_or_none(value) -> float | None:
    """None for None/NaN, else a Python float (±inf kept)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _row(record: RunRecord) -> tuple:
    k = record.key
    return (k.network, k.prop, k.method, k.options, record.status.value, record.verdict,
            _float_or_none(record.bound), _float_or_none(record.upper), float(record.seconds),
            record.reason, record.extra, record.versions, float(record.created))


def _record(row: tuple) -> RunRecord:
    network, prop, method, options, status, verdict, bound, upper, seconds, reason, extra, versions, created = row
    return RunRecord(RunKey(network, prop, method, options), RunStatus(status), verdict, bound, upper,
                     seconds, reason, extra, versions, created)


class ResultStore:
    """SQLite results store at `path` (created with its parent folder if missing).

    Raises UnreadableFileError when `path` exists but is not a usable SQLite database."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            self._check_schema()
        except (sqlite3.Error, OSError) as err:
            raise UnreadableFileError(f"{self.path}: not a usable results store: {err}") from None

    def _check_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise UnreadableFileError(f"{self.path}: results store schema {version}, expected {SCHEMA_VERSION}")

    def has(self, key: RunKey) -> bool:
        """Whether a record with `key` is stored."""
        row = self._db.execute("SELECT 1 FROM runs WHERE network=? AND prop=? AND method=? AND options=?",
                               (key.network, key.prop, key.method, key.options)).fetchone()
        return row is not None

    def done_keys(self) -> set[RunKey]:
        """Keys of every stored record (whatever its status)."""
        rows = self._db.execute("SELECT network, prop, method, options FROM runs")
        return {RunKey(*row) for row in rows}

    def put(self, record: RunRecord) -> bool:
        """Store `record` unless its key is already stored; committed on return. True when it was new."""
        marks = ",".join("?" * len(_COLUMNS))
        cursor = self._db.execute(f"INSERT OR IGNORE INTO runs ({','.join(_COLUMNS)}) VALUES ({marks})",
                                  _row(record))
        return cursor.rowcount == 1

    def records(self, method: str | None = None, network: str | None = None) -> list[RunRecord]:
        """Stored records in insertion order, optionally only those of `method` and/or `network`."""
        where, params = [], []
        for column, value in (("method", method), ("network", network)):
            if value is not None:
                where.append(f"{column}=?")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.execute(f"SELECT {','.join(_COLUMNS)} FROM runs{clause} ORDER BY rowid", params)
        return [_record(row) for row in rows]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_record(key: RunKey, status: RunStatus, *, verdict: str = "", bound: float | None = None,
                upper: float | None = None, seconds: float = 0.0, reason: str = "",
                extra: Mapping | None = None, versions: str | None = None) -> RunRecord:
    """A RunRecord stamped now, with `extra` encoded as JSON and this process's versions by default."""
    return RunRecord(key, status, verdict, _float_or_none(bound), _float_or_none(upper), float(seconds),
                     reason, to_json(extra or {}), versions if versions is not None else software_versions(),
                     time.time())
