"""The retry executor's give-up hook: once per given-up call, before the re-raise."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from integration_automation_patterns._types import ManualClock, RetryPolicy
from integration_automation_patterns.retry import (
    RetryBudget,
    RetryDetails,
    acall_with_retry,
    call_with_retry,
    retry,
)


class Down(RuntimeError):
    """A failure worth retrying."""


class Invalid(ValueError):
    """A failure not worth retrying."""


def failing(exc: BaseException) -> Callable[[], Any]:
    """Return a callable that always raises ``exc``."""

    def call() -> Any:
        raise exc

    return call


POLICY = RetryPolicy(max_attempts=3, backoff_seconds=1.0, exponential=False)


def test_exhausted_attempts_report_once_then_reraise_the_same_exception(
    clock: ManualClock,
) -> None:
    """After the last attempt on_give_up gets the final details, then it re-raises."""
    gave_up: list[RetryDetails] = []
    error = Down("still down")

    with pytest.raises(Down) as raised:
        call_with_retry(
            failing(error), policy=POLICY, clock=clock, on_give_up=gave_up.append
        )

    assert raised.value is error
    assert len(gave_up) == 1
    details = gave_up[0]
    assert details.attempt == 3
    assert details.wait == 0.0
    assert details.exception is error
    assert details.give_up_reason == "attempts exhausted"
    assert details.name.endswith("failing.<locals>.call")
    assert clock.sleeps == [1.0, 1.0]


def test_give_up_runs_before_the_exception_propagates(clock: ManualClock) -> None:
    """The hook sees the give-up while the caller has not yet caught the error."""
    order: list[str] = []

    @retry(POLICY, clock=clock, on_give_up=lambda d: order.append("gave up"))
    def call() -> None:
        order.append("attempt")
        raise Down

    try:
        call()
    except Down:
        order.append("caught")

    assert order == ["attempt", "attempt", "attempt", "gave up", "caught"]


def test_deadline_gives_up_with_its_reason(clock: ManualClock) -> None:
    """A wait that would pass the deadline ends the call with that reason."""
    gave_up: list[RetryDetails] = []
    policy = RetryPolicy(
        max_attempts=10, backoff_seconds=4.0, exponential=False, deadline_seconds=10
    )

    with pytest.raises(Down):
        call_with_retry(
            failing(Down()), policy=policy, clock=clock, on_give_up=gave_up.append
        )

    assert [(d.attempt, d.give_up_reason) for d in gave_up] == [
        (3, "deadline would pass")
    ]
    assert gave_up[0].elapsed == 8.0


def test_refused_budget_gives_up_with_its_reason(clock: ManualClock) -> None:
    """A retry the budget refuses ends the call after one attempt."""
    gave_up: list[RetryDetails] = []
    budget = RetryBudget(0.0, min_retries_per_second=0.0, clock=clock)

    with pytest.raises(Down):
        call_with_retry(
            failing(Down()),
            policy=POLICY,
            budget=budget,
            clock=clock,
            on_give_up=gave_up.append,
        )

    assert [(d.attempt, d.give_up_reason) for d in gave_up] == [
        (1, "retry budget exhausted")
    ]


@pytest.mark.parametrize("on_first", [True, False])
def test_failure_not_worth_retrying_is_not_a_give_up(
    clock: ManualClock, on_first: bool
) -> None:
    """An exception ``on`` rejects is re-raised without calling on_give_up."""
    gave_up: list[RetryDetails] = []
    calls = {"n": 0}

    def call() -> None:
        calls["n"] += 1
        if on_first or calls["n"] > 1:
            raise Invalid
        raise Down

    with pytest.raises(Invalid):
        call_with_retry(
            call, policy=POLICY, on=Down, clock=clock, on_give_up=gave_up.append
        )

    assert gave_up == []
    assert calls["n"] == (1 if on_first else 2)


def test_success_after_retries_never_calls_on_give_up(clock: ManualClock) -> None:
    """A call that eventually succeeds reports its retries but no give-up."""
    gave_up: list[RetryDetails] = []
    retried: list[RetryDetails] = []
    calls = {"n": 0}

    def call() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise Down
        return "ok"

    result = call_with_retry(
        call,
        policy=POLICY,
        clock=clock,
        on_retry=retried.append,
        on_give_up=gave_up.append,
    )

    assert result == "ok"
    assert gave_up == []
    assert [d.give_up_reason for d in retried] == ["", ""]


def test_async_call_and_async_decorator_give_up_once(clock: ManualClock) -> None:
    """acall_with_retry and a decorated coroutine report one give-up each."""
    gave_up: list[RetryDetails] = []

    async def down() -> None:
        raise Down

    decorated = retry(POLICY, clock=clock, on_give_up=gave_up.append)(down)

    async def main() -> None:
        with pytest.raises(Down):
            await acall_with_retry(
                down, policy=POLICY, clock=clock, on_give_up=gave_up.append
            )
        with pytest.raises(Down):
            await decorated()

    asyncio.run(main())

    assert [(d.attempt, d.give_up_reason) for d in gave_up] == [
        (3, "attempts exhausted"),
        (3, "attempts exhausted"),
    ]


def test_give_up_details_are_frozen(clock: ManualClock) -> None:
    """The details object cannot be changed by the hook."""
    gave_up: list[RetryDetails] = []
    with pytest.raises(Down):
        call_with_retry(
            failing(Down()), policy=POLICY, clock=clock, on_give_up=gave_up.append
        )

    with pytest.raises(dataclasses.FrozenInstanceError):
        gave_up[0].attempt = 1  # type: ignore[misc]
