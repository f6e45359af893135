"""Behaviour of the circuit breaker: 0.2.0 contract, modes, probes, control."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import pickle
from collections.abc import Callable
from typing import NoReturn

import pytest

from integration_automation_patterns._types import IntegrationError, ManualClock
from integration_automation_patterns.circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerConfigError,
    CircuitBreakerStats,
    CircuitOpenError,
    CircuitState,
    CircuitTransition,
)


class Boom(Exception):
    """The failure the protected calls raise."""


LOOKUP: dict[str, int] = {}


def fail() -> None:
    raise Boom("downstream unavailable")


def ok() -> str:
    return "ok"


def state_of(breaker: CircuitBreaker) -> CircuitState:
    """Read the state property without letting mypy pin its value."""
    return breaker.state


def failures(breaker: CircuitBreaker, count: int) -> None:
    for _ in range(count):
        with pytest.raises(Boom):
            breaker.execute(fail)


def tripped(clock: ManualClock, **options: object) -> CircuitBreaker:
    breaker = CircuitBreaker("crm", 2, 30.0, clock=clock, **options)  # type: ignore[arg-type]
    failures(breaker, 2)
    assert state_of(breaker) is CircuitState.OPEN
    return breaker


def half_open(clock: ManualClock, **options: object) -> CircuitBreaker:
    breaker = tripped(clock, **options)
    clock.advance(30.0)
    assert state_of(breaker) is CircuitState.HALF_OPEN
    return breaker


# -- the 0.2.0 contract ------------------------------------------------------


def test_state_values_are_the_lowercase_names() -> None:
    """CircuitState keeps the 0.2.0 values."""
    assert [s.value for s in CircuitState] == ["closed", "open", "half_open"]


def test_open_error_is_a_runtime_and_integration_error() -> None:
    """CircuitOpenError(name, retry_after) is both a RuntimeError and ours."""
    error = CircuitOpenError("erp", 12.34)

    assert isinstance(error, RuntimeError)
    assert isinstance(error, IntegrationError)
    assert (error.name, error.retry_after) == ("erp", 12.34)
    assert str(error) == "Circuit 'erp' is OPEN. Retry after 12.3s."


def test_open_error_survives_pickling() -> None:
    """A refused call's error crosses process boundaries intact."""
    error = CircuitOpenError("erp", 3.0, state=CircuitState.HALF_OPEN)

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.name, copy.retry_after, copy.state) == ("erp", 3.0, error.state)
    assert str(copy) == str(error)


def test_positional_order_and_defaults_match_0_2_0() -> None:
    """The constructor keeps 0.2.0's positional order and defaults."""
    params = list(inspect.signature(CircuitBreaker).parameters.values())

    head = [(p.name, p.default) for p in params[:5]]
    assert head[0][0] == "name"
    assert head[1:] == [
        ("failure_threshold", 5),
        ("recovery_timeout", 60.0),
        ("success_threshold", 1),
        ("expected_exceptions", (Exception,)),
    ]
    assert all(p.kind is p.KEYWORD_ONLY for p in params[5:])


def test_stats_keep_the_0_2_0_fields_first() -> None:
    """CircuitBreakerStats can still be built from the six 0.2.0 fields."""
    stats = CircuitBreakerStats("x", CircuitState.CLOSED, 0, 0, None, 1.0)

    assert list(stats.__dataclass_fields__)[:6] == [
        "name",
        "state",
        "failure_count",
        "success_count",
        "last_failure_time",
        "last_state_change_time",
    ]
    assert stats.calls == 0


def test_trips_after_the_threshold_of_consecutive_failures(clock: ManualClock) -> None:
    """failure_threshold consecutive failures open the breaker."""
    breaker = CircuitBreaker("crm", failure_threshold=3, clock=clock)

    failures(breaker, 2)
    assert state_of(breaker) is CircuitState.CLOSED
    failures(breaker, 1)

    assert state_of(breaker) is CircuitState.OPEN
    assert breaker.stats().failure_count == 3


def test_a_success_breaks_the_streak(clock: ManualClock) -> None:
    """Failures must be consecutive: a success in between restarts the count."""
    breaker = CircuitBreaker("crm", failure_threshold=3, clock=clock)

    failures(breaker, 2)
    assert breaker.execute(ok) == "ok"
    failures(breaker, 2)

    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().failure_count == 2


