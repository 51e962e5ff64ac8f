"""The summary of a batch run, from the results store: verdict counts, per-instance verdict and
time, and — where the CSV gives the expected verdict — agreement, with any wrong answer flagged.

`agreement`: `ok` (the verdict matches), `WRONG` (PROVED where a counterexample exists or
FALSIFIED where the property holds), `open` (UNKNOWN, a timeout or a failure), `new` (decided
where nobody knew), `` (no expected verdict). A falsified instance whose unperturbed input (the
input box's centre) already violates the property says so (`falsified (at the box centre)`), so it
is not read as an attack success.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass

from optcert.batch.instances import BatchInstance
from optcert.outputs import markdown_table

COLUMNS = ("instance", "onnx", "vnnlib", "timeout", "expected", "verdict", "agreement", "seconds", "timed_out",
           "violated_at_centre", "status", "reason")


@dataclass(frozen=True)
class Row:
    """One instance's line of the summary."""

    instance: BatchInstance
    status: str          # done / failed / timeout / missing
    verdict: str         # proved / falsified / unknown, or the status when not done
    seconds: float | None
    timed_out: bool
    clean: bool
    reason: str

    @property
    def agreement(self) -> str:
        expected = self.instance.expected
        if self.verdict not in ("proved", "falsified"):
            return "open" if expected is not None else ""
        if expected is None:
            return "new"
        return "ok" if self.verdict == expected else "WRONG"

    @property
    def shown(self) -> str:
        return f"{self.verdict} (at the box centre)" if self.clean else self.verdict

    def values(self) -> tuple:
        i = self.instance
        return (i.name, str(i.onnx), str(i.vnnlib), i.timeout, i.expected or "", self.verdict, self.agreement,
                None if self.seconds is None else round(self.seconds, 3), self.timed_out, self.clean,
                self.status, self.reason)


def rows_from_store(store, keyed: list[tuple[BatchInstance, object]]) -> list[Row]:
    """One Row per (instance, store key), from the store's records (missing when not run yet)."""
    records = {r.key: r for r in store.records()}
    out = []
    for inst, key in keyed:
        rec = records.get(key)
        if rec is None:
            out.append(Row(inst, "missing", "not run", None, False, False, ""))
            continue
        extra = rec.extra_dict()
        done = rec.status.value == "done"
        out.append(Row(inst, rec.status.value, rec.verdict if done else rec.status.value,
                       extra.get("wall", rec.seconds), bool(extra.get("timed_out", rec.status.value == "timeout")),
                       bool(extra.get("clean_violation", False)), rec.reason))
    return out


def summary_csv(rows: list[Row]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(r.values() for r in rows)
    return buffer.getvalue()


def summary_markdown(rows: list[Row], title: str) -> str:
    """Counts, agreement, then the per-instance table (wrong answers in bold, listed first)."""
    counts: Counter[str] = Counter(r.verdict for r in rows)
    agree = Counter(r.agreement for r in rows)
    solved = counts["proved"] + counts["falsified"]
    total_s = sum(r.seconds or 0.0 for r in rows)
    head = [f"# {title}", "",
            f"{len(rows)} instances: {solved} solved ({counts['proved']} proved, {counts['falsified']} falsified), "
            f"{len(rows) - solved} open; {total_s:.1f} s in all."]
    if any(r.instance.expected is not None for r in rows):
        wrong = agree["WRONG"]
        head.append(f"Against the expected verdicts: {agree['ok']} agree, **{wrong} wrong**, {agree['open']} open, "
                    f"{agree['new']} decided where none was known." if wrong else
                    f"Against the expected verdicts: {agree['ok']} agree, 0 wrong, {agree['open']} open, "
                    f"{agree['new']} decided where none was known.")
    clean = sum(r.clean for r in rows)
    if clean:
        head.append(f"{clean} falsified instance(s) are violated at the centre of their input box already "
                    "(no perturbation needed: not an attack success).")
    tally = markdown_table(("verdict", "count"), counts.most_common())
    ordered = sorted(rows, key=lambda r: r.agreement != "WRONG")
    table = markdown_table(("instance", "expected", "verdict", "agreement", "seconds", "timed out"),
                           [(_bold(r.instance.name, r), r.instance.expected or "", _bold(r.shown, r),
                             _bold(r.agreement, r), r.seconds, "yes" if r.timed_out else "") for r in ordered])
    return "\n".join([*head, "", tally, "", table, ""])


def _bold(text: str, row: Row) -> str:
    return f"**{text}**" if row.agreement == "WRONG" else text
