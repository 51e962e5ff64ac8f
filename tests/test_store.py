"""The SQLite results store: round trip, one row per key, typed errors, concurrent writers."""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import sqlite3

import numpy as np
import pytest

from optcert.errors import InvalidOptionError, UnreadableFileError
from optcert.sweeps.store import (
    ResultStore,
    RunKey,
    RunStatus,
    canonical_options,
    linf_property_id,
    make_record,
    network_hash,
    vnnlib_property_id,
)


def _key(i: int = 0, method: str = "crown") -> RunKey:
    return RunKey("n" * 64, f"linf:abc:{i}:0.1:3", method, canonical_options({"bounds": "ibp"}))


def test_round_trip_keeps_every_field(tmp_path):
    record = make_record(_key(), RunStatus.DONE, verdict="proved", bound=0.25, upper=float("inf"),
                         seconds=1.5, reason="bound > 0", extra={"rows": np.array([0.25, 1.0]), "eps": 0.1})
    with ResultStore(tmp_path / "runs.db") as store:
        assert store.put(record)
    with ResultStore(tmp_path / "runs.db") as store:
        (back,) = store.records()
    assert back == record
    assert back.extra_dict() == {"rows": [0.25, 1.0], "eps": 0.1}
    assert math.isinf(back.upper)
    versions = json.loads(back.versions)
    assert {"python", "optcert", "numpy"} <= versions.keys()


def test_none_and_nan_bounds_are_stored_as_none(tmp_path):
    with ResultStore(tmp_path / "runs.db") as store:
        store.put(make_record(_key(), RunStatus.FAILED, bound=float("nan"), reason="ValueError: x"))
        (back,) = store.records()
    assert back.bound is None and back.upper is None and back.verdict == "" and back.status is RunStatus.FAILED


def test_one_row_per_key_and_filters(tmp_path):
    with ResultStore(tmp_path / "runs.db") as store:
        assert store.put(make_record(_key(0), RunStatus.DONE, verdict="unknown", bound=-1.0))
        assert not store.put(make_record(_key(0), RunStatus.DONE, verdict="proved", bound=2.0))
        assert store.put(make_record(_key(1), RunStatus.TIMEOUT))
        assert store.put(make_record(_key(1, "ibp"), RunStatus.DONE, verdict="unknown", bound=-3.0))
        assert len(store.records()) == 3
        assert store.records(method="crown")[0].bound == -1.0       # the first write wins
        assert [r.key for r in store.records(method="ibp")] == [_key(1, "ibp")]
        assert store.records(network="other") == []
        assert store.done_keys() == {_key(0), _key(1), _key(1, "ibp")}
        assert store.has(_key(1)) and not store.has(_key(2))


def test_canonical_options_are_order_free():
    assert canonical_options({"b": 1, "a": "x"}) == canonical_options({"a": "x", "b": 1}) == '{"a":"x","b":1}'
    with pytest.raises(InvalidOptionError, match="options"):
        canonical_options({"f": object()})


def test_hashes_and_property_ids(tmp_path):
    path = tmp_path / "net.onnx"
    path.write_bytes(b"weights")
    assert network_hash(path) == hashlib.sha256(b"weights").hexdigest()
    assert vnnlib_property_id(path) == f"vnnlib:{network_hash(path)}"
    assert linf_property_id(path, 3, 0.10, 7) == f"linf:{network_hash(path)}:3:0.1:7"
    with pytest.raises(UnreadableFileError, match="missing.onnx"):
        network_hash(tmp_path / "missing.onnx")


def test_not_a_database_is_a_typed_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("not sqlite " * 100)
    with pytest.raises(UnreadableFileError, match="bad.db"):
        ResultStore(bad)


def test_wal_mode_and_primary_key(tmp_path):
    ResultStore(tmp_path / "runs.db").close()
    db = sqlite3.connect(tmp_path / "runs.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(sqlite3.IntegrityError):
        db.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       [("a", "b", "c", "d", "done", "", None, None, 0.0, "", "{}", "{}", 0.0)] * 2)


def _writer(path: str, start: int) -> None:
    with ResultStore(path) as store:
        for i in range(start, start + 30):
            store.put(make_record(_key(i % 40), RunStatus.DONE, verdict="unknown", bound=float(i)))


def test_concurrent_writers_leave_one_row_per_key(tmp_path):
    path = str(tmp_path / "runs.db")
    ResultStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, s)) for s in (0, 10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    with ResultStore(path) as store:
        keys = [r.key for r in store.records()]
    assert len(keys) == len(set(keys)) == 40
