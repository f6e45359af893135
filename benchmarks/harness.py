"""Time contenders side by side in one process, alternating, and compare medians.

Absolute times on a shared machine are noise; ratios measured in the same run,
with the contenders interleaved round by round, are not. Each case names the
contender that is ours, the bare call to subtract (for overhead), and the
targets it must meet as ratios against its peers.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Contender = Callable[[], object]


@dataclass(frozen=True)
class Target:
    """Ours must cost at most ``max_ratio`` times ``peer`` (overhead or time)."""

    peer: str
    max_ratio: float


@dataclass
class Case:
    """One benchmark: contenders timed in turn, with targets against peers.

    ``baseline`` names a contender (the bare call) whose time is subtracted
    from every other to give overhead; without one, ratios compare whole times.
    ``items`` is how many units one call handles, for throughput figures.
    """

    name: str
    contenders: dict[str, Contender]
    ours: str = "ours"
    baseline: str | None = None
    targets: list[Target] = field(default_factory=list)
    number: int = 1000
    items: int = 1
    unit: str = "call"
    note: str = ""


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

    def ratio(self, peer: str) -> float | None:
        """Return ours / peer, or None when either did not run."""
        ours = self.case.ours
        if ours not in self.medians or peer not in self.medians:
            return None
        return self.cost(ours) / self.cost(peer)

    def verdicts(self) -> list[tuple[Target, float | None, bool | None]]:
        """Return each target with its ratio and whether it was met."""
        out: list[tuple[Target, float | None, bool | None]] = []
        for target in self.case.targets:
            ratio = self.ratio(target.peer)
            out.append(
                (target, ratio, None if ratio is None else ratio <= target.max_ratio)
            )
        return out


def measure(case: Case, *, repeats: int, scale: float = 1.0) -> Result:
    """Time every contender ``repeats`` rounds, rotating the order each round."""
    number = max(1, int(case.number * scale))
    samples: dict[str, list[float]] = {name: [] for name in case.contenders}
    errors: dict[str, str] = {}
    names = list(case.contenders)

    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            if name in errors:
                continue
            try:
                samples[name].append(_time_one(case.contenders[name], number))
            except Exception as exc:  # a peer that breaks is reported, not fatal
                errors[name] = f"{type(exc).__name__}: {exc}"

    medians = {
        n: statistics.median(s) for n, s in samples.items() if s and n not in errors
    }
    return Result(case, medians, errors)


def _time_one(fn: Contender, number: int) -> float:
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
