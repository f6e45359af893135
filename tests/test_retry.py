"""The retry executor: waits, give-up rules, hints, per-call state and the budget."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import threading
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integration_automation_patterns import _types
from integration_automation_patterns._types import ConfigurationError, ManualClock
from integration_automation_patterns.retry import (
    Jitter,
    RetryBudget,
    RetryDetails,
    RetryPolicy,
    acall_with_retry,
    call_with_retry,
    retry,
)


class Flaky:
    """A callable that fails ``failures`` times, then returns ``value``."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError):
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self, value: str = "ok") -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return value


class Hinted(Exception):
    """A failure carrying a server's retry_after hint, like CircuitOpenError."""

    def __init__(self, retry_after: object) -> None:
        super().__init__("try later")
        self.retry_after = retry_after


def test_retry_policy_is_the_shared_one() -> None:
    """RetryPolicy and Jitter are re-exported from _types."""
    assert RetryPolicy is _types.RetryPolicy
    assert Jitter is _types.Jitter


def test_default_policy_waits_30_then_60(clock: ManualClock) -> None:
    """The 0.2.0 default policy makes 3 attempts with waits [30, 60]."""
    flaky = Flaky(2)
    assert retry(clock=clock)(flaky)() == "ok"

    assert flaky.calls == 3
    assert clock.sleeps == [30, 60]


def test_success_first_time_never_waits(clock: ManualClock) -> None:
    """A call that succeeds at once makes one attempt and no wait."""
    flaky = Flaky(0)
    assert retry(clock=clock)(flaky)("v") == "v"
    assert (flaky.calls, clock.sleeps) == (1, [])


def test_giving_up_reraises_the_last_exception_unchanged(clock: ManualClock) -> None:
    """After max_attempts the last exception itself propagates."""
    errors: list[BaseException] = []

    @retry(RetryPolicy(max_attempts=4, backoff_seconds=1), clock=clock)
    def always_fails() -> None:
        error = ConnectionError(f"attempt {len(errors) + 1}")
        errors.append(error)
        raise error

    with pytest.raises(ConnectionError) as caught:
        always_fails()

    assert caught.value is errors[-1]
    assert len(errors) == 4
    assert clock.sleeps == [1, 2, 4]


def test_exceptions_outside_on_are_not_retried(clock: ManualClock) -> None:
    """A failure not listed in ``on`` propagates after one attempt."""
    flaky = Flaky(5, error=KeyError)

    with pytest.raises(KeyError):
        retry(on=ConnectionError, clock=clock)(flaky)()
    assert (flaky.calls, clock.sleeps) == (1, [])


def test_on_accepts_a_predicate(clock: ManualClock) -> None:
    """A predicate decides which exceptions are retried."""
    flaky = Flaky(1, error=ValueError)
    transient = retry(clock=clock, on=lambda e: "failure 1" in str(e))
    assert transient(flaky)() == "ok"

    flaky2 = Flaky(1, error=ValueError)
    with pytest.raises(ValueError, match="failure 1"):
        retry(clock=clock, on=lambda e: False)(flaky2)()
    assert flaky2.calls == 1


def test_on_rejects_nonsense() -> None:
    """``on`` must be exception types or a callable; the error names ``on``."""
    with pytest.raises(ConfigurationError, match="on must"):
        retry(on=(ValueError, int))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="on must"):
        retry(on=int)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="on must"):
        retry(on=5)  # type: ignore[arg-type]


def test_jitter_uses_the_given_rng(clock: ManualClock) -> None:
    """Waits follow the policy's jitter with the injected random source."""
    policy = RetryPolicy(4, 10, jitter=Jitter.FULL)
    with pytest.raises(ConnectionError):
        retry(policy, clock=clock, rng=random.Random(7))(Flaky(9))()

    expected_rng = random.Random(7)
    assert clock.sleeps == [expected_rng.uniform(0, 10 * 2**n) for n in range(3)]


def test_decorrelated_jitter_feeds_back_the_previous_wait(clock: ManualClock) -> None:
    """Decorrelated jitter receives the previous wait."""
    policy = RetryPolicy(4, 1, max_backoff_seconds=1000, jitter=Jitter.DECORRELATED)
    with pytest.raises(ConnectionError):
        retry(policy, clock=clock, rng=random.Random(3))(Flaky(9))()

    rng, previous, expected = random.Random(3), None, []
    for n in range(3):
        previous = policy.delay_for_attempt(n, rng=rng, previous=previous)
        expected.append(previous)
    assert clock.sleeps == expected


# -- deadline -----------------------------------------------------------------


