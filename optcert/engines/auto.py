"""`auto`: the portfolio engine (the default of `verify` and `vnncomp`).

Within one wall-clock budget it runs, per case:
1. the root bound of each search arm (cheap incomplete bounds: CROWN / alpha-CROWN; an easy case
   ends there), then the falsifier (search/falsify.py) for a short first share of the budget;
2. complete methods ("arms", engines/arms.py) chosen by the case's shape (`plan`): input
   splitting for inputs of low dimension, ReLU splitting with alpha/beta-CROWN, the exact MILP
   for nets with few unstable neurons, and for deeper nets where no MILP arm runs, the per-neuron
   LP tightening of the root's intermediate bounds that the MILP arm runs first; once that
   tightening is complete, ReLU splitting restarts from the tightened root (`hand_off`);
3. the arms interleaved in time slices that double every round, the falsifier resumed with a small
   share of each round. Each arm's share of a slice starts from a prior by shape (`prior_weights`)
   and is then set by the measured criterion (`weights`): each search arm's pace (the share of the
   root it decided per second) projects its remaining time; the fastest-projected arm gets full
   slices, slower ones a half, a quarter or an eighth, and an arm projected to finish within one
   more slice keeps the CPU for a few slices in a row — so the input-vs-ReLU choice is made by
   measurement, not only by the input dimension; the MILP and tightening arms (which show no
   pace) keep their prior shares, their eligibility being decided by the net's shape.
On a machine with two or more cores the HiGHS arm (MILP or tightening) runs in a second thread
beside the search arms instead of taking turns with them (`lanes`, engines/lane.py).
The first arm that proves or falsifies decides; per-row bounds of all arms are combined (the best
certified bound per row, valid whatever arm gave it), so a case may also be proved jointly. The
result's certificate names the method that decided (`decided_by`) and holds its certificate, and
its evidence for `optcert check` is the deciding arm's (engines/auto_evidence.py).
Verdicts are decided in certify.py, as for every engine.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from enum import Enum

import numpy as np

from optcert.certify import EngineOutput
from optcert.checking.evidence import case_entry, evidence
from optcert.compiled import CompiledCase
from optcert.engines.arms import MilpArm, SearchArm, TightenArm, arm_summary
from optcert.engines.auto_evidence import RECIPE, case_evidence
from optcert.engines.bnb import BnbOptions, CaseTask
from optcert.engines.lane import SolverLane, usable_cores
from optcert.engines.quick import quick_root
from optcert.errors import InvalidOptionError
from optcert.precision import check_device
from optcert.search.branching import Rule, Split
from optcert.search.falsify import FalsifySettings, falsify
from optcert.solve.progressive import ResumableTightening, Tightening
from optcert.spec.problem import Combine, VerificationProblem


class Method(Enum):
    """`auto`: the portfolio's own choice; otherwise only that arm (after the falsifier)."""

    AUTO = "auto"
    INPUT = "input"
    RELU = "relu"
    MILP = "milp"


INPUT_ONLY = 8          # inputs up to which input splitting is the expected winner (others get ¼)
INPUT_FIRST = 20        # inputs (of positive width) up to which input splitting is tried first
INPUT_MAX = 64          # above this input bisection is not tried at all (2^64 boxes)
MILP_MAX_UNSTABLE = 250  # unstable neurons (IBP at the root) up to which the MILP arm runs
FALSIFY_FIRST = 0.005   # share of the budget for the falsifier before the arms (0.1 s to 1.5 s): most
                        # counterexamples it finds come in its first 0.05 s, and the rounds resume it
FALSIFY_ROUND = 0.125   # share of each round's slice for the resumed falsifier
CONTINUE = 4            # slices in a row for an arm projected to finish within one more
MIN_TURN = 0.1          # seconds: no arm starts a turn with less than this left
OPENING_SHARE = 0.25    # a case's opening takes at most this share of its part of the time left
LAYER_SHARE = 0.04      # share of the budget for the per-neuron LPs of each layer (2.4 s at 60 s)
POLL = 0.5              # seconds: while the solver lane runs, a search arm's turn is cut in pieces this long
SOLVER_ARMS = ("milp", "tighten")   # the arms that run in the solver lane
ROOT_NOTE = "intermediate bounds tightened by per-neuron LPs (certified by their duals)"


