"""The shared module: clock, ids, errors and the retry policy."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns._types import (
    SYSTEM_CLOCK,
    Clock,
    IntegrationError,
    Jitter,
    ManualClock,
    RetryPolicy,
    new_event_id,
)

# -- ids ----------------------------------------------------------------------


def test_event_ids_are_unique_uuid7_in_creation_order() -> None:
    """100 000 ids are distinct, version 7, variant RFC, and sort as created."""
    ids = [new_event_id() for _ in range(100_000)]

    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    parsed = [uuid.UUID(i) for i in ids[::997]]
    assert all(u.version == 7 for u in parsed)
    assert all(u.variant == uuid.RFC_4122 for u in parsed)


def test_event_id_carries_the_unix_millisecond() -> None:
    """The leading 48 bits are the creation time in Unix milliseconds."""
    before = int(SYSTEM_CLOCK.time() * 1000)
    value = uuid.UUID(new_event_id()).int
    after = int(SYSTEM_CLOCK.time() * 1000)

    assert before - 1 <= value >> 80 <= after + 1


def test_event_ids_from_many_threads_never_collide() -> None:
    """Ids made concurrently by 8 threads are all distinct."""
    out: list[list[str]] = [[] for _ in range(8)]

    def make(bucket: list[str]) -> None:
        bucket.extend(new_event_id() for _ in range(5_000))

    threads = [threading.Thread(target=make, args=(b,)) for b in out]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    everything = [i for bucket in out for i in bucket]
    assert len(set(everything)) == 40_000
    assert all(bucket == sorted(bucket) for bucket in out)


# -- clock --------------------------------------------------------------------


def test_manual_clock_moves_only_when_told() -> None:
    """Time stands still until advanced or slept on; sleeps are recorded."""
    clock = ManualClock(start=100.0)
    assert clock.monotonic() == clock.time() == 100.0

    clock.advance(5)
    clock.sleep(2.5)

    assert clock.monotonic() == 107.5
    assert clock.sleeps == [2.5]


def test_manual_clock_async_sleep_records_and_yields() -> None:
    """The async sleep advances time and lets other tasks run."""
    clock = ManualClock()
    order: list[str] = []

    async def sleeper() -> None:
        await clock.asleep(3)
        order.append("sleeper")

    async def other() -> None:
        order.append("other")

    async def main() -> None:
        await asyncio.gather(sleeper(), other())

    asyncio.run(main())
    assert clock.sleeps == [3]
    assert clock.time() == 3
    assert order == ["other", "sleeper"]


def test_manual_clock_refuses_to_go_back() -> None:
    """Advancing by a negative amount is an error."""
    with pytest.raises(ValueError, match="seconds"):
        ManualClock().advance(-1)


def test_clocks_satisfy_the_protocol() -> None:
    """Both shipped clocks are Clocks for the type checker and at run time."""
    clocks: list[Clock] = [SYSTEM_CLOCK, ManualClock()]
    assert all(c.monotonic() >= 0 for c in clocks)


# -- errors -------------------------------------------------------------------


def test_integration_error_is_an_exception_and_documents_the_tree() -> None:
    """The root error is catchable as Exception and draws its subclasses."""
    assert issubclass(IntegrationError, Exception)
    assert "WebhookError" in (IntegrationError.__doc__ or "")


# -- retry policy -------------------------------------------------------------


def test_default_policy_keeps_the_0_2_0_integers() -> None:
    """No jitter gives exactly backoff * 2**n capped, as whole seconds."""
    policy = RetryPolicy()

    waits = [policy.wait_seconds_for_attempt(n) for n in range(9)]

    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert all(isinstance(w, int) for w in waits)
    assert [policy.delay_for_attempt(n) for n in range(3)] == [30, 60, 120]


def test_linear_policy_waits_the_same_each_time() -> None:
    """With exponential=False every wait is the base backoff."""
    policy = RetryPolicy(max_attempts=4, backoff_seconds=7, exponential=False)
    assert [policy.wait_seconds_for_attempt(n) for n in range(4)] == [7, 7, 7, 7]


def test_fixed_wait_is_not_capped() -> None:
    """As in 0.2.0, a non-exponential wait is the base even above the cap."""
    policy = RetryPolicy(backoff_seconds=100, exponential=False, max_backoff_seconds=50)
    assert policy.wait_seconds_for_attempt(0) == 100
    assert policy.delay_for_attempt(3) == 100


def test_0_2_0_keyword_names_still_work() -> None:
    """0.2.0 callers passed attempt_number by keyword."""
    policy = RetryPolicy()
    assert policy.wait_seconds_for_attempt(attempt_number=1) == 60
    assert policy.is_exhausted(attempt_number=3)


def test_policy_exhaustion_counts_attempts() -> None:
    """is_exhausted is true from max_attempts on."""
    policy = RetryPolicy(max_attempts=3)
    assert [policy.is_exhausted(n) for n in range(5)] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_policy_is_positional_compatible_with_0_2_0() -> None:
    """The four 0.2.0 fields keep their order; new ones are keyword-only."""
    policy = RetryPolicy(5, 2, False, 10)
    assert (policy.max_attempts, policy.backoff_seconds) == (5, 2)
    assert (policy.exponential, policy.max_backoff_seconds) == (False, 10)
    assert policy.jitter is Jitter.NONE
    assert policy.deadline_seconds is None
    with pytest.raises(TypeError):
        RetryPolicy(5, 2, False, 10, Jitter.FULL)  # type: ignore[call-arg]


def test_attempt_ten_thousand_does_not_overflow() -> None:
    """A huge attempt number returns the cap instead of overflowing."""
    policy = RetryPolicy(backoff_seconds=1.5, max_backoff_seconds=1e300)
    assert policy.delay_for_attempt(10_000) == 1e300
    assert policy.wait_seconds_for_attempt(10_000) == int(1e300)
    for jitter in Jitter:
        capped = RetryPolicy(jitter=jitter)
        assert 0 <= capped.delay_for_attempt(10_000, rng=random.Random(1)) <= 3600


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"backoff_seconds": -1}, "backoff_seconds"),
        ({"max_backoff_seconds": -0.5}, "max_backoff_seconds"),
        ({"deadline_seconds": 0}, "deadline_seconds"),
    ],
)
def test_nonsense_policy_values_name_the_field(
    kwargs: dict[str, float], field: str
) -> None:
    """Zero attempts or negative delays raise ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_negative_attempt_is_refused() -> None:
    """Retry numbers start at zero."""
    with pytest.raises(ValueError, match="attempt"):
        RetryPolicy().delay_for_attempt(-1)