def test_deadline_stops_before_a_wait_that_would_overrun(clock: ManualClock) -> None:
    """No wait is started that would end past the deadline."""
    policy = RetryPolicy(10, 10, deadline_seconds=100)
    flaky = Flaky(99)

    with pytest.raises(ConnectionError):
        retry(policy, clock=clock)(flaky)()

    assert clock.sleeps == [10, 20, 40]
    assert flaky.calls == 4


def test_deadline_counts_time_spent_in_attempts(clock: ManualClock) -> None:
    """Slow attempts use up the deadline too."""
    calls = []

    @retry(RetryPolicy(10, 1, exponential=False, deadline_seconds=10), clock=clock)
    def slow() -> None:
        calls.append(clock.monotonic())
        clock.advance(5)
        raise TimeoutError

    with pytest.raises(TimeoutError):
        slow()
    assert clock.sleeps == [1]
    assert len(calls) == 2


@given(
    st.integers(1, 12),
    st.floats(0, 50),
    st.floats(0.5, 500),
    st.sampled_from(Jitter),
)
@settings(deadline=None, max_examples=80)
def test_waits_never_pass_the_deadline(
    attempts: int, backoff: float, deadline: float, jitter: Jitter
) -> None:
    """Whatever the policy, total waiting stays within the deadline."""
    clock = ManualClock()
    policy = RetryPolicy(attempts, backoff, jitter=jitter, deadline_seconds=deadline)
    flaky = Flaky(99)

    with pytest.raises(ConnectionError):
        retry(policy, clock=clock, rng=random.Random(1))(flaky)()

    assert sum(clock.sleeps) <= deadline
    assert flaky.calls <= attempts
    assert len(clock.sleeps) == flaky.calls - 1


# -- server hints -------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "expected"),
    [(45, 45), (2.5, 5), (10_000, 120), ("30", 5), (True, 5), (float("nan"), 5)],
)
def test_retry_after_hint_stretches_the_wait(
    clock: ManualClock, hint: object, expected: float
) -> None:
    """A numeric retry_after makes the wait at least that long, capped."""
    policy = RetryPolicy(2, 5, max_backoff_seconds=120)
    calls = []

    @retry(policy, clock=clock)
    def limited() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise Hinted(hint)
        return "done"

    assert limited() == "done"
    assert clock.sleeps == [expected]


def test_circuit_open_style_error_is_honoured(clock: ManualClock) -> None:
    """A RuntimeError with retry_after (as CircuitOpenError) sets the wait."""

    class CircuitOpen(RuntimeError):
        def __init__(self, name: str, retry_after: float) -> None:
            super().__init__(name)
            self.retry_after = retry_after

    attempts = iter([CircuitOpen("crm", 42.0), None])

    @retry(RetryPolicy(3, 1), clock=clock)
    def guarded() -> str:
        error = next(attempts)
        if error is not None:
            raise error
        return "ok"

    assert guarded() == "ok"
    assert clock.sleeps == [42.0]


# -- on_retry and logging -------------------------------------------------------


def test_on_retry_receives_frozen_details(clock: ManualClock) -> None:
    """on_retry gets name, attempt, wait, elapsed and the exception, frozen."""
    seen: list[RetryDetails] = []
    flaky = Flaky(2)

    retry(RetryPolicy(3, 2), clock=clock, on_retry=seen.append)(flaky)()

    assert [(d.attempt, d.wait, d.elapsed) for d in seen] == [(1, 2, 0), (2, 4, 2)]
    assert str(seen[1].exception) == "failure 2"
    assert seen[0].name.endswith("Flaky")
    with pytest.raises(AttributeError):
        seen[0].attempt = 9  # type: ignore[misc]


def test_on_retry_named_after_the_function(clock: ManualClock) -> None:
    """The details name is the decorated function's qualified name."""
    seen: list[RetryDetails] = []

    @retry(clock=clock, on_retry=seen.append)
    def fetch_invoice() -> None:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        fetch_invoice()
    assert seen[0].name.endswith("fetch_invoice")


