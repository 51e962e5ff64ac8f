"""Per-row bookkeeping the `sdp` and `bm` engines share: the cheap floors every row starts from,
certification of a row from multipliers (`certificates/sdp.certify`), which method produced each
row's bound (`certificate["row_source"]`, one list per case) and time-limit reporting."""
from __future__ import annotations

import math
import time

import numpy as np

from optcert.certificates.sdp import certify
from optcert.certify import EngineOutput
from optcert.compiled import CompiledCase
from optcert.engines.common import lp_floor
from optcert.solve.progressive import Tightening

_MAX_STORED_MULTIPLIERS = 20_000


def start_sources(out: EngineOutput, compiled: list[CompiledCase]) -> None:
    """certificate["row_source"][case][row] = "none" until a method bounds the row."""
    out.certificate["row_source"] = [["none"] * cc.case.spec.rows for cc in compiled]


def raise_row(out: EngineOutput, cc: CompiledCase, row: int, value: float, source: str) -> bool:
    """Keep `value` as row `row`'s bound if it is better; record `source` then. True if raised."""
    if not value > out.lower[cc.index][row]:
        return False
    out.lower[cc.index][row] = value
    out.certificate["row_source"][cc.index][row] = source
    return True


def floors(out: EngineOutput, cc: CompiledCase, bounds, level: Tightening, triangle: bool, deadline: float) -> None:
    """Every row starts from the output bounds of the tightening (source: its level) and, with the
    triangle cuts (which make the SDP contain the LP), the certified LP bound ("lp-floor")."""
    for row, value in enumerate(bounds.lower[-1]):
        raise_row(out, cc, row, float(value), level.value)
    if triangle:
        before = out.lower[cc.index].copy()
        lp_floor(out, cc, bounds, deadline)
        for raised in np.flatnonzero(out.lower[cc.index] > before):
            out.certificate["row_source"][cc.index][int(raised)] = "lp-floor"


def certify_row(out: EngineOutput, cc: CompiledCase, row: int, model, y, lam, primal, deadline: float,
                source: str) -> dict:
    """Certify row `row` from multipliers y; fold the bound into `out`; the certificate entry."""
    t = time.perf_counter()
    cert = certify(model, y, lam, deadline=deadline)
    raise_row(out, cc, row, cert.bound, source)
    entry = {**cert.as_dict(), "certify_seconds": round(time.perf_counter() - t, 3)}
    if primal is not None and math.isfinite(cert.bound):
        entry["gap"] = primal - cert.bound
    if y.size <= _MAX_STORED_MULTIPLIERS:
        entry["multipliers"] = [float(v) for v in y]
    return entry


def remaining(deadline: float, share: float = 1.0) -> float | None:
    """`share` of the time left (the rest is kept for the certificate), or None without a deadline."""
    return max(1e-3, share * (deadline - time.monotonic())) if math.isfinite(deadline) else None


def timed_out(out: EngineOutput, what: str) -> None:
    """Mark `out` as stopped by a time limit, saying what was cut short."""
    out.timed_out = True
    out.reason = f"time limit reached ({what})"


def negative_direction(model, y, lam: float) -> np.ndarray:
    """Eigenvector of the smallest eigenvalue of S(y) − λE₀₀ (where the rank should grow)."""
    from scipy.linalg import eigh

    from optcert.certificates.sdp import project, slack_matrix

    S, _ = slack_matrix(model, project(model, y))
    S[0, 0] -= lam
    return eigh(S, subset_by_index=[0, 0], driver="evr")[1][:, 0]
