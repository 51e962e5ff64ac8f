"""Randomized-smoothing figures of the gap study, kept apart from the network verdicts: the
smoothed classifier g is certified (with probability ≥ 1 − α) on an instance when every case's box
lies inside a certified L2 ball around its centre with g predicting the label (`covers_box`)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from optcert.sweeps.store import RunStatus


def covers(run: Any) -> bool:
    """Did a stored smoothing run certify the smoothed classifier on every case box?"""
    cases: Sequence[Mapping] | None = getattr(run, "smoothed", None)
    return bool(run is not None and run.status is RunStatus.DONE and cases
                and all(case.get("covers_box") for case in cases))


def smoothed_share(instances: Sequence[Any], network: str, eps: float, method: Any) -> float | None:
    """Share of `network`'s L∞ instances at `eps` (targets all) whose smoothed classifier is certified."""
    group = [inst for inst in instances if inst.network == network and inst.eps == eps and inst.target == "all"]
    if not group:
        return None
    return sum(covers(inst.runs.get(method)) for inst in group) / len(group)


def radii(run: Any) -> list[tuple[int | None, int, float]]:
    """(predicted class or None, label, certified L2 radius) per case of a smoothing run."""
    cases: Sequence[Mapping] = getattr(run, "smoothed", None) or ()
    return [(case.get("predicted"), int(case.get("label", -1)), float(case.get("radius", 0.0))) for case in cases]