def test_retries_log_warnings_with_stable_fields(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Each retry and the give-up are WARNING records with attempt in extra."""
    caplog.set_level(logging.WARNING, "integration_automation_patterns.retry")
    with pytest.raises(ConnectionError):
        retry(RetryPolicy(2, 1), clock=clock)(Flaky(5))()

    retried, gave_up = caplog.records
    assert retried.__dict__["attempt"] == 1
    assert gave_up.__dict__["reason"] == "attempts exhausted"
    assert {r.levelno for r in caplog.records} == {logging.WARNING}


# -- signatures -----------------------------------------------------------------


def test_decorator_keeps_name_doc_and_signature() -> None:
    """functools.wraps keeps the metadata and the runtime signature."""

    def lookup(customer_id: int, *, region: str = "eu") -> str:
        """Look a customer up."""
        return f"{customer_id}@{region}"

    wrapped = retry()(lookup)
    assert wrapped.__name__ == "lookup"
    assert wrapped.__doc__ == "Look a customer up."
    assert inspect.signature(wrapped) == inspect.signature(lookup)
    assert wrapped(7, region="us") == "7@us"


def test_async_function_gets_an_async_wrapper() -> None:
    """An async def is wrapped by a coroutine function."""

    async def ping() -> int:
        return 1

    wrapped = retry()(ping)
    assert inspect.iscoroutinefunction(wrapped)
    assert asyncio.run(wrapped()) == 1


if TYPE_CHECKING:
    # Checked by mypy --strict only: the decorated callables keep their real
    # signatures, so correct calls type-check and the wrong ones need ignores
    # (which warn_unused_ignores would flag as unused if they were accepted).

    @retry(RetryPolicy(2))
    def typed_sync(customer_id: int, region: str = "eu") -> float:
        """Stand in for a typed sync call."""
        return 1.0

    @retry(on=ConnectionError)
    async def typed_async(order_id: str) -> list[int]:
        """Stand in for a typed async call."""
        return []

    def check_signatures() -> None:
        """Exercise the decorated signatures as a user would."""
        total: float = typed_sync(1, region="us")
        wrong_return: str = typed_sync(1)  # type: ignore[assignment]
        typed_sync("1")  # type: ignore[arg-type]
        typed_sync(1, nation="x")  # type: ignore[call-arg]
        orders: list[int] = asyncio.run(typed_async("o-1"))
        typed_async(1)  # type: ignore[arg-type,unused-coroutine]
        plain: int = call_with_retry(len, "abc")
        print(total, wrong_return, orders, plain)


# -- async ----------------------------------------------------------------------


def test_async_retries_with_the_same_waits(clock: ManualClock) -> None:
    """Async calls retry with the policy's waits on the clock's asleep."""
    flaky = Flaky(2)

    @retry(clock=clock)
    async def fetch() -> str:
        await asyncio.sleep(0)
        return flaky()

    assert asyncio.run(fetch()) == "ok"
    assert clock.sleeps == [30, 60]


def test_async_gives_up_with_the_last_exception(clock: ManualClock) -> None:
    """Async give-up re-raises the last exception object."""
    raised: list[Exception] = []

    @retry(RetryPolicy(2, 1), clock=clock)
    async def broken() -> None:
        raised.append(ConnectionError(len(raised)))
        raise raised[-1]

    with pytest.raises(ConnectionError) as caught:
        asyncio.run(broken())
    assert caught.value is raised[-1]


def test_call_with_retry_and_acall_with_retry(clock: ManualClock) -> None:
    """The call forms retry like the decorator and pass arguments through."""
    flaky = Flaky(1)
    assert call_with_retry(flaky, "x", clock=clock) == "x"

    async def afetch(value: str) -> str:
        return aflaky(value)

    aflaky = Flaky(1)
    result = asyncio.run(
        acall_with_retry(afetch, value="y", policy=RetryPolicy(2, 3), clock=clock)
    )
    assert result == "y"
    assert clock.sleeps == [30, 3]


def test_call_with_retry_respects_on_budget_and_deadline(clock: ManualClock) -> None:
    """Non-default options take the full path and still apply."""
    flaky = Flaky(3)
    policy = RetryPolicy(5, 1, deadline_seconds=2.5)

    with pytest.raises(ConnectionError):
        call_with_retry(flaky, policy=policy, clock=clock, on=ConnectionError)
    assert clock.sleeps == [1]

    with pytest.raises(KeyError):
        call_with_retry(Flaky(1, KeyError), on=ConnectionError, clock=clock)

    async def abroken() -> None:
        raise KeyError

    with pytest.raises(KeyError):
        asyncio.run(acall_with_retry(abroken, on=ConnectionError, clock=clock))


# -- per-call state -------------------------------------------------------------


def test_concurrent_tasks_each_count_their_own_attempts() -> None:
    """100 asyncio tasks through one decorated function keep separate counts."""
    clock = ManualClock()
    attempts: dict[int, int] = {}
    seen: list[RetryDetails] = []

    @retry(RetryPolicy(3, 1), clock=clock, on_retry=seen.append)
    async def work(task: int) -> int:
        attempts[task] = attempts.get(task, 0) + 1
        await asyncio.sleep(0)
        if attempts[task] < 3:
            raise ConnectionError(task)
        return task

    async def main() -> list[int]:
        return await asyncio.gather(*(work(i) for i in range(100)))

    assert asyncio.run(main()) == list(range(100))
    assert set(attempts.values()) == {3}
    assert sorted(d.attempt for d in seen) == [1] * 100 + [2] * 100


def test_threads_each_count_their_own_attempts() -> None:
    """8 threads through one decorated function keep separate counts."""
    clock = ManualClock()
    local = threading.local()
    results: list[int] = []
    barrier = threading.Barrier(8)

    @retry(RetryPolicy(4, 1), clock=clock)
    def work() -> int:
        local.calls = getattr(local, "calls", 0) + 1
        if local.calls == 1:
            barrier.wait(timeout=10)
        if local.calls < 4:
            raise ConnectionError
        return int(local.calls)

    def run() -> None:
        results.append(work())

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == [4] * 8
    assert sorted(clock.sleeps) == sorted([1.0, 2.0, 4.0] * 8)


# -- retry budget ---------------------------------------------------------------


def dead_dependency_retries(budget: RetryBudget | None, clock: ManualClock) -> int:
    """Make 1 000 calls against a dependency that always fails; count retries."""
    calls = 0

    @retry(RetryPolicy(3, 0), clock=clock, budget=budget)
    def dead() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    for _ in range(1000):
        with pytest.raises(ConnectionError):
            dead()
    return calls - 1000


def test_budget_caps_retries_against_a_dead_dependency(clock: ManualClock) -> None:
    """With ratio 0.1, 1 000 failing calls make about 100 retries plus the floor."""
    unbudgeted = dead_dependency_retries(None, clock)
    budget = RetryBudget(0.1, min_retries_per_second=10, clock=clock)
    budgeted = dead_dependency_retries(budget, clock)

    assert unbudgeted == 2000
    assert 100 <= budgeted <= 110


def test_budget_floor_refills_with_time(clock: ManualClock) -> None:
    """The floor allows min_retries_per_second retries each second."""
    budget = RetryBudget(0.0, min_retries_per_second=2, clock=clock)

    assert [budget.withdraw() for _ in range(3)] == [True, True, False]
    clock.advance(0.5)
    assert [budget.withdraw() for _ in range(2)] == [True, False]
    clock.advance(60)
    assert budget.available == 2


def test_budget_earned_tokens_are_capped(clock: ManualClock) -> None:
    """A long healthy spell banks at most max_tokens."""
    budget = RetryBudget(0.5, min_retries_per_second=0, max_tokens=3, clock=clock)
    for _ in range(100):
        budget.deposit()

    assert budget.available == 3
    assert [budget.withdraw() for _ in range(4)] == [True, True, True, False]


def test_budget_is_shared_between_call_sites(clock: ManualClock) -> None:
    """Two decorated functions draw from one budget."""
    budget = RetryBudget(0.0, min_retries_per_second=1, clock=clock)
    a, b = Flaky(9), Flaky(9)

    for fn in (a, b):
        with pytest.raises(ConnectionError):
            retry(RetryPolicy(3, 0), clock=clock, budget=budget)(fn)()

    assert a.calls + b.calls == 3


def test_budget_refusal_is_logged(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused retry logs the reason."""
    budget = RetryBudget(0.0, min_retries_per_second=0, clock=clock)
    with pytest.raises(ConnectionError):
        retry(clock=clock, budget=budget)(Flaky(1))()
    assert caplog.records[-1].__dict__["reason"] == "retry budget exhausted"


@pytest.mark.parametrize(
    "kwargs",
    [{"ratio": -1}, {"min_retries_per_second": float("inf")}, {"max_tokens": -0.5}],
)
def test_budget_rejects_bad_settings(kwargs: dict[str, Any]) -> None:
    """Negative or infinite settings are refused."""
    with pytest.raises(ValueError, match="RetryBudget"):
        RetryBudget(**kwargs)


def test_budget_counts_async_first_attempts(clock: ManualClock) -> None:
    """Async calls deposit into the budget too."""
    budget = RetryBudget(0.5, min_retries_per_second=0, clock=clock)

    @retry(clock=clock, budget=budget)
    async def ok() -> None:
        return None

    asyncio.run(ok())
    asyncio.run(ok())
    assert budget.available == 1.0


def test_budget_repr_holds_its_settings(clock: ManualClock) -> None:
    """The repr shows the configured ratio and floor."""
    assert repr(RetryBudget(0.2, clock=clock)).startswith("RetryBudget(ratio=0.2")
