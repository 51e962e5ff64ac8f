"""Arrays inside a JSON certificate: float64/int/bool arrays as base64 of zlib-compressed bytes.

`pack(a)` → {"dtype": "f8", "shape": [...], "z": "<base64>"} (little-endian; bool arrays as packed
bits), `unpack(d)` reverses it exactly. Lists of numbers are accepted by `unpack` too (older
certificates store SDP multipliers as plain JSON lists). Malformed data raises `ValueError`.
"""
from __future__ import annotations

import base64
import zlib
from typing import Any

import numpy as np

_KINDS = {"f8": "<f8", "i8": "<i8", "i4": "<i4", "b1": "bits"}


def pack(a: Any, kind: str = "f8") -> dict:
    """`a` as a JSON-safe dict (module doc); `kind` is f8, i8, i4 or b1 (bits)."""
    arr = np.asarray(a)
    if kind == "b1":
        raw = np.packbits(arr.astype(bool).reshape(-1)).tobytes()
    else:
        raw = arr.astype(_KINDS[kind]).tobytes()
    return {"dtype": kind, "shape": list(arr.shape), "z": base64.b64encode(zlib.compress(raw, 6)).decode("ascii")}


def unpack(d: Any) -> np.ndarray:
    """The array `pack` stored (or a plain list of numbers as float64; an array as it is)."""
    if isinstance(d, np.ndarray):
        return d
    if isinstance(d, (list, tuple)):
        return np.asarray([np.nan if v is None else v for v in d], dtype=np.float64)
    if not isinstance(d, dict) or d.get("dtype") not in _KINDS or "z" not in d:
        raise ValueError("not a packed array")
    shape = tuple(int(s) for s in d.get("shape", ()))
    try:
        raw = zlib.decompress(base64.b64decode(d["z"], validate=True))
    except Exception as err:
        raise ValueError(f"packed array is corrupt ({err})") from None
    count = int(np.prod(shape)) if shape else 1
    if d["dtype"] == "b1":
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
        if bits.size < count:
            raise ValueError("packed bit array is too short")
        return bits[:count].astype(bool).reshape(shape)
    arr = np.frombuffer(raw, dtype=_KINDS[d["dtype"]])
    if arr.size != count:
        raise ValueError(f"packed array holds {arr.size} values for shape {shape}")
    return arr.reshape(shape).astype(np.float64 if d["dtype"] == "f8" else np.int64)
