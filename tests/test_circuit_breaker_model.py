"""The breaker against a plain model, over random call and clock sequences.

The model restates the documented rules as directly as possible: one list for
the rate window, one counter for the streak, no locks and no generations (the
calls here run one after another).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from integration_automation_patterns._types import ManualClock
from integration_automation_patterns.circuit_breaker import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
)
from tests.reliability.sizes import scaled

START = 1_700_000_000.0
# Multiples of 0.5 keep every clock reading exact, so "slow" is never a rounding call.
DURATIONS = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])
ADVANCES = st.sampled_from([0.5, 1.0, 5.0, 10.0, 30.0])


class Boom(Exception):
    """An expected failure."""


class Throttled(Boom):
    """An expected type that the breaker is told to exclude."""


@dataclass
class Config:
    """One breaker configuration, in both its real and its model form."""

    failure_threshold: int
    recovery_timeout: float
    success_threshold: int
    rate: float | None = None
    window_size: int = 100
    window_seconds: float | None = None
    minimum_calls: int = 10
    slow_duration: float | None = None
    slow_rate: float | None = None

    @property
    def rate_mode(self) -> bool:
        """Return whether rates, not streaks, trip the breaker."""
        return self.rate is not None or self.slow_rate is not None

    def build(self, clock: ManualClock) -> CircuitBreaker:
        """Return the breaker under test for this configuration."""
        return CircuitBreaker(
            "model",
            self.failure_threshold,
            self.recovery_timeout,
            self.success_threshold,
            (Boom,),
            failure_rate_threshold=self.rate,
            window_size=self.window_size,
            window_seconds=self.window_seconds,
            minimum_calls=self.minimum_calls,
            slow_call_duration=self.slow_duration,
            slow_call_rate_threshold=self.slow_rate,
            exclude=Throttled,
            clock=clock,
        )


FRACTIONS = st.sampled_from([0.25, 0.5, 0.75, 1.0])
COMMON = {
    "failure_threshold": st.integers(1, 4),
    "recovery_timeout": st.sampled_from([0.0, 5.0, 30.0]),
    "success_threshold": st.integers(1, 3),
}
CONSECUTIVE = st.builds(
    Config,
    **COMMON,
    slow_duration=st.none() | st.just(2.0),
)
RATE = st.builds(
    Config,
    **COMMON,
    rate=st.none() | FRACTIONS,
    window_size=st.integers(1, 6),
    window_seconds=st.none() | st.sampled_from([5.0, 10.0]),
    minimum_calls=st.integers(1, 4),
    slow_duration=st.just(2.0),
    slow_rate=st.none() | FRACTIONS,
)


@dataclass
class Model:
    """The breaker's documented rules, restated without concurrency."""

    config: Config
    now: float
    state: CircuitState = CircuitState.CLOSED
    opened_at: float = 0.0
    changed_at: float = START
    forced: bool = False
    streak: int = 0
    probe_successes: int = 0
    window: list[tuple[float, bool, bool]] = field(default_factory=list)
    successes: int = 0
    successes_since_rebase: int = 0
    failures: int = 0
    ignored: int = 0
    slow: int = 0
    rejected: int = 0
    times_opened: int = 0
    last_failure: float | None = None

    def current(self) -> CircuitState:
        """Return the state now, making the timed OPEN -> HALF_OPEN move."""
        due = self.opened_at + self.config.recovery_timeout
        if self.state is CircuitState.OPEN and not self.forced and self.now >= due:
            self.move(CircuitState.HALF_OPEN)
        return self.state

    def move(self, state: CircuitState) -> None:
        """Enter a state."""
        self.state = state
        self.changed_at = self.now
        self.probe_successes = 0
        if state is CircuitState.HALF_OPEN:
            self.successes_since_rebase = 0
        if state is CircuitState.OPEN:
            self.opened_at = self.now
            self.times_opened += 1
        if state is CircuitState.CLOSED:
            self.streak = 0
            self.window = []

    def refusal(self) -> float | None:
        """Return retry_after if a call now would be refused, else None."""
        if self.current() is not CircuitState.OPEN:
            return None
        self.rejected += 1
        if self.forced:
            return math.inf
        return self.opened_at + self.config.recovery_timeout - self.now

    def finish(self, admitted_in: CircuitState, outcome: str, duration: float) -> None:
        """Account for a call admitted in one state that took ``duration``."""
        self.now += duration
        slow = self.config.slow_duration is not None
        slow = slow and duration >= (self.config.slow_duration or 0.0)
        self.slow += slow
        self.count(outcome)
        if outcome == "ignored":
            return
        failed = outcome == "failure"
        if admitted_in is CircuitState.HALF_OPEN:
            self.probe(failed, slow)
        elif self.config.rate_mode:
            self.record(failed, slow)
        else:
            self.streak = self.streak + 1 if failed else 0
            if self.streak >= self.config.failure_threshold:
                self.move(CircuitState.OPEN)

    def count(self, outcome: str) -> None:
        """Add one call to the lifetime totals."""
        if outcome == "success":
            self.successes += 1
            self.successes_since_rebase += 1
        elif outcome == "failure":
            self.failures += 1
            self.last_failure = self.now
        else:
            self.ignored += 1

    def probe(self, failed: bool, slow: bool) -> None:
        """Settle a probe: any failure reopens; enough successes close."""
        if failed:
            self.streak += 1
            self.move(CircuitState.OPEN)
        elif slow and self.config.slow_rate is not None:
            self.move(CircuitState.OPEN)
        else:
            self.probe_successes += 1
            if self.probe_successes >= self.config.success_threshold:
                self.move(CircuitState.CLOSED)

    def record(self, failed: bool, slow: bool) -> None:
        """Add to the rate window and trip when a rate reaches its threshold."""
        self.window.append((self.now, failed, slow))
        window = self.recent()
        if len(window) < self.config.minimum_calls:
            return
        failure_rate, slow_rate = rates(window)
        rate, slow_limit = self.config.rate, self.config.slow_rate
        if (rate is not None and failure_rate >= rate) or (
            slow_limit is not None and slow_rate >= slow_limit
        ):
            self.move(CircuitState.OPEN)

    def recent(self) -> list[tuple[float, bool, bool]]:
        """Return the calls still in the window."""
        span = self.config.window_seconds
        if span is None:
            return self.window[-self.config.window_size :]
        return [entry for entry in self.window if entry[0] > self.now - span]