@dataclass(frozen=True)
class AutoOptions:
    """`method`: auto | input | relu | milp; `slice`: first time slice as a share of the case's
    budget (doubled every round); `drop`: an arm projected to need more than this × the best
    arm's time gets a quarter slice (within it, a half); `branching`: ReLU rule of the ReLU-split
    arm; `seed`; `device`; `evidence`: the search arms record their trees for `optcert check`
    (off: the recording's CPU is saved, and a proof is then UNCHECKABLE); `lanes`: 2 runs the
    MILP / tightening arm in a second thread beside the search arms where this process may use
    two or more cores, 1 keeps every arm in one thread (the BLAS/torch pools are set apart, by
    `--threads`)."""

    method: Method = Method.AUTO
    slice: float = 0.01
    drop: float = 8.0
    branching: Rule = Rule.BABSR
    seed: int = 0
    device: str = "cpu"
    evidence: bool = True
    lanes: int = 2

    def __post_init__(self):
        check_device(self.device)
        if self.lanes not in (1, 2):
            raise InvalidOptionError(f"option 'lanes' must be 1 or 2, got {self.lanes}")
        if not 0 < self.slice <= 1:
            raise InvalidOptionError(f"option 'slice' must be in (0, 1], got {self.slice}")
        if not self.drop >= 1:
            raise InvalidOptionError(f"option 'drop' must be ≥ 1, got {self.drop}")


@dataclass(frozen=True)
class Shape:
    """What the plan looks at: inputs of positive width, ReLU neurons, unstable ones under IBP,
    hidden ReLU layers."""

    inputs: int
    relus: int
    unstable: int
    layers: int = 1


def shape_of(cc: CompiledCase) -> Shape:
    return Shape(int(np.sum(cc.hi > cc.lo)), int(sum(cc.net.sizes()[1:-1])),
                 int(sum(c["unstable"] for c in cc.ibp.counts())), len(cc.net.layers) - 1)


def plan(shape: Shape, method: Method = Method.AUTO) -> tuple[str, ...]:
    """The arms to interleave, in the order each round runs them (module doc)."""
    if method is not Method.AUTO:
        return (method.value,)
    arms = ["input"] if shape.inputs <= INPUT_FIRST else []
    arms.append("relu")
    if INPUT_FIRST < shape.inputs <= INPUT_MAX:
        arms.append("input")
    if 0 < shape.unstable <= MILP_MAX_UNSTABLE:
        arms.append("milp")
    elif shape.inputs > INPUT_ONLY and shape.layers >= 2 and shape.unstable > 0:
        arms.append("tighten")     # the LP tightening the MILP arm would run first, for ReLU splitting
    return tuple(arms)


def prior_weights(arms: tuple[str, ...], shape: Shape) -> dict[str, float]:
    """Each arm's share of a round's slice before anything is measured: for inputs of very low
    dimension (≤ INPUT_ONLY) input splitting is the expected winner (ReLU splitting and the MILP
    get a quarter); otherwise every arm gets a full slice."""
    low = shape.inputs <= INPUT_ONLY
    return {a: (0.25 if low and a != "input" else 1.0) for a in arms}


def weights(projected: dict[str, float | None], prior: dict[str, float], drop: float) -> dict[str, float]:
    """Each live arm's share of the next round's slice from the measured paces: `projected[name]`
    is an arm's projected remaining seconds (inf: no progress yet; None: an arm that cannot tell,
    the MILP, which keeps its prior share). The fastest-projected search arm gets 1, one within
    `drop` × its time 1/2, a slower one 1/4, one with no progress while another progresses 1/8.
    No arm is dropped for its pace: early paces mislead (mnistfc 256x2 prop_6_0.03: ReLU splitting
    closed 92% of the root in 10 s and nothing in the next 50 s, where the MILP needs 11 s; ACAS Xu
    1_2 prop_3: ReLU splitting looked ahead after two slices where input splitting proves in 4 s)."""
    finite = [p for p in projected.values() if p is not None and math.isfinite(p)]
    if not finite:
        return {name: prior[name] for name in projected}
    best = min(finite)
    out = {}
    for name, p in projected.items():
        if p is None:
            out[name] = prior[name]
        elif p == best:
            out[name] = 1.0
        elif p <= drop * best:
            out[name] = 0.5
        else:
            out[name] = 0.25 if math.isfinite(p) else 0.125
    return out


def slices(first: float, cap: float = 3600.0):
    """Slice lengths of successive rounds: first, 2·first, 4·first, … (at most `cap`), for ever;
    the caller stops at its deadline and cuts each slice there."""
    s = first
    while True:
        yield s
        s = min(2 * s, cap)