backoffs = st.floats(min_value=0.001, max_value=100, allow_nan=False)
caps = st.floats(min_value=0.001, max_value=10_000, allow_nan=False)
attempts = st.integers(min_value=0, max_value=10_000)
seeds = st.integers(min_value=0, max_value=2**32)


@settings(max_examples=500)
@given(base=backoffs, cap=caps, n=attempts, seed=seeds)
def test_full_jitter_stays_within_zero_and_the_ceiling(
    base: float, cap: float, n: int, seed: int
) -> None:
    """Full jitter draws from [0, min(cap, base * 2**n)]."""
    policy = RetryPolicy(
        backoff_seconds=base, max_backoff_seconds=cap, jitter=Jitter.FULL
    )
    ceiling = min(cap, base * 2.0 ** min(n, 1000))

    delay = policy.delay_for_attempt(n, rng=random.Random(seed))

    assert 0 <= delay <= ceiling


@settings(max_examples=500)
@given(base=backoffs, cap=caps, n=attempts, seed=seeds)
def test_equal_jitter_stays_within_half_and_the_ceiling(
    base: float, cap: float, n: int, seed: int
) -> None:
    """Equal jitter draws from [d/2, d] where d is the un-jittered delay."""
    policy = RetryPolicy(
        backoff_seconds=base, max_backoff_seconds=cap, jitter=Jitter.EQUAL
    )
    d = RetryPolicy(backoff_seconds=base, max_backoff_seconds=cap).delay_for_attempt(n)

    delay = policy.delay_for_attempt(n, rng=random.Random(seed))

    assert d / 2 <= delay <= d


@settings(max_examples=500)
@given(
    base=backoffs,
    cap=caps,
    previous=st.floats(min_value=0, max_value=10_000),
    seed=seeds,
)
def test_decorrelated_jitter_stays_within_base_and_three_times_previous(
    base: float, cap: float, previous: float, seed: int
) -> None:
    """Decorrelated jitter draws from [base, min(cap, 3 * previous)]."""
    policy = RetryPolicy(
        backoff_seconds=base, max_backoff_seconds=cap, jitter=Jitter.DECORRELATED
    )

    delay = policy.delay_for_attempt(3, rng=random.Random(seed), previous=previous)

    upper = min(cap, 3 * max(previous, base))
    assert delay <= upper
    assert delay >= min(base, cap)


def test_jitter_is_repeatable_with_a_seeded_rng() -> None:
    """The same seed gives the same sequence of waits."""
    policy = RetryPolicy(jitter=Jitter.FULL)
    first = [policy.delay_for_attempt(n, rng=random.Random(7)) for n in range(5)]
    again = [policy.delay_for_attempt(n, rng=random.Random(7)) for n in range(5)]
    assert first == again