def test_open_breaker_refuses_without_calling(clock: ManualClock) -> None:
    """While OPEN, calls are refused at once with the time left to wait."""
    breaker = tripped(clock)
    clock.advance(10.0)
    calls: list[int] = []

    with pytest.raises(CircuitOpenError) as refused:
        breaker.execute(calls.append, 1)

    assert calls == []
    assert refused.value.retry_after == pytest.approx(20.0)
    assert refused.value.state is CircuitState.OPEN
    assert breaker.stats().rejected_calls == 1


def test_reading_state_moves_open_to_half_open_when_due(clock: ManualClock) -> None:
    """The OPEN -> HALF_OPEN move happens lazily, on reading state."""
    breaker = tripped(clock)

    clock.advance(29.999)
    assert state_of(breaker) is CircuitState.OPEN
    clock.advance(0.001)
    assert state_of(breaker) is CircuitState.HALF_OPEN


@pytest.mark.parametrize("needed", [1, 3])
def test_success_threshold_probes_close_the_breaker(
    clock: ManualClock, needed: int
) -> None:
    """success_threshold successful probes return the breaker to CLOSED."""
    breaker = half_open(clock, success_threshold=needed)

    for _ in range(needed - 1):
        breaker.execute(ok)
        assert state_of(breaker) is CircuitState.HALF_OPEN
    breaker.execute(ok)

    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().failure_count == 0


def test_a_failed_probe_reopens_for_a_full_timeout(clock: ManualClock) -> None:
    """One failed probe sends the breaker back to OPEN, timer restarted."""
    breaker = half_open(clock, success_threshold=2)
    breaker.execute(ok)

    with pytest.raises(Boom):
        breaker.execute(fail)

    assert state_of(breaker) is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as refused:
        breaker.execute(ok)
    assert refused.value.retry_after == pytest.approx(30.0)


def test_zero_recovery_timeout_probes_at_once(clock: ManualClock) -> None:
    """With recovery_timeout=0 the next call after a trip is already a probe."""
    breaker = CircuitBreaker("crm", 1, 0.0, clock=clock)
    failures(breaker, 1)

    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert breaker.execute(ok) == "ok"
    assert state_of(breaker) is CircuitState.CLOSED


def test_stats_snapshot_counts_everything(clock: ManualClock) -> None:
    """stats() reports the 0.2.0 fields and the lifetime counters."""
    breaker = CircuitBreaker("crm", 2, 30.0, clock=clock)
    breaker.execute(ok)
    clock.advance(1.0)
    failures(breaker, 2)
    with pytest.raises(CircuitOpenError):
        breaker.execute(ok)

    stats = breaker.stats()

    assert stats.name == "crm"
    assert stats.state is CircuitState.OPEN
    assert (stats.failure_count, stats.success_count) == (2, 1)
    assert stats.last_failure_time == clock.monotonic()
    assert stats.last_state_change_time == clock.monotonic()
    assert (stats.calls, stats.successes, stats.failures) == (3, 1, 2)
    assert (stats.rejected_calls, stats.times_opened) == (1, 1)
    assert stats.failure_rate == pytest.approx(2 / 3)


# -- classification ------------------------------------------------------------


def test_unexpected_exceptions_pass_through_uncounted(clock: ManualClock) -> None:
    """Only expected_exceptions count as failures; others propagate unchanged."""
    breaker = CircuitBreaker("crm", 1, expected_exceptions=(Boom,), clock=clock)

    with pytest.raises(KeyError):
        breaker.execute(LOOKUP.__getitem__, "missing")

    stats = breaker.stats()
    assert stats.state is CircuitState.CLOSED
    assert (stats.failures, stats.ignored_calls) == (0, 1)


class Throttled(Boom):
    """An expected exception that callers choose not to count."""


@pytest.mark.parametrize(
    "exclude",
    [Throttled, (Throttled,), lambda exc: isinstance(exc, Throttled)],
    ids=["type", "tuple", "predicate"],
)
def test_excluded_exceptions_pass_through_uncounted(
    clock: ManualClock, exclude: type[BaseException] | Callable[[BaseException], bool]
) -> None:
    """exclude (types or a predicate) overrides expected_exceptions."""
    breaker = CircuitBreaker("crm", 1, clock=clock, exclude=exclude)

    def throttled() -> NoReturn:
        raise Throttled

    with pytest.raises(Throttled):
        breaker.execute(throttled)
    assert state_of(breaker) is CircuitState.CLOSED
    failures(breaker, 1)
    assert state_of(breaker) is CircuitState.OPEN