class _Portfolio:
    """One case: its arms, the resumed falsifier and the combined bounds."""

    def __init__(self, problem: VerificationProblem, cc: CompiledCase, options: AutoOptions,
                 out: EngineOutput, deadline: float):
        self.cc, self.options, self.out, self.deadline = cc, options, out, deadline
        self.shape = shape_of(cc)
        self.checker = CaseTask(problem, cc, BnbOptions(split=Split.RELU, device=options.device), out)
        self.falsified_rounds = 0
        self.problem = problem
        arms = plan(self.shape, options.method)
        self.tightening = ResumableTightening(      # run by the milp/tighten arm
            cc.net, cc.ibp, Tightening.LP, layer_time_limit=LAYER_SHARE * max(deadline - time.monotonic(), 0.0))
        self.retired: list = []      # arms replaced by a restart (their certified bounds still count)
        self.arms: dict = {}
        for name in arms:
            self.arms[name] = self._arm(name, self.cc)
        self.log: list[list] = []
        self.out_of_time = False     # run() stopped with arms still live because the time was up
        self.misprojected: set[str] = set()   # arms whose pace promised an end that did not come (_turn)
        self.lane: SolverLane | None = None   # the solver arm's worker thread, while rounds() runs

    def _arm(self, name: str, cc: CompiledCase):
        if name == "milp":
            return MilpArm(cc, self.checker.check, self.best_rows, self.deadline, self.tightening)
        if name == "tighten":
            return TightenArm(self.tightening)
        split = Split.INPUT if name == "input" else Split.RELU
        options = BnbOptions(split=split, branching=self.options.branching, seed=self.options.seed,
                             device=self.options.device, evidence=self.options.evidence)
        return SearchArm(name, CaseTask(self.problem, cc, options, self.out), options, self.deadline)

    def hand_off(self, live: list[str]) -> None:
        """Once the root tightening is complete, restart ReLU splitting from the tightened root
        (valid over the whole input region, so over every domain); the old arm's certified bounds
        are kept. A ReLU arm that had stopped (e.g. at its domain cap) runs again."""
        if not self._hand_off_due():
            return
        self.retired.append(self.arms["relu"])
        arm = self._arm("relu", dataclasses.replace(self.cc, ibp=self.tightening.bounds))
        arm.root_note = ROOT_NOTE
        self.arms["relu"] = arm
        if "relu" not in live:
            live.append("relu")
        self.log.append(["restart relu from the tightened root", round(time.monotonic(), 3), None])

    def _hand_off_due(self) -> bool:
        return not self.retired and self.tightening.done and "relu" in self.arms

    def best_rows(self) -> np.ndarray:
        rows = [a.state.rows for a in [*self.arms.values(), *self.retired]]
        return np.max(rows, axis=0) if rows else np.full(self.cc.case.spec.rows, -np.inf)

    def best_key(self) -> float | None:
        keys = [a.state.key for a in [*self.arms.values(), *self.retired] if a.state.key is not None]
        return max(keys) if keys else None

    def proved_jointly(self) -> bool:
        sound = self.cc.sound(self.best_rows())
        value = float(sound.max() if self.cc.case.combine is Combine.ANY else sound.min())
        key = self.best_key()
        if key is not None:
            value = max(value, float(np.nextafter(key - np.max(self.cc.fold_error, initial=0.0), -np.inf)))
        return value > 0

    def falsify(self, until: float) -> bool:
        settings = FalsifySettings(seed=self.options.seed, device=self.options.device, offset=self.falsified_rounds)
        report = falsify(self.cc, settings, until, self.checker.check)
        self.falsified_rounds += report.rounds
        self.log.append(["falsifier", round(time.monotonic(), 3), "falsified" if report.found else None])
        return report.found

    def opening(self, start_share: float, until: float) -> str | None:
        """The search arms' root bounds, then the falsifier for `start_share` seconds (0.1 to 1.5,
        and not beyond `until`); what decided, if anything."""
        for name, arm in self.arms.items():   # cheap incomplete bounds decide easy cases
            if isinstance(arm, SearchArm) and time.monotonic() < self.deadline:
                status = arm.root()
                self.log.append([f"{name} root", round(time.monotonic(), 3), status])
                if status in ("proved", "falsified"):
                    return name
        if self.proved_jointly():
            return "+".join(self.arms)
        first = min(1.5, max(0.1, start_share))
        if self.falsify(min(self.deadline, until, time.monotonic() + first)):
            return "falsifier"
        return None

    def rounds(self) -> str | None:
        """Interleave the live arms until one decides (its name) or the time is up (None); the
        solver arm runs meanwhile in its own lane where there is one (`_open_lane`)."""
        live = [name for name, arm in self.arms.items() if arm.state.status in (None, "timeout")]
        self.lane = self._open_lane(live)
        try:
            return self._rounds(live)
        finally:
            if self.lane is not None:
                asked = time.monotonic()
                self.lane.finish()
                now = time.monotonic()
                self.log.append([f"{self.lane.name} thread stopped", round(now, 3), round(now - asked, 3)])

    def _open_lane(self, live: list[str]) -> SolverLane | None:
        """With two lanes, two usable cores, a live solver arm and a live search arm: the solver arm
        leaves `live` and starts in a worker thread. Not where input splitting is the expected
        winner (≤ INPUT_ONLY inputs, the MILP on a quarter share): there the MILP decides almost
        nothing, and stopping it can take seconds (engines/lane.py) — ACAS Xu 1_1 prop_5, proved by
        input splitting: 10.2–15.7 s with the lane, 10.5–12.1 s without."""
        solver = [n for n in live if n in SOLVER_ARMS]
        if (self.options.lanes < 2 or usable_cores() < 2 or not solver or len(solver) == len(live)
                or self.shape.inputs <= INPUT_ONLY):
            return None
        live.remove(solver[0])
        lane = SolverLane(self.arms[solver[0]], self.deadline)
        lane.start()
        self.log.append([f"{solver[0]} in its own thread", round(time.monotonic(), 3), None])
        return lane

    def _rounds(self, live: list[str]) -> str | None:
        share = prior_weights(tuple(live), self.shape)
        budget = self.deadline - time.monotonic()
        for length in slices(max(0.25, self.options.slice * budget)):
            if not live and not (self.lane and self.lane.running):
                break
            if self.deadline - time.monotonic() < MIN_TURN:
                self.out_of_time = True
                break
            if not live:      # only the lane works: wait for it
                assert self.lane is not None
                self.lane.wait(min(length, self.deadline - time.monotonic() - MIN_TURN))
            for name in list(live):
                status = self._turn(name, length * share.get(name, 1.0))
                if status in ("proved", "falsified"):
                    return name
                if decided := self._settled(live):
                    return decided
                if status is not None and status != "timeout":
                    live.remove(name)
                self.hand_off(live)
            self.hand_off(live)
            if decided := self._settled(live):
                return decided
            if self.falsify(min(self.deadline, time.monotonic() + FALSIFY_ROUND * length)):
                return "falsifier"
            projected = {n: self.arms[n].projected() for n in live}
            share = weights(projected, prior_weights(tuple(live), self.shape), self.options.drop)
            self.log.append(["weights", round(time.monotonic(), 3), share])
        return None

    def _settled(self, live: list[str]) -> str | None:
        """What decided the case between turns, if anything: the lane's arm (it proved or
        falsified), or the live arms and the lane's jointly (their best rows prove it)."""
        if self._lane_decided():
            assert self.lane is not None
            return self.lane.name
        if self.proved_jointly():
            return "+".join([*live, *([self.lane.name] if self.lane else [])])
        return None

    def _interrupted(self) -> bool:
        """Should a search arm's turn end early: has the lane decided, or is a hand-off due?"""
        return self._lane_decided() or self._hand_off_due()

    def _lane_decided(self) -> bool:
        return self.lane is not None and self.lane.arm.state.status in ("proved", "falsified")

    def _advance(self, arm, until: float) -> str | None:
        """`arm.advance(until)`; while the solver lane runs, in pieces of POLL seconds, ending early
        when the lane decides or completes the root tightening (a hand-off is due)."""
        while True:
            lane = self.lane is not None and self.lane.running
            status = arm.advance(min(until, time.monotonic() + POLL) if lane else until)
            if status is not None or not lane or time.monotonic() >= until or self._interrupted():
                return status

    def _turn(self, name: str, length: float) -> str | None:
        """One arm's turn: a slice of `length`, repeated (up to CONTINUE times) while its pace
        projects it to finish within one more slice — a likely winner is not interrupted. An arm
        whose projection failed so (CONTINUE slices, still running) gets single slices from then
        on: near the end of a ReLU-split search the last, hardest domains make its pace mislead
        (mnistfc 256x2 prop_10_0.05: 99.99997 % of the root closed for 40 s), and its extra
        slices starved the MILP arm that proves the case."""
        arm = self.arms[name]
        status = None
        for turn in range(1 if name in self.misprojected else CONTINUE):
            if self.deadline - time.monotonic() < MIN_TURN:
                break
            status = self._advance(arm, min(self.deadline, time.monotonic() + length))
            self.log.append([name, round(time.monotonic(), 3), status])
            pace = arm.projected()
            if status is not None or pace is None or not pace <= length or self._interrupted():
                break
            if turn == CONTINUE - 1:
                self.misprojected.add(name)
        return status

    def undecided(self) -> str:
        """Why no arm decided: each arm's state."""
        return ", ".join(f"{name}: {arm.state.status or 'time limit reached'}" for name, arm in self.arms.items())

    def summary(self, decided: str | None) -> dict:
        arms = {name: arm_summary(arm) for name, arm in self.arms.items()}
        if decided == "falsifier":
            decision: dict = {"method": "falsifier (APGD, search/falsify.py)", "rounds": self.falsified_rounds}
        elif decided in arms:
            decision = arms[decided]
        else:        # proved jointly (rows from several arms) or undecided
            decision = {name: arms[name] for name in (decided or "").split("+") if name in arms}
        return {"case": self.cc.index, "decided_by": decided, "decision": decision,
                "shape": vars(self.shape), "plan": list(self.arms), "arms": arms,
                "falsifier_rounds": self.falsified_rounds, "schedule": self.log}