def rates(window: list[tuple[float, bool, bool]]) -> tuple[float, float]:
    """Return the failure and slow-call fractions of a window."""
    if not window:
        return 0.0, 0.0
    return (
        sum(failed for _, failed, _ in window) / len(window),
        sum(slow for _, _, slow in window) / len(window),
    )


class BreakerMachine(RuleBasedStateMachine):
    """Drive a real breaker and the model with the same steps."""

    configs: st.SearchStrategy[Config] = CONSECUTIVE

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(start=START)

    @initialize(data=st.data())
    def build(self, data: st.DataObject) -> None:
        """Create the breaker and its model from one drawn configuration."""
        config = data.draw(self.configs)
        self.breaker = config.build(self.clock)
        self.model = Model(config, self.clock.monotonic())

    def attempt(self, outcome: str, duration: float) -> None:
        """Make one call on both sides and compare what the caller sees."""
        expected_refusal = self.model.refusal()
        admitted_in = self.model.state
        error = {"failure": Boom, "ignored": Throttled}.get(outcome)

        def protected() -> str:
            self.clock.advance(duration)
            if error is not None:
                raise error
            return "done"

        if expected_refusal is not None:
            with pytest.raises(CircuitOpenError) as refused:
                self.breaker.execute(protected)
            assert refused.value.retry_after == pytest.approx(expected_refusal)
            return

        if error is None:
            assert self.breaker.execute(protected) == "done"
        else:
            with pytest.raises(error):
                self.breaker.execute(protected)
        self.model.finish(admitted_in, outcome, duration)

    @rule(duration=DURATIONS)
    def succeed(self, duration: float) -> None:
        """A call that returns."""
        self.attempt("success", duration)

    @rule(duration=DURATIONS)
    def fail(self, duration: float) -> None:
        """A call that raises an expected exception."""
        self.attempt("failure", duration)

    @rule(duration=DURATIONS)
    def raise_excluded(self, duration: float) -> None:
        """A call that raises an excluded exception."""
        self.attempt("ignored", duration)

    @rule(seconds=ADVANCES)
    def advance(self, seconds: float) -> None:
        """Let time pass without calls."""
        self.clock.advance(seconds)
        self.model.now += seconds

    @rule()
    def reset(self) -> None:
        """Close the breaker by hand, forgetting the 0.2.0 counters."""
        self.breaker.reset()
        self.model.forced = False
        self.model.move(CircuitState.CLOSED)
        self.model.successes_since_rebase = 0
        self.model.last_failure = None

    @rule()
    def force_open(self) -> None:
        """Hold the breaker open by hand."""
        self.breaker.force_open()
        self.model.forced = True
        self.model.move(CircuitState.OPEN)

    @invariant()
    def same_state(self) -> None:
        """The breaker reports the model's state."""
        assert self.breaker.state is self.model.current()

    @invariant()
    def same_stats(self) -> None:
        """Every counter in stats() matches the model."""
        model = self.model
        model.current()
        stats = self.breaker.stats()
        window = model.recent()
        if model.config.rate_mode:
            failure_count = sum(failed for _, failed, _ in window)
            failure_rate, slow_rate = rates(window)
        else:
            failure_count = model.streak
            counted = model.successes + model.failures
            calls = counted + model.ignored
            failure_rate = model.failures / counted if counted else 0.0
            slow_rate = model.slow / calls if calls else 0.0

        assert (stats.failure_count, stats.success_count) == (
            failure_count,
            model.successes_since_rebase,
        )
        assert (stats.successes, stats.failures, stats.ignored_calls) == (
            model.successes,
            model.failures,
            model.ignored,
        )
        assert (stats.slow_calls, stats.rejected_calls, stats.times_opened) == (
            model.slow,
            model.rejected,
            model.times_opened,
        )
        assert stats.last_failure_time == model.last_failure
        assert stats.last_state_change_time == model.changed_at
        assert stats.failure_rate == pytest.approx(failure_rate)
        assert stats.slow_call_rate == pytest.approx(slow_rate)


class RateBreakerMachine(BreakerMachine):
    """The same steps against breakers in rate mode."""

    configs = RATE


MODEL_SETTINGS = settings(
    max_examples=scaled(1000, 60), stateful_step_count=30, deadline=None
)
TestConsecutiveModel = BreakerMachine.TestCase
TestConsecutiveModel.settings = MODEL_SETTINGS
TestRateModel = RateBreakerMachine.TestCase
TestRateModel.settings = MODEL_SETTINGS
