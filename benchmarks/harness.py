"""Time contenders side by side in one process, alternating, and compare medians.

Absolute times on a shared machine are noise; ratios measured in the same run,
with the contenders interleaved round by round, are not. Each case names the
contender that is ours, the bare call to subtract (for overhead), and the
targets it must meet as ratios against its peers or as a floor on throughput.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Contender = Callable[[], object]


@dataclass(frozen=True)
class Target:
    """Ours must cost at most ``max_ratio`` times ``peer`` (overhead or time)."""

    peer: str
    max_ratio: float


@dataclass(frozen=True)
class RateTarget:
    """``contender`` must handle at least ``min_per_second`` items per second."""

    contender: str
    min_per_second: float


@dataclass(frozen=True)
class Verdict:
    """One target's goal, the figure measured for it and whether it was met."""

    goal: str
    value: float | None
    shown: str
    met: bool | None


@dataclass
class Case:
    """One benchmark: contenders timed in turn, with targets against peers.

    ``baseline`` names a contender (the bare call) whose time is subtracted
    from every other to give overhead; without one, ratios compare whole times.
    ``items`` is how many units one call handles, for throughput figures.
    ``setup`` runs before every call, outside the timer (e.g. to refill a
    queue the call drains); ``teardown`` runs once after the last round.
    ``warmup`` makes one untimed call before each timed sample. ``rounds``
    caps the rounds of a slow case below the run's ``repeats``. ``scaling``
    quotes every contender's throughput against ours in the closing note.
    """

    name: str
    contenders: dict[str, Contender]
    ours: str = "ours"
    baseline: str | None = None
    targets: Sequence[Target | RateTarget] = field(default_factory=list)
    number: int = 1000
    items: int = 1
    unit: str = "call"
    item_unit: str = ""
    note: str = ""
    setup: Callable[[], object] | None = None
    teardown: Callable[[], object] | None = None
    warmup: bool = True
    rounds: int | None = None
    scaling: bool = False


@dataclass
class Result:
    """The medians of one case and how its targets fared."""

    case: Case
    medians: dict[str, float]
    errors: dict[str, str]

    def cost(self, name: str) -> float:
        """Return the per-call cost of ``name``: overhead if there is a baseline."""
        median = self.medians[name]
        if self.case.baseline is None or name == self.case.baseline:
            return median
        return max(median - self.medians[self.case.baseline], 1e-12)

    def rate(self, name: str) -> float:
        """Return the items ``name`` handles per second."""
        median = self.medians[name]
        return self.case.items / median if median else float("inf")

    def ratio(self, peer: str) -> float | None:
        """Return ours / peer, or None when either did not run."""
        ours = self.case.ours
        if ours not in self.medians or peer not in self.medians:
            return None
        return self.cost(ours) / self.cost(peer)

    def verdicts(self) -> list[Verdict]:
        """Return each target with the figure measured and whether it was met."""
        return [self._verdict(target) for target in self.case.targets]

    def _verdict(self, target: Target | RateTarget) -> Verdict:
        if isinstance(target, RateTarget):
            goal = f"{target.contender} ≥ {target.min_per_second:,.0f} /s"
            if target.contender not in self.medians:
                return Verdict(goal, None, "n/a", None)
            rate = self.rate(target.contender)
            return Verdict(goal, rate, f"{rate:,.0f} /s", rate >= target.min_per_second)

        goal = f"ours/{target.peer} ≤ {target.max_ratio}"
        ratio = self.ratio(target.peer)
        if ratio is None:
            return Verdict(goal, None, "n/a", None)
        return Verdict(goal, ratio, f"{ratio:.3f}", ratio <= target.max_ratio)


def measure(case: Case, *, repeats: int, scale: float = 1.0) -> Result:
    """Time every contender ``repeats`` rounds, rotating the order each round."""
    number = max(1, int(case.number * scale))
    samples: dict[str, list[float]] = {name: [] for name in case.contenders}
    errors: dict[str, str] = {}
    names = list(case.contenders)
    if case.rounds is not None:
        repeats = min(repeats, case.rounds)

    try:
        for round_ in range(repeats):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                if name in errors:
                    continue
                try:
                    samples[name].append(_time_one(case, case.contenders[name], number))
                except Exception as exc:  # a peer that breaks is reported, not fatal
                    errors[name] = f"{type(exc).__name__}: {exc}"
    finally:
        if case.teardown is not None:
            case.teardown()

    medians = {
        n: statistics.median(s) for n, s in samples.items() if s and n not in errors
    }
    return Result(case, medians, errors)


def _time_one(case: Case, fn: Contender, number: int) -> float:
    if case.setup is not None:
        return _time_with_setup(case.setup, fn, number, warmup=case.warmup)

    if case.warmup:
        fn()  # warm caches and lazy imports outside the timed loop
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - start) / number
    finally:
        gc.enable()


def _time_with_setup(
    setup: Callable[[], object], fn: Contender, number: int, *, warmup: bool
) -> float:
    if warmup:
        setup()
        fn()
    total = 0.0
    for _ in range(number):
        setup()
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            total += time.perf_counter() - start
        finally:
            gc.enable()
    return total / number