def test_a_raising_exclude_predicate_counts_the_call(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken predicate is logged; the caller's exception still propagates."""

    def broken(exc: BaseException) -> bool:
        raise RuntimeError("predicate bug")

    breaker = CircuitBreaker("crm", 1, clock=clock, exclude=broken)

    with caplog.at_level(logging.ERROR):
        failures(breaker, 1)

    assert state_of(breaker) is CircuitState.OPEN
    assert "exclude predicate raised" in caplog.text


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_probe_releases_its_permit(
    clock: ManualClock, interrupt: type[BaseException]
) -> None:
    """A probe stopped by an interrupt counts as neither outcome."""
    breaker = half_open(clock)

    def interrupted() -> NoReturn:
        raise interrupt

    with pytest.raises(interrupt):
        breaker.execute(interrupted)

    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert breaker.execute(ok) == "ok"
    assert state_of(breaker) is CircuitState.CLOSED


# -- rate mode ---------------------------------------------------------------


def test_rate_mode_waits_for_minimum_calls(clock: ManualClock) -> None:
    """No rate trips before the window holds minimum_calls calls."""
    breaker = CircuitBreaker(
        "erp", clock=clock, failure_rate_threshold=0.5, minimum_calls=4
    )

    failures(breaker, 3)
    assert state_of(breaker) is CircuitState.CLOSED
    breaker.execute(ok)

    assert state_of(breaker) is CircuitState.OPEN


def test_rate_mode_ignores_streaks_below_the_rate(clock: ManualClock) -> None:
    """In rate mode failure_threshold does not apply; only the rate does."""
    breaker = CircuitBreaker(
        "erp",
        2,
        clock=clock,
        failure_rate_threshold=0.8,
        window_size=4,
        minimum_calls=4,
    )

    for _ in range(5):
        breaker.execute(ok)
        failures(breaker, 2)
        assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().failure_rate == pytest.approx(0.75)


def test_count_window_forgets_the_oldest_calls(clock: ManualClock) -> None:
    """Only the last window_size calls count toward the rate."""
    breaker = CircuitBreaker(
        "erp", clock=clock, failure_rate_threshold=0.5, window_size=4, minimum_calls=4
    )
    failures(breaker, 1)
    for _ in range(4):
        breaker.execute(ok)

    failures(breaker, 1)
    assert state_of(breaker) is CircuitState.CLOSED
    failures(breaker, 1)
    assert state_of(breaker) is CircuitState.OPEN


def test_time_window_forgets_calls_older_than_its_span(clock: ManualClock) -> None:
    """With window_seconds, calls older than the span leave the window."""
    breaker = CircuitBreaker(
        "erp",
        clock=clock,
        failure_rate_threshold=0.5,
        window_seconds=10.0,
        minimum_calls=2,
    )
    failures(breaker, 1)
    clock.advance(10.0)
    breaker.execute(ok)
    assert breaker.stats().failure_count == 0

    failures(breaker, 1)
    assert state_of(breaker) is CircuitState.OPEN


def test_slow_successes_trip_the_slow_call_rate(clock: ManualClock) -> None:
    """Slow calls count toward tripping even when they succeed."""
    breaker = CircuitBreaker(
        "erp",
        clock=clock,
        slow_call_duration=2.0,
        slow_call_rate_threshold=0.5,
        minimum_calls=2,
    )

    def slow() -> str:
        clock.advance(2.5)
        return "late"

    breaker.execute(ok)
    assert breaker.execute(slow) == "late"

    assert state_of(breaker) is CircuitState.OPEN
    assert breaker.stats().slow_calls == 1


def test_a_slow_probe_counts_as_failed(clock: ManualClock) -> None:
    """With slow-call tripping, a probe that succeeds too slowly reopens."""
    breaker = CircuitBreaker(
        "erp",
        recovery_timeout=5.0,
        clock=clock,
        slow_call_duration=2.0,
        slow_call_rate_threshold=0.5,
        minimum_calls=1,
    )

    def slow() -> str:
        clock.advance(3.0)
        return "late"

    breaker.execute(slow)
    clock.advance(5.0)
    assert state_of(breaker) is CircuitState.HALF_OPEN
    breaker.execute(slow)

    assert state_of(breaker) is CircuitState.OPEN


def test_slow_calls_are_counted_without_slow_tripping(clock: ManualClock) -> None:
    """slow_call_duration alone measures slow calls but never trips on them."""
    breaker = CircuitBreaker("erp", clock=clock, slow_call_duration=1.0)

    def slow() -> None:
        clock.advance(1.0)

    for _ in range(20):
        breaker.execute(slow)

    stats = breaker.stats()
    assert (stats.state, stats.slow_calls) == (CircuitState.CLOSED, 20)
    assert stats.slow_call_rate == 1.0


# -- strict half-open ----------------------------------------------------------


def test_half_open_admits_only_the_permitted_probes(clock: ManualClock) -> None:
    """While a probe runs, every other caller is refused at once."""
    breaker = half_open(clock, probe_timeout=8.0)
    refusals: list[CircuitOpenError] = []

    def probe() -> str:
        clock.advance(3.0)
        with pytest.raises(CircuitOpenError) as refused:
            breaker.execute(ok)
        refusals.append(refused.value)
        return "probed"

    assert breaker.execute(probe) == "probed"

    assert refusals[0].state is CircuitState.HALF_OPEN
    assert refusals[0].retry_after == pytest.approx(5.0)
    assert state_of(breaker) is CircuitState.CLOSED


def test_a_stuck_probe_gives_its_permit_up(clock: ManualClock) -> None:
    """A probe running past probe_timeout frees its permit and loses its say."""
    breaker = half_open(clock, probe_timeout=4.0)
    outcomes: list[str] = []

    def stuck() -> str:
        clock.advance(4.0)
        outcomes.append(breaker.execute(ok))
        return "very late"

    breaker.execute(stuck)

    assert outcomes == ["ok"]
    assert state_of(breaker) is CircuitState.CLOSED
    assert breaker.stats().times_opened == 1


def test_a_success_from_before_the_trip_does_not_close(clock: ManualClock) -> None:
    """A call admitted while CLOSED that ends after a trip changes nothing."""
    breaker = CircuitBreaker("crm", 1, 30.0, clock=clock)

    def slow_success() -> str:
        failures(breaker, 1)
        clock.advance(30.0)
        assert state_of(breaker) is CircuitState.HALF_OPEN
        return "stale"

    assert breaker.execute(slow_success) == "stale"

    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert breaker.stats().times_opened == 1


def test_a_failure_from_before_a_reset_does_not_count(clock: ManualClock) -> None:
    """A failure from an earlier generation does not join the new streak."""
    breaker = CircuitBreaker("crm", 2, clock=clock)

    def fails_after_reset() -> NoReturn:
        failures(breaker, 1)
        breaker.reset()
        failures(breaker, 1)
        raise Boom

    with pytest.raises(Boom):
        breaker.execute(fails_after_reset)

    stats = breaker.stats()
    assert (stats.state, stats.failure_count, stats.failures) == (
        CircuitState.CLOSED,
        1,
        3,
    )


# -- sync and async, decorator ---------------------------------------------------


def test_decorator_keeps_name_doc_and_signature(clock: ManualClock) -> None:
    """@breaker.call returns a wrapper that looks like the function."""
    breaker = CircuitBreaker("crm", clock=clock)

    @breaker.call
    def fetch(account_id: str, *, fields: int = 3) -> str:
        """Fetch an account."""
        return f"{account_id}:{fields}"

    assert fetch("a1", fields=2) == "a1:2"
    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch an account."
    assert str(inspect.signature(fetch)) == (
        "(account_id: 'str', *, fields: 'int' = 3) -> 'str'"
    )


def test_decorator_protects_methods(clock: ManualClock) -> None:
    """A decorated method still binds self."""
    breaker = CircuitBreaker("crm", 1, clock=clock)

    class Client:
        @breaker.call
        def get(self, key: str) -> str:
            raise Boom(key)

    with pytest.raises(Boom):
        Client().get("k")
    assert state_of(breaker) is CircuitState.OPEN


def test_decorator_counts_failures_and_refuses(clock: ManualClock) -> None:
    """The decorated function trips and refuses like execute()."""
    breaker = CircuitBreaker("crm", 2, clock=clock)
    guarded_fail = breaker.call(fail)
    guarded_ok = breaker.call(ok)

    with pytest.raises(Boom):
        guarded_fail()
    assert guarded_ok() == "ok"
    for _ in range(2):
        with pytest.raises(Boom):
            guarded_fail()

    with pytest.raises(CircuitOpenError):
        guarded_ok()
    assert breaker.stats().successes == 1


def test_async_decorator_returns_a_coroutine_function(clock: ManualClock) -> None:
    """@breaker.call on async def gives an async wrapper under the breaker."""
    breaker = CircuitBreaker("crm", 1, clock=clock)

    @breaker.call
    async def fetch(key: str) -> str:
        """Fetch asynchronously."""
        if key == "bad":
            raise Boom(key)
        return key

    async def scenario() -> None:
        assert await fetch("good") == "good"
        with pytest.raises(Boom):
            await fetch("bad")
        with pytest.raises(CircuitOpenError):
            await fetch("good")

    assert inspect.iscoroutinefunction(fetch)
    assert fetch.__doc__ == "Fetch asynchronously."
    asyncio.run(scenario())


def test_execute_async_probes_and_closes(clock: ManualClock) -> None:
    """execute_async follows the same half-open rules."""
    breaker = half_open(clock)

    async def probe() -> str:
        await asyncio.sleep(0)
        return "back"

    assert asyncio.run(breaker.execute_async(probe)) == "back"
    assert state_of(breaker) is CircuitState.CLOSED


def test_a_cancelled_probe_releases_its_permit(clock: ManualClock) -> None:
    """A cancelled probe counts as neither outcome and frees its permit."""
    breaker = half_open(clock)

    async def scenario() -> None:
        started = asyncio.Event()

        async def hang() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.create_task(breaker.execute_async(hang))
        await started.wait()
        with pytest.raises(CircuitOpenError):
            await breaker.execute_async(asyncio.sleep, 0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        assert state_of(breaker) is CircuitState.HALF_OPEN
        await breaker.execute_async(asyncio.sleep, 0)

    asyncio.run(scenario())

    stats = breaker.stats()
    assert stats.state is CircuitState.CLOSED
    assert (stats.failures, stats.ignored_calls) == (2, 1)


def test_async_rate_mode_counts_failures(clock: ManualClock) -> None:
    """execute_async in rate mode records into the window and trips."""
    breaker = CircuitBreaker(
        "erp", clock=clock, failure_rate_threshold=1.0, minimum_calls=2
    )

    async def broken() -> NoReturn:
        raise Boom

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(Boom):
                await breaker.execute_async(broken)

    asyncio.run(scenario())
    assert state_of(breaker) is CircuitState.OPEN


# -- listeners -----------------------------------------------------------------


def test_each_transition_is_announced_once(clock: ManualClock) -> None:
    """Listeners see every change once, in order, with frozen details."""
    breaker = CircuitBreaker("crm", 1, 30.0, clock=clock)
    seen: list[CircuitTransition] = []
    breaker.add_listener(seen.append)

    failures(breaker, 1)
    clock.advance(30.0)
    breaker.execute(ok)

    assert [(t.old_state, t.new_state) for t in seen] == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
    assert {t.name for t in seen} == {"crm"}
    assert seen[0].reason == "1 consecutive failures"
    assert seen[1].time == clock.monotonic()
    with pytest.raises(AttributeError):
        seen[0].reason = "changed"  # type: ignore[misc]


def test_a_raising_listener_is_logged_and_swallowed(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A broken listener never breaks the call or the other listeners."""
    breaker = CircuitBreaker("crm", 1, clock=clock)
    seen: list[CircuitTransition] = []

    def broken(transition: CircuitTransition) -> None:
        raise RuntimeError("metrics backend down")

    breaker.add_listener(broken)
    breaker.add_listener(seen.append)

    with caplog.at_level(logging.ERROR):
        failures(breaker, 1)

    assert len(seen) == 1
    assert "a state listener raised" in caplog.text
    assert caplog.records[-1].__dict__["breaker"] == "crm"


def test_a_removed_listener_hears_nothing(clock: ManualClock) -> None:
    """remove_listener stops announcements to that listener."""
    breaker = CircuitBreaker("crm", 1, clock=clock)
    seen: list[CircuitTransition] = []
    breaker.add_listener(seen.append)
    breaker.remove_listener(seen.append)

    failures(breaker, 1)

    assert seen == []


def test_transitions_are_logged_at_info_with_the_breaker_name(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Lifecycle changes are INFO records carrying breaker and states."""
    breaker = CircuitBreaker("crm", 1, clock=clock)

    with caplog.at_level(logging.INFO):
        failures(breaker, 1)

    record = caplog.records[-1]
    assert record.levelno == logging.INFO
    fields = record.__dict__
    assert (fields["breaker"], fields["old_state"], fields["new_state"]) == (
        "crm",
        "closed",
        "open",
    )


def test_a_listener_may_use_the_breaker(clock: ManualClock) -> None:
    """A listener runs outside the lock, so it may call back into the breaker."""
    breaker = CircuitBreaker("crm", 1, clock=clock)
    states: list[CircuitState] = []
    breaker.add_listener(lambda t: states.append(breaker.stats().state))

    failures(breaker, 1)

    assert states == [CircuitState.OPEN]


# -- control -------------------------------------------------------------------


def test_reset_closes_and_clears_the_streak(clock: ManualClock) -> None:
    """reset() closes the breaker; lifetime totals stay."""
    breaker = tripped(clock)
    seen: list[CircuitTransition] = []
    breaker.add_listener(seen.append)

    breaker.reset()
    breaker.reset()

    stats = breaker.stats()
    assert (stats.state, stats.failure_count, stats.failures) == (
        CircuitState.CLOSED,
        0,
        2,
    )
    assert [t.reason for t in seen] == ["reset"]


def test_reset_clears_the_0_2_0_counters(clock: ManualClock) -> None:
    """reset() zeroes success_count and clears last_failure_time, as 0.2.0 did."""
    breaker = CircuitBreaker("crm", 2, clock=clock)
    breaker.execute(ok)
    failures(breaker, 2)

    breaker.reset()

    stats = breaker.stats()
    assert (stats.success_count, stats.last_failure_time) == (0, None)
    assert (stats.successes, stats.failures) == (1, 2)


def test_success_count_keeps_the_probes_after_closing(clock: ManualClock) -> None:
    """success_count restarts on HALF_OPEN and still counts probes once CLOSED."""
    breaker = CircuitBreaker("crm", 1, 30.0, 2, clock=clock)
    breaker.execute(ok)
    failures(breaker, 1)
    assert breaker.stats().success_count == 1
    clock.advance(30.0)

    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert breaker.stats().success_count == 0
    breaker.execute(ok)
    breaker.execute(ok)
    breaker.execute(ok)

    stats = breaker.stats()
    assert (stats.state, stats.success_count, stats.successes) == (
        CircuitState.CLOSED,
        3,
        4,
    )


def test_force_open_holds_until_reset(clock: ManualClock) -> None:
    """force_open() refuses calls with an infinite hint until reset()."""
    breaker = CircuitBreaker("crm", clock=clock)
    breaker.force_open()
    clock.advance(3600.0)

    with pytest.raises(CircuitOpenError) as refused:
        breaker.execute(ok)

    assert state_of(breaker) is CircuitState.OPEN
    assert math.isinf(refused.value.retry_after)
    breaker.reset()
    assert breaker.execute(ok) == "ok"


def test_repr_names_the_breaker_and_state(clock: ManualClock) -> None:
    """repr() shows the name and the state."""
    assert repr(CircuitBreaker("crm", clock=clock)) == (
        "CircuitBreaker(name='crm', state='closed')"
    )


# -- configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"recovery_timeout": -1.0}, "recovery_timeout"),
        ({"recovery_timeout": math.nan}, "recovery_timeout"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 0.0}, "failure_rate_threshold"),
        ({"window_size": 0}, "window_size"),
        ({"window_seconds": 0.0}, "window_seconds"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"slow_call_duration": -1.0}, "slow_call_duration"),
        ({"slow_call_rate_threshold": 0.5}, "slow_call_rate_threshold"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"probe_timeout": 0.0}, "probe_timeout"),
        ({"expected_exceptions": ("Boom",)}, "expected_exceptions"),
        ({"exclude": 3}, "exclude"),
    ],
)
def test_bad_options_raise_a_value_error_naming_the_field(
    options: dict[str, object], field: str
) -> None:
    """Out-of-range options fail fast with a ValueError that names them."""
    with pytest.raises(CircuitBreakerConfigError, match=f"CircuitBreaker.{field}"):
        CircuitBreaker("crm", **options)  # type: ignore[arg-type]

    assert issubclass(CircuitBreakerConfigError, ValueError)
    assert issubclass(CircuitBreakerConfigError, IntegrationError)


def test_a_single_exception_type_is_accepted(clock: ManualClock) -> None:
    """expected_exceptions=Boom behaves like (Boom,)."""
    breaker = CircuitBreaker("crm", 1, expected_exceptions=Boom, clock=clock)

    failures(breaker, 1)

    assert state_of(breaker) is CircuitState.OPEN