def run_auto(problem: VerificationProblem, compiled: list[CompiledCase], options: AutoOptions,
             deadline: float) -> EngineOutput:
    """The portfolio (module doc) on every case: first every case's opening (root bounds and a
    first falsifier share: a counterexample in any case ends the run, so a cheap one is not kept
    waiting behind another case's search), then the rounds of each case still open, the time
    left shared equally among them."""
    if options.method is Method.AUTO:
        quick = quick_root(problem, compiled, deadline)    # before torch is imported (engines/quick.py)
        if quick is not None:
            for entry, cc in zip(quick.certificate["cases"], compiled):
                entry["shape"] = vars(shape_of(cc))
            return quick
    out = EngineOutput(lower=[np.full(cc.case.spec.rows, -np.inf) for cc in compiled],
                       case_lower=[None] * len(compiled),
                       certificate={"method": "auto portfolio", "cases": []})
    entries = [case_entry(cc.index, [None] * cc.case.spec.rows) for cc in compiled]
    total = max(deadline - time.monotonic(), 0.0) if math.isfinite(deadline) else 3600.0
    folios = [_Portfolio(problem, cc, options, out, deadline) for cc in compiled]
    decided: dict[int, str | None] = {}
    for k, folio in enumerate(folios):
        left = _share(deadline, len(folios) - k)
        decided[k] = folio.opening(FALSIFY_FIRST * total / len(compiled), time.monotonic() + OPENING_SHARE * left)
        if _falsified(folio, decided[k]):
            break
    else:
        still = [k for k in decided if decided[k] is None]
        for n, k in enumerate(still):
            folios[k].deadline = min(deadline, time.monotonic() + _share(deadline, len(still) - n))
            decided[k] = folios[k].rounds()
            if _falsified(folios[k], decided[k]):
                break
    reasons = []
    falsified = any(_falsified(folios[k], d) for k, d in decided.items())
    for k, d in decided.items():
        folio, cc = folios[k], compiled[k]
        entries[cc.index], out.lower[cc.index], key = case_evidence(folio, d)
        assert out.case_lower is not None
        out.case_lower[cc.index] = key
        out.certificate["cases"].append(folio.summary(d))
        if d is None and not falsified:
            reasons.append(f"case {cc.index} undecided ({folio.undecided()})")
            out.timed_out |= folio.out_of_time or time.monotonic() >= folio.deadline - 1e-3
    out.certificate["decided_by"] = [c["decided_by"] for c in out.certificate["cases"]]
    out.certificate["evidence"] = evidence(RECIPE, entries)
    if any("milp" in (d or "").split("+") for d in out.certificate["decided_by"]):
        out.certificate["trust"] = "solver"     # a MILP's proven bound decided (see engines/linear.py)
    out.reason = "; ".join(reasons)
    if out.timed_out:
        out.reason = f"time limit reached; {out.reason}"
    return out


def _share(deadline: float, ways: int) -> float:
    """Seconds each of `ways` equal parts of the time left until `deadline` gets (inf: no limit)."""
    return (deadline - time.monotonic()) / ways if math.isfinite(deadline) else math.inf


def _falsified(folio: _Portfolio, decided: str | None) -> bool:
    """Did the case end with a re-checked counterexample (the falsifier's or an arm's)?"""
    return decided is not None and (decided == "falsifier"
                                    or folio.arms[decided.split("+")[0]].state.status == "falsified")
